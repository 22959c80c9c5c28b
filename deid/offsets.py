"""How far the rebase step moves a sequence: pure arithmetic on the logical date, limits and high water.

No database, no clock, no randomness: the same date, limits and high water always give the same offset.

The scheme, for an ascending sequence (a descending one is the mirror image, see `descending`):

- **limit**: the largest value the sequence may hand out: the tightest of its own MAXVALUE, the type of every
  column it feeds (an int4 column fed by a bigint sequence has int4 room), the type of every column whose
  foreign key references one of those, and the digits a varchar(n) column has left after the literal text its
  DEFAULT adds. A `text` column (`'INV-' || nextval(...)`) sets no limit. Each limit is a `Bound` that says
  what sets it and how to widen it, so an error can name the column.
- **soft limit**: a bigint sequence whose high water is below 2^52 is kept below 2^53 - 1 (JavaScript's
  largest safe integer), so that staging IDs survive JSON clients that read numbers as doubles, as
  production's IDs do. Room up there is still about 4.5e15.
- **room** = limit - high water; **headroom** = min(room / 10, 1,000,000) values that must remain free above
  the new start for staging's own inserts.
- **slot** = the logical date's proleptic ordinal mod 97 (a prime): it changes every day and repeats only
  after 97 days. `spread(n) = n/4 + slot * n/388`, always in [n/4, n/2).
- **offset** = spread(limit) when that leaves the headroom free (the usual case: the offset then depends on
  the date and the type only, so every integer sequence moves by the same amount on a given day, and a
  backfill of a date gives the same offset even though production has grown); otherwise, near the limit,
  it is clamped to spread(room), which still varies by date and leaves at least half the room free.
- Offsets are multiples of the sequence's increment, so a sequence stepping by 10 keeps its residue.
- When even the date's lowest offset, room/4, would be below 1,000 (room below 4,000), there is no
  meaningful offset: `NoRoom` (a TerminalError) names the sequence, what limits it, the numbers, and how to
  widen it. That test does not depend on the date, so a run never fails on one day and passes the next.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from deid.errors import TerminalError

SLOTS = 97  # days before the offset repeats; prime, so no weekly or monthly pattern lines up with it
MIN_OFFSET = 1_000
MAX_HEADROOM = 1_000_000
HEADROOM_FRACTION = 10  # headroom is room / 10, capped at MAX_HEADROOM
SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER
SOFT_LIMIT = "JavaScript's largest safe integer (2^53 - 1)"

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_WIDER = {"smallint": "integer", "integer": "bigint"}
_NUMERIC = re.compile(r"numeric\((\d+)(?:,\s*(-?\d+))?\)")
_CHARACTERS = re.compile(r"(?:character varying|character|varchar|char)\((\d+)\)")


@dataclass(frozen=True)
class Bound:
    """One limit on a sequence's values: `value` is the largest (or, for a descending sequence, the smallest)
    value allowed; `what` names what sets it; `fix` says how to lift it."""

    value: int
    what: str
    fix: str = ""


@dataclass(frozen=True)
class Offset:
    offset: int
    limit: int  # the limit the offset was computed against (the tightest bound, or the soft limit)
    limited_by: tuple[str, ...]  # what sets it (several when bounds tie)
    room: int  # |limit - high water|
    headroom: int
    slot: int
    clamped: bool  # near the limit: spread over the room rather than over the limit


class NoRoom(TerminalError):
    """A sequence is too close to its limit to be moved meaningfully above production."""


def day_slot(logical_date: dt.date) -> int:
    """The date's slot, 0..SLOTS-1; consecutive dates have different slots."""
    return logical_date.toordinal() % SLOTS


