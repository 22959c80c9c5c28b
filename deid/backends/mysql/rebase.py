"""Rebase on MySQL and MariaDB: every table's AUTO_INCREMENT counter, and every MariaDB SEQUENCE object
(deid.backends.mysql.sequences), moved far above production's values (the step is deid.steps.rebase; this
is what it asks Backend.rebase_database to do on this engine).

Introspection lists each counter as an identity sequence named after its table and owned by its column
(deid.backends.mysql.introspect). Per counter:

- **high water**: the largest value production has used: the counter's next value less one, or the column's
  maximum when that is higher.
- **bounds** (see deid.offsets): the range of the column's type, signed or UNSIGNED (TINYINT .. BIGINT;
  FLOAT and DOUBLE as far as they hold integers exactly), and of every column whose foreign key references
  it (an INT `order_id` referencing a BIGINT id limits the BIGINT's counter). A counter is never set past
  its column's type: MariaDB accepts `AUTO_INCREMENT = 3000000000` on a signed INT and then fails every
  insert ("Out of range value"), and a BIGINT UNSIGNED counter at 2^64 - 1 fails every insert too ("Failed to
  read auto-increment value"), so that type's last usable value is 2^64 - 2.
- **offset**: `deid.offsets.offset_for(logical_date, high water, bounds)`; the next value is high water +
  offset, set with `ALTER TABLE t AUTO_INCREMENT = n` (for InnoDB a change of metadata only: no row is
  copied, whatever the table's size).

**DDL is not transactional here**: every ALTER TABLE commits. So everything is read and every offset
computed before anything is altered, and every counter and sequence without room is reported in one
NoRoom. A rebase that stops half way (a lost connection) leaves some tables moved and marked, which a rerun
recognises.

**The server may ignore the value.** InnoDB and MariaDB quietly keep a counter below the column's maximum at
maximum + 1 instead of the value asked for. The values asked for here are always above both, but the
counters are read back after the ALTERs and any that did not take fails the rebase, naming the tables.
The read-back is information_schema.TABLES.AUTO_INCREMENT: MariaDB asks the storage engine each time (so a
value set a moment ago is seen); MySQL 8 serves it from a cache of table statistics refreshed only every
`information_schema_stats_expiry` seconds (a day by default), so on MySQL the session sets that to 0 while
it reads, and puts it back after.

**Idempotent.** A rerun on the same copy must not add the offset twice, and by then the counter no longer
shows production's high water. A counter has no comment of its own, so the marker goes on its table's
COMMENT, in the same ALTER TABLE that moves the counter (the two change together or not at all):

    deid rebase: production high water 12345 (logical date 2026-11-28, offset 536870911, next value ...)

below any comment production had. The table's comment travels with the table through a dump, a RENAME TABLE
(publish) and into the staging copy, where it tells staging users where production's ids end (ids are not
sensitive values). A small table of deid's inside the copy was the other choice, but every table of a copy
is scrubbed, checked and published under the rule file, and the marker would be a separate write from the
counter's. The cost: a table comment holds at most 2048 characters, so a production comment that leaves no
room for the marker line (about 130 characters) is refused before anything is altered, naming the table.
A rerun that finds the line, on a counter still at or beyond the recorded next value (so the line is ours,
not one copied from elsewhere), computes from the recorded high water, as deid.backends.postgresql.rebase
does; values staging has used since are never handed out again.

The record holds per counter: sequence (the table's key), columns, high_water, offset, next_value, limit,
limited_by, clamped and rerun: names and id numbers only, never row data; per sequence the same keys
(`sequence` is the sequence's key).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from deid import names, rawsql
from deid.backends.mysql import texts
from deid.backends.mysql.quoting import quote_identifier, quote_literal
from deid.backends.rebasing import Facts, Marker, read_marker, with_marker
from deid.errors import TerminalError
from deid.offsets import Bound, NoRoom, offset_for
from deid.schema import Column, Schema, Sequence, Table

log = logging.getLogger("deid.rebase")

CHUNK = 500  # MAX() reads per UNION ALL
COMMENT_LIMIT = 2048  # characters of a table's COMMENT (MySQL 5.7+, MariaDB)

# The integers each type holds, (signed, unsigned). FLOAT and DOUBLE count as far as every integer is exact.
INTEGER_TYPES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "tinyint": ((-(2**7), 2**7 - 1), (0, 2**8 - 1)),
    "smallint": ((-(2**15), 2**15 - 1), (0, 2**16 - 1)),
    "mediumint": ((-(2**23), 2**23 - 1), (0, 2**24 - 1)),
    "int": ((-(2**31), 2**31 - 1), (0, 2**32 - 1)),
    # BIGINT UNSIGNED's counter cannot reach 2^64 - 1: an insert then fails
    "bigint": ((-(2**63), 2**63 - 1), (0, 2**64 - 2)),
    "float": ((-(2**24), 2**24), (0, 2**24)),
    "double": ((-(2**53), 2**53), (0, 2**53)),
}
_WIDER = {"tinyint": "SMALLINT", "smallint": "MEDIUMINT", "mediumint": "INT", "int": "BIGINT"}
_ALIASES = {"integer": "int", "real": "double", "double precision": "double"}
_TYPE = re.compile(
    r"(tinyint|smallint|mediumint|integer|int|bigint|float|double precision|double|real)"
    r"(?:\(\d+(?:,\d+)?\))?((?:\s+(?:signed|unsigned|zerofill))*)",
    re.I,
)


COUNTERS = sa.text("""
SELECT TABLE_NAME AS name, AUTO_INCREMENT AS counter, TABLE_COMMENT AS comment
FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE <> 'VIEW'
""")


def column_range(column_type: str) -> tuple[int, int] | None:
    """The integers a column of this COLUMN_TYPE holds ("int(11)", "bigint unsigned zerofill"); None for a
    type that holds no counter."""
    match = _TYPE.fullmatch(column_type.strip())
    if match is None:
        return None
    base = _ALIASES.get(match[1].lower(), match[1].lower())
    flags = match[2].lower()
    unsigned = "unsigned" in flags or "zerofill" in flags  # ZEROFILL implies UNSIGNED
    return INTEGER_TYPES[base][1 if unsigned else 0]


def rebase_database(connection: sa.Connection, schema: Schema, logical_date: dt.date) -> dict[str, dict]:
    """Move every AUTO_INCREMENT counter and every sequence of `schema` in the database of `connection`.

    Returns, per counter (the table's key) and per sequence, the facts recorded for it (see the module
    docstring). Raises NoRoom naming every counter and sequence that cannot be moved, before anything is
    altered; TerminalError when the server did not take a value.
    """
    # sequences.py builds on this module's column bounds, so it is imported here, not at the top
    from deid.backends.mysql import sequences as sequence_objects

    counters = sorted((s for s in schema.sequences if s.identity), key=lambda s: s.qualified)
    objects = sorted((s for s in schema.sequences if not s.identity), key=lambda s: s.qualified)
    tables = {t.qualified: t for t in schema.tables}
    mysql8 = not texts.is_mariadb(connection.execute(sa.text("SELECT VERSION()")).scalar_one())
    with _fresh_statistics(connection, mysql8 and bool(counters)):
        plans: list[_Plan] = []
        problems: list[str] = []
        if counters:
            states = _read_counters(connection, counters, tables)
            maxima = _maxima(connection, counters, tables)
            for counter in counters:
                try:
                    plans.append(_plan(counter, tables, states[counter.qualified], maxima, logical_date))
                except NoRoom as exc:
                    problems.append(str(exc))
        sequence_plans, sequence_problems = sequence_objects.plan_sequences(
            connection, schema, objects, logical_date
        )
        problems.extend(sequence_problems)
        if problems:
            raise NoRoom("\n".join(problems))

        for plan in plans:
            set_counter(connection, plan.table, plan.next_value, plan.comment, key=plan.sequence)
        for sequence_plan in sequence_plans:
            sequence_objects.set_sequence(connection, sequence_plan)
    done: list[Facts] = [*plans, *sequence_plans]
    for plan in done:
        log.info(
            "rebase %s: high water %d, offset %d, next value %d%s",
            plan.sequence,
            plan.high_water,
            plan.offset,
            plan.next_value,
            " (rerun)" if plan.rerun else "",
        )
    return {plan.sequence: plan.record() for plan in done}


# --- what the server says ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    counter: int  # the next value the table hands out
    comment: str


@contextmanager
def _fresh_statistics(connection: sa.Connection, mysql8: bool) -> Iterator[None]:
    """On MySQL 8, information_schema.TABLES.AUTO_INCREMENT read live for the block (see the docstring)."""
    if not mysql8:
        yield
        return
    saved = connection.execute(sa.text("SELECT @@SESSION.information_schema_stats_expiry")).scalar_one()
    connection.execute(sa.text("SET SESSION information_schema_stats_expiry = 0"))
    yield
    connection.execute(sa.text("SET SESSION information_schema_stats_expiry = :v"), {"v": int(saved)})


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _read_counters(
    connection: sa.Connection, counters: list[Sequence], tables: dict[str, Table]
) -> dict[str, _State]:
    rows = {_text(r.name): r for r in connection.execute(COUNTERS)}
    states, missing = {}, []
    for counter in counters:
        row = rows.get(_table(counter, tables).name)
        if row is None or row.counter is None:
            missing.append(counter.qualified)
            continue
        states[counter.qualified] = _State(int(row.counter), _text(row.comment) or "")
    if missing:
        raise TerminalError(
            f"tables without an AUTO_INCREMENT counter in the database, though the schema lists one: "
            f"{', '.join(missing)}; introspect the working copy again."
        )
    return states


def _maxima(
    connection: sa.Connection, counters: list[Sequence], tables: dict[str, Table]
) -> dict[str, int | None]:
    """The maximum of each counter's column (an index lookup: the column leads an index), by counter."""
    found: dict[str, int | None] = {}
    for chunk in chunks(counters):
        reads = [
            sa.select(
                sa.literal(i).label("i"), sa.func.max(sa.column(_column(c, tables).name)).label("v")
            ).select_from(sa.table(_table(c, tables).name))
            for i, c in enumerate(chunk)
        ]
        values = dict(connection.execute(sa.union_all(*reads)).all())
        for i, counter in enumerate(chunk):
            value = values[i]
            found[counter.qualified] = None if value is None else math.ceil(value)
    return found


