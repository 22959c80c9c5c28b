"""deid.offsets: the pure arithmetic of the rebase step (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from deid.errors import TerminalError
from deid.offsets import (
    INTEGER_RANGES,
    MAX_HEADROOM,
    MIN_OFFSET,
    SAFE_INTEGER,
    SLOTS,
    Bound,
    NoRoom,
    character_length,
    day_slot,
    digits_range,
    headroom,
    offset_for,
    spread,
    type_range,
    widening,
)

DAY = dt.date(2026, 11, 28)
SMALLINT, INTEGER, BIGINT = (INTEGER_RANGES[t][1] for t in ("smallint", "integer", "bigint"))


def bound(value: int, what: str = "public.t.id (integer)", fix: str = "") -> Bound:
    return Bound(value, what, fix)


def offset(high_water: int, limit: int, day: dt.date = DAY, increment: int = 1):
    return offset_for(day, high_water, [bound(limit)], sequence="public.t_id_seq", increment=increment)


def dates(n: int, start: dt.date = DAY):
    return [start + dt.timedelta(days=i) for i in range(n)]


# --- reproducible, daily ------------------------------------------------------------------------------------


def test_same_date_same_offset():
    assert offset(1_234, INTEGER) == offset(1_234, INTEGER)
    assert offset(1_234, INTEGER).offset == offset(1_234, INTEGER, day=dt.date(2026, 11, 28)).offset


def test_slot_is_the_dates_ordinal_mod_97():
    assert day_slot(DAY) == DAY.toordinal() % SLOTS
    assert len({day_slot(d) for d in dates(SLOTS)}) == SLOTS
    assert day_slot(DAY + dt.timedelta(days=SLOTS)) == day_slot(DAY)


@pytest.mark.parametrize("limit", [SMALLINT, INTEGER, BIGINT])
@pytest.mark.parametrize("fraction", [0, 0.1, 0.45, 0.8, 0.97])
def test_consecutive_days_differ(limit: int, fraction: float):
    high_water = min(int(limit * fraction), limit - 4 * MIN_OFFSET)
    offsets = [offset(high_water, limit, d).offset for d in dates(2 * SLOTS + 5)]
    assert all(a != b for a, b in zip(offsets, offsets[1:], strict=False))


def test_offset_depends_on_date_and_type_not_on_production_growth():
    """While there is room, a backfill of a date gives the same offset though production has grown."""
    assert offset(50, INTEGER).offset == offset(5_000_000, INTEGER).offset
    assert offset(50, INTEGER).offset != offset(50, BIGINT).offset


# --- limits -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ["smallint", "integer", "bigint"])
def test_within_the_type_for_every_high_water(type_name: str):
    limit = INTEGER_RANGES[type_name][1]
    for high_water in (0, 1, 30, limit // 1000, limit // 3, limit // 2, limit - limit // 10, limit - 5_000):
        high_water = min(high_water, limit - 4 * MIN_OFFSET)  # the least room that works
        for day in dates(SLOTS):
            o = offset(high_water, limit, day)
            assert o.offset >= MIN_OFFSET
            assert high_water + o.offset + o.headroom <= limit, (high_water, day)
            assert o.room - o.offset >= o.headroom
            assert o.headroom == min(o.room // 10, MAX_HEADROOM)


def test_far_above_production():
    assert offset(50, INTEGER).offset >= INTEGER // 4
    assert offset(30, SMALLINT).offset >= SMALLINT // 4
    assert offset(10**9, BIGINT).offset >= SAFE_INTEGER // 4


def test_bigint_stays_below_javascripts_safe_integers_while_production_does():
    for day in dates(SLOTS):
        o = offset(10**12, BIGINT, day)
        assert 10**12 + o.offset < SAFE_INTEGER
        assert o.limited_by == ("JavaScript's largest safe integer (2^53 - 1)",)
    beyond = offset(2**60, BIGINT)  # production already past 2^53: the type's limit applies
    assert beyond.limit == BIGINT and 2**60 + beyond.offset <= BIGINT


def test_clamped_near_the_limit():
    high_water = 2_100_000_000
    clamped = [offset(high_water, INTEGER, d) for d in dates(SLOTS)]
    assert all(o.clamped for o in clamped)
    room = INTEGER - high_water
    for o in clamped:
        assert room // 4 <= o.offset < room // 2
        assert high_water + o.offset + o.headroom <= INTEGER
    assert len({o.offset for o in clamped}) == SLOTS  # still one per day
    assert not offset(50, INTEGER).clamped


def test_tightest_bound_wins_and_ties_are_all_named():
    o = offset_for(
        DAY,
        100,
        [
            Bound(BIGINT, "sequence public.s (bigint)"),
            Bound(INTEGER, "public.a.id (integer)"),
            Bound(INTEGER, "public.b.a_id (integer, references public.a.id)"),
        ],
        sequence="public.s",
    )
    assert o.limit == INTEGER
    assert o.limited_by == ("public.a.id (integer)", "public.b.a_id (integer, references public.a.id)")
    assert 100 + o.offset <= INTEGER


def test_offset_is_a_multiple_of_the_increment():
    for day in dates(10):
        assert offset(1_000, INTEGER, day, increment=10).offset % 10 == 0
        assert offset(2_100_000_000, INTEGER, day, increment=7).offset % 7 == 0


def test_descending_sequence_mirrors():
    low = INTEGER_RANGES["integer"][0]
    o = offset_for(DAY, -500, [bound(low)], sequence="public.down", increment=-1)
    assert o.limit == low
    assert -500 - o.offset - o.headroom >= low
    assert o.offset == offset_for(DAY, 500, [bound(-low)], sequence="public.up").offset


# --- no room ------------------------------------------------------------------------------------------------


def test_no_room_names_the_column_and_the_numbers():
    with pytest.raises(NoRoom) as raised:
        offset_for(
            DAY,
            32_100,
            [
                Bound(SMALLINT, "partners.partner_staff.id (smallint)", widening("smallint", "x.y.id")),
                Bound(INTEGER, "sequence partners.partner_staff_id_seq (MAXVALUE 2,147,483,647)"),
            ],
            sequence="partners.partner_staff_id_seq",
        )
    text = str(raised.value)
    assert isinstance(raised.value, TerminalError)
    assert "partners.partner_staff.id (smallint)" in text
    assert "32,100" in text and "room 667" in text and "32,767" in text
    assert "partners.partner_staff_id_seq" in text
    assert "widen x.y.id to integer" in text
    assert "MAXVALUE" not in text  # only the bound that binds is named


@pytest.mark.parametrize("high_water", [SMALLINT, SMALLINT - 1, SMALLINT - 3_000, SMALLINT + 5])
def test_no_room_at_or_past_the_limit(high_water: int):
    with pytest.raises(NoRoom, match="cannot rebase"):
        offset(high_water, SMALLINT)


def test_smallest_room_does_not_depend_on_the_date():
    """room/4 (the lowest slot's offset) must reach MIN_OFFSET: room 4,000 works every day, 3,999 none."""
    for day in dates(SLOTS):
        assert offset(SMALLINT - 4 * MIN_OFFSET, SMALLINT, day).offset >= MIN_OFFSET
        with pytest.raises(NoRoom):
            offset(SMALLINT - 4 * MIN_OFFSET + 1, SMALLINT, day)


def test_descending_no_room_says_low_water():
    with pytest.raises(NoRoom, match="down to -32,768, production's low water -32,000"):
        offset_for(DAY, -32_000, [bound(-32_768, "public.t.id (smallint)")], sequence="s", increment=-1)


# --- helpers ------------------------------------------------------------------------------------------------


def test_type_ranges():
    assert type_range("smallint") == (-32_768, 32_767)
    assert type_range("integer") == (-(2**31), 2**31 - 1)
    assert type_range("bigint") == (-(2**63), 2**63 - 1)
    assert type_range("numeric(5,0)") == (-99_999, 99_999)
    assert type_range("numeric(10,2)") == (-99_999_999, 99_999_999)
    assert type_range("numeric(2,3)") == (0, 0)
    assert type_range("numeric") is None
    assert type_range("text") is None
    assert type_range("character varying(12)") is None


def test_character_lengths_and_digits():
    assert character_length("character varying(12)") == 12
    assert character_length("character(8)") == 8
    assert character_length("text") is None
    assert digits_range(3) == (-99, 999)
    assert digits_range(1) == (0, 9)
    assert digits_range(0) == (0, -1)


def test_headroom_and_spread():
    assert headroom(10_000) == 1_000
    assert headroom(10**12) == MAX_HEADROOM
    assert headroom(-5) == 0
    for slot in range(SLOTS):
        assert 1_000 // 4 <= spread(1_000_000, slot) < 1_000_000 // 2


def test_widening_hints():
    assert "to integer" in widening("smallint", "public.t.id")
    assert "to bigint" in widening("integer", "public.t.id")
    assert "precision" in widening("numeric(5,0)", "public.t.n")
    assert "lengthen" in widening("character varying(8)", "public.t.code")


def test_needs_a_bound_and_an_increment():
    with pytest.raises(ValueError):
        offset_for(DAY, 0, [], sequence="s")
    with pytest.raises(ValueError):
        offset_for(DAY, 0, [bound(10**6)], sequence="s", increment=0)
