"""Rebase on PostgreSQL: every sequence of the working copy moved far above production's values (the step
is deid.steps.rebase; this module is what it asks Backend.rebase_database to do on PostgreSQL).

Every sequence is moved: serial and identity sequences, and sequences reached only through column DEFAULTs
(`'INV-' || nextval('invoice_seq')`) or by no column at all.

Per sequence, in one transaction:

- **high water**: the largest value production has used: the sequence's last value (or, when it has never
  been called, the value before its next one) and the maximum of every integer or numeric column it feeds,
  owned or through a DEFAULT; for a text column only the sequence's value counts. A partitioned table's
  maximum covers its partitions, which are then not read again.
- **bounds** (see deid.offsets): the sequence's MAXVALUE, the type of every column it feeds, the type of
  every column whose foreign key references one of those (an int4 `order_id` referencing a bigserial limits
  the bigserial), and for a varchar(n) column the digits left after the literal text of its DEFAULT.
- **offset**: `deid.offsets.offset_for(logical_date, high water, bounds)`; the next value is high water +
  offset (high water - offset for a descending sequence), set with `ALTER SEQUENCE ... RESTART WITH`.

Everything is read and every offset computed before anything is written, and every sequence that lacks room
is reported in one error. The writes are ALTER SEQUENCE, not setval(): setval() is not transactional (its
effect survives a rollback), ALTER SEQUENCE ... RESTART is (since PostgreSQL 10), so a failed rebase leaves
every sequence as it was.

**Idempotent.** A rerun on the same copy must not add the offset twice, and by then the sequence no longer
shows production's high water. So the step writes it down: it appends one line to the sequence's comment,

    deid rebase: production high water 12345 (logical date 2026-11-28, offset 536870911, next value ...)

keeping any comment production had above it. A rerun that finds the line, on a sequence still at or beyond
the recorded next value (so the line is ours, not one copied from elsewhere), computes from the recorded
production high water: the same date gives the same next value, another date that date's offset. Values
staging has used since (a migration's inserts, an advanced sequence) are never handed out again: the next
value is at least one step past them. The line stays in the published copy, where it tells staging users
where production's IDs end; IDs are not sensitive values.

The record (`ctx.record["offsets"]`) holds per sequence: sequence, columns, high_water, offset, next_value,
limit, limited_by, clamped and rerun: names and ID numbers only, never row data.

Known limits: a column filled by an expression of nextval (`nextval('s') * 10`) or by application code
(Hibernate's hi/lo) is limited by its type as if it held the sequence's value.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from deid import names
from deid.backends.postgresql.quoting import QUOTING, quote_ident, quote_literal
from deid.backends.rebasing import Facts, Marker, read_marker, with_marker
from deid.errors import TerminalError
from deid.offsets import (
    INTEGER_RANGES,
    Bound,
    NoRoom,
    character_length,
    digits_range,
    offset_for,
    type_range,
    widening,
)
from deid.schema import Column, Schema, Sequence, Table

log = logging.getLogger("deid.rebase")

CHUNK = 500  # statements per UNION ALL: one round trip per CHUNK sequences or columns
_RAW = {"no_parameters": True}  # statements built here hold quoted names; '%' in them is not a placeholder

# String literals of a DEFAULT expression, except the sequence name in nextval('s'::regclass).
_LITERAL = re.compile(r"'((?:[^']|'')*)'(?!::regclass)")


def rebase_database(connection: sa.Connection, schema: Schema, logical_date: dt.date) -> dict[str, dict]:
    """Rebase every sequence of `schema` in the database of `connection`, inside the caller's transaction.

    Returns, per qualified sequence name, the facts recorded for it (see the module docstring). Raises NoRoom
    (a TerminalError) naming every sequence that cannot be moved, before anything is written.
    """
    sequences = sorted(schema.sequences, key=lambda s: s.qualified)
    if not sequences:
        return {}
    columns = _Columns(schema)
    uses = {s.qualified: columns.using(s) for s in sequences}
    states = _read_states(connection, sequences)
    referencing = {use: columns.referencing(use) for used in uses.values() for use in used}
    fed_and_referencing = {*referencing, *(r for others in referencing.values() for r in others)}
    types = _base_types(connection, columns, fed_and_referencing)

    plans: list[_Plan] = []
    problems: list[str] = []
    waters = _waters(connection, columns, sequences, uses, states, types)
    for sequence in sequences:
        state = states[sequence.qualified]
        try:
            plans.append(
                _plan(
                    sequence,
                    state,
                    uses[sequence.qualified],
                    columns,
                    referencing,
                    types,
                    waters,
                    logical_date,
                )
            )
        except NoRoom as exc:
            problems.append(str(exc))
    if problems:
        raise NoRoom("\n".join(problems))

    for plan in plans:
        _apply(connection, plan)
        log.info(
            "rebase %s: high water %d, offset %d, next value %d%s",
            plan.sequence,
            plan.high_water,
            plan.offset,
            plan.next_value,
            " (rerun)" if plan.rerun else "",
        )
    return {plan.sequence: plan.record() for plan in plans}


# --- what the catalog and the data say -------------------------------------------------------------------

ColumnRef = tuple[str, str]  # (qualified table, column name)


@dataclass(frozen=True)
class _State:
    increment: int
    min_value: int
    max_value: int
    data_type: str
    last_value: int
    is_called: bool
    comment: str | None


class _Columns:
    """The schema's columns by their dotted names, and the foreign keys that reference each column."""

    def __init__(self, schema: Schema) -> None:
        self.tables = {t.qualified: t for t in schema.tables}
        self.by_name: dict[str, tuple[Table, Column]] = {
            names.column_key(t.qualified, c.name): (t, c) for t in schema.tables for c in t.columns
        }
        self.references: defaultdict[ColumnRef, set[ColumnRef]] = defaultdict(set)
        for table in schema.tables:
            for fk in table.foreign_keys:
                for column, ref_column in zip(fk.columns, fk.ref_columns, strict=False):
                    self.references[(fk.ref_table, ref_column)].add((table.qualified, column))

    def using(self, sequence: Sequence) -> tuple[ColumnRef, ...]:
        names = dict.fromkeys(filter(None, (sequence.owned_by, *sequence.used_by)))
        found = []
        for name in names:
            if name not in self.by_name:
                raise TerminalError(
                    f"Sequence {sequence.qualified} feeds {name}, which the schema does not list; "
                    "introspect the working copy again."
                )
            table, column = self.by_name[name]
            found.append((table.qualified, column.name))
        return tuple(sorted(found))

    def column(self, ref: ColumnRef) -> Column:
        column = self.tables[ref[0]].column(ref[1])
        assert column is not None, ref
        return column

    def quoted_table(self, ref: ColumnRef) -> str:
        table = self.tables[ref[0]]
        return f"{quote_ident(table.schema)}.{quote_ident(table.name)}"

    def parent_column(self, ref: ColumnRef) -> ColumnRef | None:
        parent = self.tables[ref[0]].partition_of
        return (parent, ref[1]) if parent else None

    def referencing(self, ref: ColumnRef) -> tuple[ColumnRef, ...]:
        """The columns whose foreign keys reference `ref`; a partition's only when its parent's does not."""
        found = self.references.get(ref, set())
        return tuple(sorted(r for r in found if self.parent_column(r) not in found))