# --- the plan per counter ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan(Facts):
    table: str  # its name in the database
    comment: str


def _plan(
    counter: Sequence,
    tables: dict[str, Table],
    state: _State,
    maxima: dict[str, int | None],
    logical_date: dt.date,
) -> _Plan:
    name = counter.qualified
    table, column = _table(counter, tables), _column(counter, tables)
    dotted = names.column_key(table.qualified, column.name)
    found = [column_bound(dotted, column)]
    found += [
        column_bound(key, other, references=dotted) for key, other in referencing(table, column, tables)
    ]
    bounds = [b for b in found if b is not None]
    if not bounds:
        raise TerminalError(f"{dotted} ({column.data_type}) is AUTO_INCREMENT but not of an integer type")

    marker = read_marker(state.comment)
    if marker is not None and state.counter < marker.next_value:
        marker = None  # not this copy's: the counter never reached the recorded next value
    # Values this database has used: the column's maximum and the counter's value less one (a counter
    # where a rebase put it was never used, but counting it keeps a rerun from asking for less).
    present = [v for v in (maxima[name], state.counter - 1) if v is not None]
    high_water = marker.high_water if marker is not None else max(present)
    current = max([*present, high_water])

    planned = offset_for(logical_date, high_water, bounds, sequence=name)
    next_value = max(high_water + planned.offset, current + 1)
    hard_limit = min(b.value for b in bounds)
    if next_value > hard_limit:
        raise NoRoom(
            f"counter {name}: the values already used reach {current:,}, past its limit {hard_limit:,}"
        )
    comment = with_marker(
        state.comment, Marker(high_water, logical_date.isoformat(), planned.offset, next_value)
    )
    if len(comment) > COMMENT_LIMIT:
        raise NoRoom(
            f"table {table.qualified}: its COMMENT leaves no room for the rebase's marker line (a table "
            f"comment holds {COMMENT_LIMIT} characters; with the marker it would have {len(comment)}). Fix: "
            "shorten the table's comment in production (ALTER TABLE ... COMMENT = '...')"
        )
    return _Plan(
        sequence=name,
        table=table.name,
        columns=(dotted,),
        high_water=high_water,
        offset=planned.offset,
        next_value=next_value,
        limit=planned.limit,
        limited_by=planned.limited_by,
        clamped=planned.clamped,
        rerun=marker is not None,
        comment=comment,
    )


