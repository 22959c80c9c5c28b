"""A big table split into parts (one Airflow task each, any worker): the parts together give exactly what the
whole table streamed gives, rows, catalog and counts; a part that dies leaves nothing behind, the finish
names the parts still to do, and the retry completes the table without doing any part twice."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql import parts
from deid.backends.postgresql.introspect import introspect
from deid.backends.postgresql.scrub import finish_scrub, prepare_scrub, scrub_tables
from deid.backends.scrubbing import Scrubbing
from deid.errors import TerminalError
from deid.records.record import add_table_result
from tests.test_stream_scrub import SALT, contents, twins  # noqa: F401  (twins: the fixture)

SPLIT = Scrubbing(parts=3, split_from_rows=0, stream_from_rows=0)
WHOLE = Scrubbing(parts=1, split_from_rows=0, stream_from_rows=0)


def scrub(engine: sa.Engine, plan, how: Scrubbing, units: set[str] | None = None):
    """prepare, the units (all, or `units`), finish: (the results, the tallies the finish read)."""
    with engine.connect() as c:
        schema = introspect(c, plan.database)
    prepared = prepare_scrub(engine, plan, schema, how)
    results = scrub_tables(engine, plan, SALT, schema, set(prepared if units is None else units), how=how)
    return results, finish_scrub(engine, plan)[1]


def catalog(engine: sa.Engine) -> dict[str, list]:
    """What the swap carries, as the catalog says: indexes, and constraints with their validity."""
    with engine.connect() as c:
        return {
            "indexes": sorted(
                rawsql.execute(c, "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'").scalars()
            ),
            "constraints": sorted(
                rawsql.execute(
                    c,
                    "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' "
                    "|| convalidated FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
                ).scalars()
            ),
        }


def test_a_table_split_into_parts_ends_as_the_whole_table_streamed(twins):  # noqa: F811
    split, whole, plan = twins
    results, tallies = scrub(split, plan, SPLIT)
    by_part = {(r.table, r.part): r for r in results}
    assert {p for t, p in by_part if t == "public.people"} == {"1/3", "2/3", "3/3"}
    assert {p for t, p in by_part if t == "public.visits"} == {"1/3", "2/3", "3/3"}
    assert sum(r.rows for (t, _), r in by_part.items() if t == "public.people") == 3000
    assert by_part["public.measures", None].action == "streamed"  # partitioned: no swap, so never split
    assert all(r.action == "streamed" for r in results)

    _, whole_tallies = scrub(whole, plan, WHOLE)
    assert contents(split) == contents(whole)
    assert catalog(split) == catalog(whole)
    assert tallies == whole_tallies  # every count, found_in_production included, from all parts at once
    assert tallies["public.people"]["email"]["rows"] > 0
    with split.connect() as c:
        leftovers = rawsql.execute(
            c, "SELECT count(*) FROM pg_class WHERE relname LIKE '_deid_new_%'"
        ).scalar()
        helpers = rawsql.execute(c, "SELECT to_regnamespace('_deid')").scalar()
    assert (leftovers, helpers) == (0, None)


def test_a_part_that_dies_leaves_nothing_and_its_retry_completes_the_table(twins, monkeypatch):  # noqa: F811
    split, whole, plan = twins
    with split.connect() as c:
        schema = introspect(c, plan.database)
    units = prepare_scrub(split, plan, schema, SPLIT)
    people = [u for u in units if u.startswith("public.people#")]
    assert people == ["public.people#1/3", "public.people#2/3", "public.people#3/3"]
    (first,) = scrub_tables(split, plan, SALT, schema, {people[0]}, how=SPLIT)

    real = parts.stream_into_table

    def dies_after_writing(*args, **kwargs):  # every row of the part written, then the worker is gone
        real(*args, **kwargs)
        raise TerminalError("the worker died")

    monkeypatch.setattr(parts, "stream_into_table", dies_after_writing)
    with pytest.raises(TerminalError, match="died"):
        scrub_tables(split, plan, SALT, schema, {people[1]}, how=SPLIT)
    monkeypatch.undo()
    with split.connect() as c:
        new = rawsql.execute(c, "SELECT relname FROM pg_class WHERE relname LIKE '_deid_new_%' ORDER BY 1")
        written = {name: rawsql.execute(c, f"SELECT count(*) FROM {name}").scalar() for name in new.scalars()}
    assert first.rows in written.values()  # part 1's rows, and not one row of the part that died
    assert sum(written.values()) == first.rows

    with pytest.raises(TerminalError) as unfinished:
        finish_scrub(split, plan)
    assert "public.people#2/3" in str(unfinished.value) and "public.people#3/3" in str(unfinished.value)
    assert "public.people#1/3" not in str(unfinished.value)

    assert prepare_scrub(split, plan, schema, SPLIT) == units  # a retried prepare keeps the split
    again = scrub_tables(split, plan, SALT, schema, set(units), how=SPLIT)
    actions = {(r.table, r.part): r.action for r in again}
    assert actions["public.people", "1/3"] == "already scrubbed"
    assert actions["public.people", "2/3"] == "streamed"
    finish_scrub(split, plan)
    scrub(whole, plan, WHOLE)
    assert contents(split) == contents(whole)


def test_a_unit_the_prepare_did_not_make_is_refused(twins):  # noqa: F811
    split, _, plan = twins
    with split.connect() as c:
        schema = introspect(c, plan.database)
    prepare_scrub(split, plan, schema, SPLIT)
    with pytest.raises(TerminalError, match="public.people#1/5 is not a part of this copy's scrub"):
        scrub_tables(split, plan, SALT, schema, {"public.people#1/5"}, how=SPLIT)
    with pytest.raises(TerminalError, match="not in the plan of streamed: public.nobody#1/2"):
        scrub_tables(split, plan, SALT, schema, {"public.nobody#1/2"}, how=SPLIT)


def test_the_record_adds_up_the_parts_of_a_table():
    record: dict = {}
    add_table_result(
        record, "public.users", {"rows": 10, "seconds": 1.25, "action": "streamed", "part": "1/2"}
    )
    add_table_result(record, "public.users", {"rows": 7, "seconds": 2.5, "action": "streamed", "part": "2/2"})
    add_table_result(
        record, "public.small", {"rows": 3, "seconds": 0.5, "action": "rewritten", "sessions": 1}
    )
    assert record["tables"] == {
        "public.users": {"rows": 17, "seconds": 3.75, "action": "rebuilt", "parts": 2},
        "public.small": {"rows": 3, "seconds": 0.5, "action": "rewritten", "sessions": 1},
    }