SEQUENCE_STATES = sa.text("""
SELECT t.i, s.seqincrement AS increment, s.seqmin AS min_value, s.seqmax AS max_value,
       format_type(s.seqtypid, NULL) AS data_type, obj_description(c.oid, 'pg_class') AS comment
FROM unnest(CAST(:schemas AS text[]), CAST(:names AS text[])) WITH ORDINALITY AS t(schema_name, name, i)
JOIN pg_namespace n ON n.nspname = t.schema_name
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind = 'S'
JOIN pg_sequence s ON s.seqrelid = c.oid
""")

# A column's type with domains resolved to their base: format_type() of the base and the innermost typmod
# (varchar(12) of `CREATE DOMAIN code AS varchar(12)`); `builtin` when the base type is PostgreSQL's own.
BASE_TYPES = sa.text("""
WITH RECURSIVE target AS (
    SELECT t.i, a.atttypid AS typ, a.atttypmod AS typmod
    FROM unnest(CAST(:schemas AS text[]), CAST(:tables AS text[]), CAST(:columns AS text[]))
         WITH ORDINALITY AS t(schema_name, table_name, column_name, i)
    JOIN pg_namespace n ON n.nspname = t.schema_name
    JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = t.column_name
        AND a.attnum > 0 AND NOT a.attisdropped
),
base(i, typ, typmod) AS (
    SELECT i, typ, typmod FROM target
    UNION ALL
    SELECT b.i, ty.typbasetype, CASE WHEN b.typmod >= 0 THEN b.typmod ELSE ty.typtypmod END
    FROM base b JOIN pg_type ty ON ty.oid = b.typ
    WHERE ty.typtype = 'd'
)
SELECT b.i, format_type(b.typ, b.typmod) AS type_name, tn.nspname = 'pg_catalog' AS builtin
FROM base b
JOIN pg_type ty ON ty.oid = b.typ
JOIN pg_namespace tn ON tn.oid = ty.typnamespace
WHERE ty.typtype <> 'd'
""")