def column_bound(
    dotted: str, column: Column, *, sign: int = 1, references: str | None = None
) -> Bound | None:
    """The bound an integer column's type sets on the counter or sequence that feeds it (or that feeds the
    column its foreign key `references`): its largest value, or its smallest for a descending sequence
    (`sign` -1); None for a type that holds no counter."""
    limits = column_range(column.data_type)
    if limits is None:
        return None
    note = f", references {references}" if references else ""
    base = _TYPE.fullmatch(column.data_type.strip())
    wider = _WIDER.get(_ALIASES.get(base[1].lower(), base[1].lower())) if base else None
    unsigned = " UNSIGNED" if limits[0] == 0 else ""
    wide = f"{wider}{unsigned}"
    fix = f"widen {dotted} to {wide} (ALTER TABLE ... MODIFY ... {wide} ...) in production" if wider else ""
    return Bound(limits[1] if sign > 0 else limits[0], f"{dotted} ({column.data_type}{note})", fix)


def referencing(table: Table, column: Column, tables: dict[str, Table]) -> Iterator[tuple[str, Column]]:
    """The columns whose foreign keys reference `column` of `table`."""
    for other in tables.values():
        for fk in other.foreign_keys:
            if fk.ref_table != table.qualified:
                continue
            for own, ref in zip(fk.columns, fk.ref_columns, strict=False):
                found = other.column(own)
                if ref == column.name and found is not None:
                    yield names.column_key(other.qualified, own), found