def headroom(room: int) -> int:
    return max(0, min(room // HEADROOM_FRACTION, MAX_HEADROOM))


def spread(span: int, slot: int) -> int:
    """A date-dependent point in [span/4, span/2)."""
    return span // 4 + slot * (span // (4 * SLOTS))


def offset_for(
    logical_date: dt.date,
    high_water: int,
    bounds: Iterable[Bound],
    *,
    sequence: str,
    increment: int = 1,
) -> Offset:
    """The offset to add to `high_water` (subtract, for a descending sequence) on `logical_date`.

    `bounds` are the upper limits of an ascending sequence, the lower limits of a descending one (increment
    < 0); at least one is needed (the sequence's own MAXVALUE / MINVALUE always is one). Raises NoRoom.
    """
    bounds = tuple(bounds)
    if not bounds:
        raise ValueError("offset_for needs at least one bound (the sequence's own limit)")
    if increment == 0:
        raise ValueError("a sequence's increment is never 0")
    sign = -1 if increment < 0 else 1
    step = abs(increment)
    # Work as if ascending: mirror a descending sequence's values.
    water = sign * high_water
    tightest = min(sign * b.value for b in bounds)
    limited_by = tuple(sorted({b.what for b in bounds if sign * b.value == tightest}))
    fixes = tuple(dict.fromkeys(b.fix for b in bounds if sign * b.value == tightest and b.fix))
    limit = tightest
    if tightest > SAFE_INTEGER and water <= SAFE_INTEGER // 2:
        limit, limited_by = SAFE_INTEGER, (SOFT_LIMIT,)
    room = limit - water
    free = headroom(room)
    slot = day_slot(logical_date)

    # Whether there is room does not depend on the date: a run never fails on Tuesday that passed on Monday.
    if spread(max(room, 0) // step, 0) * step < MIN_OFFSET:
        raise NoRoom(_no_room(sequence, sign, high_water, tightest, room, limited_by, fixes))
    preferred = spread(limit // step, slot) * step
    if room - preferred >= free:
        offset, clamped = preferred, False
    else:
        offset, clamped = spread(room // step, slot) * step, True
    return Offset(
        offset=offset,
        limit=sign * limit,
        limited_by=limited_by,
        room=room,
        headroom=free,
        slot=slot,
        clamped=clamped,
    )


def _no_room(
    sequence: str,
    sign: int,
    high_water: int,
    tightest: int,
    room: int,
    limited_by: tuple[str, ...],
    fixes: tuple[str, ...],
) -> str:
    direction, water = ("up to", "high") if sign > 0 else ("down to", "low")
    text = (
        f"{' and '.join(limited_by)}: values {direction} {sign * tightest:,}, production's {water} water "
        f"{high_water:,}, room {max(room, 0):,}; cannot rebase sequence {sequence} by at least "
        f"{MIN_OFFSET:,} and leave room for staging's own inserts."
    )
    if fixes:
        text += " Fix: " + "; or ".join(fixes) + "."
    return text


def type_range(type_name: str) -> tuple[int, int] | None:
    """The values a built-in numeric type holds, from its format_type() spelling ("integer",
    "numeric(12,0)"); None for a type that sets no integer limit (text, unconstrained numeric, ...)."""
    if type_name in INTEGER_RANGES:
        return INTEGER_RANGES[type_name]
    match = _NUMERIC.fullmatch(type_name)
    if match:
        digits = int(match[1]) - int(match[2] or 0)
        top = 10**digits - 1 if digits > 0 else 0
        return -top, top
    return None


def character_length(type_name: str) -> int | None:
    """The n of "character varying(n)" / "character(n)"; None for other types."""
    match = _CHARACTERS.fullmatch(type_name)
    return int(match[1]) if match else None


def digits_range(digits: int) -> tuple[int, int]:
    """The integers whose decimal text (with a leading '-' when negative) has at most `digits` characters."""
    if digits <= 0:
        return 0, -1  # nothing fits
    return -(10 ** (digits - 1) - 1), 10**digits - 1


def widening(type_name: str, column: str) -> str:
    """How to lift the limit a column's type sets, for NoRoom's message."""
    wider = _WIDER.get(type_name)
    if wider:
        return f"widen {column} to {wider} (ALTER TABLE ... ALTER COLUMN ... TYPE {wider}) in production"
    if type_name.startswith("numeric"):
        return f"raise the precision of {column} in production"
    if character_length(type_name) is not None:
        return f"lengthen {column} in production"
    return f"widen {column} in production"