def _read_states(connection: sa.Connection, sequences: list[Sequence]) -> dict[str, _State]:
    params = {"schemas": [s.schema for s in sequences], "names": [s.name for s in sequences]}
    catalog = {row["i"] - 1: row for row in connection.execute(SEQUENCE_STATES, params).mappings()}
    missing = [s.qualified for i, s in enumerate(sequences) if i not in catalog]
    if missing:
        raise TerminalError(
            f"Sequences in the schema but not in the database: {', '.join(missing)}; "
            "introspect the working copy again."
        )
    values: dict[int, tuple[int, bool]] = {}
    for chunk in _chunks(list(enumerate(sequences))):
        sql = " UNION ALL ".join(f"SELECT {i} AS i, last_value, is_called FROM {_quote(s)}" for i, s in chunk)
        for i, last_value, is_called in connection.exec_driver_sql(sql, execution_options=_RAW):
            values[i] = (int(last_value), bool(is_called))
    states = {}
    for i, sequence in enumerate(sequences):
        row = catalog[i]
        states[sequence.qualified] = _State(
            increment=int(row["increment"]),
            min_value=int(row["min_value"]),
            max_value=int(row["max_value"]),
            data_type=row["data_type"],
            last_value=values[i][0],
            is_called=values[i][1],
            comment=row["comment"],
        )
    return states


def _base_types(
    connection: sa.Connection, columns: _Columns, refs: Iterable[ColumnRef]
) -> dict[ColumnRef, tuple[str, bool]]:
    """(type_name, builtin) per column; type_name is format_type() of the column's base type."""
    refs = sorted(refs)
    if not refs:
        return {}
    tables = [columns.tables[table] for table, _ in refs]
    params = {
        "schemas": [t.schema for t in tables],
        "tables": [t.name for t in tables],
        "columns": [column for _, column in refs],
    }
    return {
        refs[row["i"] - 1]: (row["type_name"], row["builtin"])
        for row in connection.execute(BASE_TYPES, params).mappings()
    }


def _is_number(types: dict[ColumnRef, tuple[str, bool]], ref: ColumnRef) -> bool:
    type_name, builtin = types.get(ref, ("", False))
    return builtin and (type_name in INTEGER_RANGES or type_name.startswith("numeric"))


def _waters(
    connection: sa.Connection,
    columns: _Columns,
    sequences: list[Sequence],
    uses: dict[str, tuple[ColumnRef, ...]],
    states: dict[str, _State],
    types: dict[ColumnRef, tuple[str, bool]],
) -> dict[tuple[ColumnRef, str], int | None]:
    """The max (min, for descending sequences) of every number column a sequence feeds: one query per
    CHUNK columns. A partition is skipped when its parent is read: the parent's maximum covers it."""
    wanted: dict[tuple[ColumnRef, str], None] = {}
    for sequence in sequences:
        used = set(uses[sequence.qualified])
        aggregate = "max" if states[sequence.qualified].increment > 0 else "min"
        for ref in uses[sequence.qualified]:
            if _is_number(types, ref) and columns.parent_column(ref) not in used:
                wanted[(ref, aggregate)] = None
    found: dict[tuple[ColumnRef, str], int | None] = {}
    for chunk in _chunks(list(enumerate(wanted))):
        sql = " UNION ALL ".join(
            f"SELECT {i} AS i, {aggregate}({quote_ident(ref[1])})::numeric AS v "
            f"FROM {columns.quoted_table(ref)}"
            for i, (ref, aggregate) in chunk
        )
        by_index = dict(connection.exec_driver_sql(sql, execution_options=_RAW).all())
        for i, key in chunk:
            value = by_index[i]
            # A numeric column may hold fractions: round away from the sequence's direction of travel.
            found[key] = (
                None if value is None else (math.ceil(value) if key[1] == "max" else math.floor(value))
            )
    return found


# --- the plan per sequence ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan(Facts):
    target: Sequence
    comment: str