def _table(counter: Sequence, tables: dict[str, Table]) -> Table:
    table_key, _ = _owner(counter)
    return tables[table_key]


def _column(counter: Sequence, tables: dict[str, Table]) -> Column:
    table_key, column_name = _owner(counter)
    column = tables[table_key].column(column_name)
    assert column is not None, counter
    return column


def _owner(counter: Sequence) -> tuple[str, str]:
    assert counter.owned_by is not None, counter
    schema, table, column = names.column_names(counter.owned_by)
    return names.key(schema, table), column


# --- the marker and the writes ------------------------------------------------------------------------------


COUNTER = sa.text("""
SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name
""")


def set_counter(connection: sa.Connection, table: str, next_value: int, comment: str, *, key: str) -> None:
    """Set the AUTO_INCREMENT counter of `table` (its name in the database; `key` names it in messages) and
    its COMMENT in one statement, so that they change together or not at all; then read the counter back.
    TerminalError when the server kept another value: it keeps a counter at the column's maximum + 1 rather
    than a lower value, without a warning."""
    # no parameters (sa.text would read a ':x' in the name as one, PyMySQL's a '%'): the comment is deid's
    # marker (names and numbers), written as a literal
    rawsql.execute(
        connection,
        f"ALTER TABLE {quote_identifier(table)} AUTO_INCREMENT = {int(next_value)}, "
        f"COMMENT = {quote_literal(comment)}",
    )
    kept = connection.execute(COUNTER, {"name": table}).scalar()
    if kept is None or int(kept) != next_value:
        raise TerminalError(
            f"the server did not take AUTO_INCREMENT = {next_value:,} for {key}: it keeps "
            f"{'no counter' if kept is None else format(int(kept), ',')} (a server keeps a counter at the "
            "column's maximum + 1 rather than a lower value, and a storage engine may ignore the setting). "
            "Fix: make sure nothing inserts into the working copy while it is rebased, and that the table's "
            "storage engine keeps AUTO_INCREMENT (InnoDB, Aria and MyISAM do); then run the step again"
        )


def chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