def _plan(
    sequence: Sequence,
    state: _State,
    used: tuple[ColumnRef, ...],
    columns: _Columns,
    referencing: dict[ColumnRef, tuple[ColumnRef, ...]],
    types: dict[ColumnRef, tuple[str, bool]],
    waters: dict[tuple[ColumnRef, str], int | None],
    logical_date: dt.date,
) -> _Plan:
    name = sequence.qualified
    sign = 1 if state.increment > 0 else -1
    aggregate = "max" if sign > 0 else "min"
    bounds = [_sequence_bound(name, state, sign)]
    for ref in used:
        bounds.extend(_column_bounds(ref, types, sign, default=columns.column(ref).default or ""))
        for other in referencing.get(ref, ()):
            bounds.extend(_column_bounds(other, types, sign, references=ref))

    extreme = max if sign > 0 else min
    marker = read_marker(state.comment)
    if marker is not None and sign * state.last_value < sign * marker.next_value:
        marker = None  # not this copy's: the sequence never reached the recorded next value
    # Values this database has used: the number columns' extremes, and the sequence's own value unless it
    # still stands where a rebase put it (RESTART WITH: that value was never handed out).
    used_values = [waters.get((ref, aggregate)) for ref in used]
    if marker is None or state.is_called:
        used_values.append(state.last_value if state.is_called else state.last_value - state.increment)
    present = [v for v in used_values if v is not None]
    high_water = marker.high_water if marker is not None else extreme(present)
    current = extreme([*present, high_water])

    planned = offset_for(logical_date, high_water, bounds, sequence=name, increment=state.increment)
    next_value = high_water + sign * planned.offset
    floor = current + state.increment
    if sign * next_value < sign * floor:
        next_value = floor
    hard_limit = min(sign * b.value for b in bounds)
    if sign * next_value > hard_limit:
        raise NoRoom(
            f"sequence {name}: the values already used reach {current:,}, "
            f"past its limit {sign * hard_limit:,}"
        )
    return _Plan(
        sequence=name,
        target=sequence,
        columns=tuple(names.column_key(table, column) for table, column in used),
        high_water=high_water,
        offset=planned.offset,
        next_value=next_value,
        limit=planned.limit,
        limited_by=planned.limited_by,
        clamped=planned.clamped,
        rerun=marker is not None,
        comment=with_marker(
            state.comment, Marker(high_water, logical_date.isoformat(), planned.offset, next_value)
        ),
    )


def _sequence_bound(name: str, state: _State, sign: int) -> Bound:
    value = state.max_value if sign > 0 else state.min_value
    type_limits = INTEGER_RANGES.get(state.data_type)
    at_type_limit = type_limits is not None and value == type_limits[1 if sign > 0 else 0]
    if at_type_limit:
        what = f"sequence {name} ({state.data_type})"
        wider = {"smallint": "integer", "integer": "bigint"}.get(state.data_type)
        fix = f"widen sequence {name} to {wider} (ALTER SEQUENCE ... AS {wider})" if wider else ""
    else:
        keyword = "MAXVALUE" if sign > 0 else "MINVALUE"
        what = f"sequence {name} ({keyword} {value:,})"
        fix = f"change the {keyword} of sequence {name} (ALTER SEQUENCE ... {keyword} ...)"
    return Bound(value, what, fix)


def _column_bounds(
    ref: ColumnRef,
    types: dict[ColumnRef, tuple[str, bool]],
    sign: int,
    *,
    default: str | None = None,
    references: ColumnRef | None = None,
) -> Iterator[Bound]:
    """The bound a column's type sets on the values of the sequence that feeds it (`default`: the column's
    DEFAULT expression) or that feeds the column its foreign key `references`."""
    type_name, builtin = types.get(ref, ("", False))
    if not builtin:
        return
    dotted = names.column_key(*ref)
    note = f", references {names.column_key(*references)}" if references else ""
    limits = type_range(type_name)
    if limits is not None:
        yield Bound(
            limits[1] if sign > 0 else limits[0], f"{dotted} ({type_name}{note})", widening(type_name, dotted)
        )
        return
    length = character_length(type_name)
    if length is not None and default is not None:
        fixed = _fixed_characters(default)
        limits = digits_range(length - fixed)
        added = f"; its DEFAULT adds {fixed} characters" if fixed else ""
        yield Bound(
            limits[1] if sign > 0 else limits[0],
            f"{dotted} ({type_name}{added})",
            widening(type_name, dotted),
        )


def _fixed_characters(default: str | None) -> int:
    """Characters a DEFAULT adds to the sequence's digits: the text of its string literals, bar the
    sequence name. `'INV-'::text || nextval('invoice_seq'::regclass)` adds 4."""
    if not default:
        return 0
    return sum(len(m[1].replace("''", "'")) for m in _LITERAL.finditer(default))


# --- the marker and the writes -----------------------------------------------------------------------------


def _apply(connection: sa.Connection, plan: _Plan) -> None:
    name = _quote(plan.target)
    connection.exec_driver_sql(
        f"ALTER SEQUENCE {name} RESTART WITH {int(plan.next_value)}", execution_options=_RAW
    )
    connection.exec_driver_sql(
        f"COMMENT ON SEQUENCE {name} IS {quote_literal(plan.comment)}", execution_options=_RAW
    )


def _quote(sequence: Sequence) -> str:
    return QUOTING.qualified(sequence.schema, sequence.name)


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
