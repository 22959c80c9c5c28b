"""Rebase of MariaDB's SEQUENCE objects (`CREATE SEQUENCE`; MySQL 8 has none): each moved far above
production's values, as deid.backends.postgresql.rebase moves PostgreSQL's. deid.backends.mysql.rebase
calls this beside its AUTO_INCREMENT counters, so that one NoRoom names every id source without room before
anything is altered.

Introspection lists each sequence with the columns whose DEFAULT draws from it (`DEFAULT NEXTVAL(s)`,
`DEFAULT (CONCAT('INV-', NEXTVAL(s)))`). A sequence is a one-row table: `SELECT ... FROM s` gives its
state. Per sequence:

- **high water**: the largest value production may have handed out: the sequence's next_not_cached_value
  less its increment (values up to there may sit in a server's cache, handed out after the copy was taken,
  so they count as used), and the maximum of every number column it feeds; for a text column only the
  sequence counts. A descending sequence (INCREMENT BY -n) is the mirror image: minima. INCREMENT 0 (the
  server's auto_increment_increment) counts as ascending by 1.
- **bounds** (see deid.offsets): the sequence's MAXVALUE (MINVALUE when descending); the type of every
  column it feeds and of every column whose foreign key references one of those (INT, BIGINT UNSIGNED,
  DECIMAL(p,s), ...); for a CHAR(n)/VARCHAR(n) column the digits left after the literal text of its DEFAULT
  (`CONCAT('INV-', NEXTVAL(s))` in a VARCHAR(12) leaves 8).
- **offset**: `deid.offsets.offset_for(logical_date, high water, bounds)`; the next value is high water +
  offset, set with `ALTER SEQUENCE s RESTART WITH n` (unlike SETVAL, which ignores a value below the
  sequence's, RESTART sets what it is told; it refuses one below MINVALUE but takes one past MAXVALUE, after
  which NEXTVAL fails, so the bounds keep it below). RESTART also drops the values a server had cached.

**The marker** (deid.backends.rebasing) goes on the sequence's COMMENT: a sequence is a table to MariaDB,
`ALTER TABLE s COMMENT = '...'` sets it, SHOW CREATE SEQUENCE and a dump carry it, and RENAME TABLE moves
it with the sequence. ALTER SEQUENCE takes no COMMENT, so the counter's single statement is not possible;
instead the comment is written twice around the RESTART: first with the value the sequence stands at,
then with the new one. A rerun trusts a marker only on a sequence at or past its recorded next value, and
each of the three statements leaves such a marker (or production's comment, before the first): a rebase
cut off between them is taken up from the recorded high water, never adding the offset twice.

A column whose DEFAULT draws from a sequence of another database (`NEXTVAL(learners.invoice_seq)`: a
table copied with its DEFAULT spelled with production's database) is refused: its inserts would take
production's values, and the copy's own sequence is not the one they use.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from deid import names, rawsql
from deid.backends.mysql.quoting import quote_identifier, quote_literal
from deid.backends.mysql.rebase import COMMENT_LIMIT, chunks, column_bound, column_range, referencing
from deid.backends.rebasing import Facts, Marker, read_marker, with_marker
from deid.errors import TerminalError
from deid.offsets import Bound, NoRoom, character_length, digits_range, offset_for
from deid.schema import Column, Schema, Sequence, Table

# The bigint range of MariaDB 10.11's sequences: MAXVALUE and MINVALUE at these are the type's, not a choice.
TYPE_MAXVALUE = 2**63 - 2
TYPE_MINVALUE = -(2**63) + 1

_BACKQUOTED = re.compile(r"`(?:[^`]|``)*`")
# A string literal as MariaDB prints an expression: quotes doubled or backslash-escaped.
_LITERAL = re.compile(r"'((?:[^'\\]|\\.|'')*)'", re.S)
_ESCAPE = re.compile(r"\\.|''", re.S)
_DECIMAL = re.compile(r"decimal\((\d+)(?:,(\d+))?\)((?:\s+(?:unsigned|zerofill))*)", re.I)
# NEXTVAL of a sequence named with its database: introspection leaves only other databases' names on
_OUTSIDE = re.compile(r"\bnextval\(\s*(`(?:[^`]|``)+`\s*\.\s*`(?:[^`]|``)+`)\s*\)", re.I)

ColumnRef = tuple[str, str]  # (qualified table, column name)


@dataclass(frozen=True)
class SequencePlan(Facts):
    name: str  # its name in the database
    interim: str  # the comment written before the RESTART: the marker at the value the sequence stands at
    comment: str  # the comment written after it


def plan_sequences(
    connection: sa.Connection, schema: Schema, sequences: list[Sequence], logical_date: dt.date
) -> tuple[list[SequencePlan], list[str]]:
    """The plan per sequence, and the NoRoom message of each sequence without room (nothing written).
    TerminalError when a column draws ids from a sequence outside the database."""
    _refuse_outside_draws(schema)
    if not sequences:
        return [], []
    tables = {t.qualified: t for t in schema.tables}
    uses = {s.qualified: _using(s, tables) for s in sequences}
    states = _read_states(connection, sequences)
    extremes = _extremes(connection, tables, sequences, uses, states)
    plans, problems = [], []
    for sequence in sequences:
        try:
            plans.append(
                _plan(
                    sequence,
                    states[sequence.qualified],
                    uses[sequence.qualified],
                    tables,
                    extremes,
                    logical_date,
                )
            )
        except NoRoom as exc:
            problems.append(str(exc))
    return plans, problems


def set_sequence(connection: sa.Connection, plan: SequencePlan) -> None:
    """Comment, RESTART, comment (see the module docstring); then read the sequence back. TerminalError
    when the server kept another value."""
    quoted = quote_identifier(plan.name)
    # the comments are deid's markers (names and numbers), written as literals: no parameters, so a '%' of
    # the name is no placeholder (deid.rawsql)
    rawsql.execute(connection, f"ALTER TABLE {quoted} COMMENT = {quote_literal(plan.interim)}")
    rawsql.execute(connection, f"ALTER SEQUENCE {quoted} RESTART WITH {int(plan.next_value)}")
    rawsql.execute(connection, f"ALTER TABLE {quoted} COMMENT = {quote_literal(plan.comment)}")
    kept = connection.execute(
        sa.select(sa.column("next_not_cached_value")).select_from(sa.table(plan.name))
    ).scalar_one()
    if int(kept) != plan.next_value:
        raise TerminalError(
            f"the server did not take RESTART WITH {plan.next_value:,} for sequence {plan.sequence}: its "
            f"next value is {int(kept):,}. Fix: make sure nothing draws from the working copy's sequences "
            "while it is rebased; then run the step again"
        )


# --- what the server says ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    next_value: int  # next_not_cached_value: no value at or past it was handed out
    minimum: int
    maximum: int
    increment: int  # INCREMENT 0 (the server's auto_increment_increment) read as 1
    comment: str

    @property
    def sign(self) -> int:
        return -1 if self.increment < 0 else 1


COMMENTS = sa.text("""
SELECT TABLE_NAME AS name, TABLE_COMMENT AS comment
FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'SEQUENCE'
""")
_STATE_COLUMNS = ("next_not_cached_value", "minimum_value", "maximum_value", "increment")


def _read_states(connection: sa.Connection, sequences: list[Sequence]) -> dict[str, _State]:
    comments = {_text(r.name): _text(r.comment) or "" for r in connection.execute(COMMENTS)}
    missing = [s.qualified for s in sequences if s.name not in comments]
    if missing:
        raise TerminalError(
            f"sequences in the schema but not in the database: {', '.join(missing)}; introspect the "
            "working copy again."
        )
    states = {}
    for chunk in chunks(sequences):
        reads = [
            sa.select(sa.literal(i).label("i"), *map(sa.column, _STATE_COLUMNS)).select_from(sa.table(s.name))
            for i, s in enumerate(chunk)
        ]
        rows = {row.i: row for row in connection.execute(sa.union_all(*reads))}
        for i, sequence in enumerate(chunk):
            row = rows[i]
            states[sequence.qualified] = _State(
                next_value=int(row.next_not_cached_value),
                minimum=int(row.minimum_value),
                maximum=int(row.maximum_value),
                increment=int(row.increment) or 1,
                comment=comments[sequence.name],
            )
    return states


def _text(value: object) -> object:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _refuse_outside_draws(schema: Schema) -> None:
    found = [
        f"{names.column_key(t.qualified, c.name)} (NEXTVAL({m[1]}))"
        for t in schema.tables
        for c in t.columns
        if c.default and not c.generated
        for m in _OUTSIDE.finditer(c.default)
    ]
    if found:
        raise TerminalError(
            "columns draw their ids from a sequence of another database, which the rebase cannot move: "
            f"{'; '.join(found)}. Staging's inserts would take (and advance) that sequence's values. Fix: "
            "the copy's DEFAULTs must name its own sequence (ALTER TABLE ... ALTER COLUMN ... SET DEFAULT "
            "(... NEXTVAL(seq) ...) in the working copy, which the clone should do)"
        )


def _using(sequence: Sequence, tables: dict[str, Table]) -> tuple[ColumnRef, ...]:
    found = set()
    for key in sequence.used_by:
        schema_name, table_name, column_name = names.column_names(key)
        table = tables.get(names.key(schema_name, table_name))
        if table is None or table.column(column_name) is None:
            raise TerminalError(
                f"sequence {sequence.qualified} feeds {key}, which the schema does not list; introspect the "
                "working copy again."
            )
        found.add((table.qualified, column_name))
    return tuple(sorted(found))


def _column(tables: dict[str, Table], ref: ColumnRef) -> Column:
    column = tables[ref[0]].column(ref[1])
    assert column is not None, ref
    return column


def _is_number(column: Column) -> bool:
    return (
        column_range(column.data_type) is not None or _DECIMAL.fullmatch(column.data_type.strip()) is not None
    )


def _extremes(
    connection: sa.Connection,
    tables: dict[str, Table],
    sequences: list[Sequence],
    uses: dict[str, tuple[ColumnRef, ...]],
    states: dict[str, _State],
) -> dict[tuple[ColumnRef, str], int | None]:
    """The max (min, for a descending sequence) of every number column a sequence feeds."""
    wanted = list(
        dict.fromkeys(
            (ref, "max" if states[s.qualified].sign > 0 else "min")
            for s in sequences
            for ref in uses[s.qualified]
            if _is_number(_column(tables, ref))
        )
    )
    found: dict[tuple[ColumnRef, str], int | None] = {}
    for chunk in chunks(wanted):
        reads = [
            sa.select(
                sa.literal(i).label("i"), getattr(sa.func, aggregate)(sa.column(ref[1])).label("v")
            ).select_from(sa.table(tables[ref[0]].name))
            for i, (ref, aggregate) in enumerate(chunk)
        ]
        values = dict(connection.execute(sa.union_all(*reads)).all())
        for i, key in enumerate(chunk):
            value = values[i]
            # a DECIMAL or DOUBLE may hold fractions: round away from the sequence's direction of travel
            found[key] = (
                None if value is None else (math.ceil(value) if key[1] == "max" else math.floor(value))
            )
    return found


# --- the plan per sequence ---------------------------------------------------------------------------------


def _plan(
    sequence: Sequence,
    state: _State,
    used: tuple[ColumnRef, ...],
    tables: dict[str, Table],
    extremes: dict[tuple[ColumnRef, str], int | None],
    logical_date: dt.date,
) -> SequencePlan:
    name, sign = sequence.qualified, state.sign
    bounds = [_sequence_bound(name, state)]
    for ref in used:
        column = _column(tables, ref)
        fixed = fixed_characters(column.default)
        dotted = names.column_key(*ref)
        bounds.extend(_bounds(dotted, column, sign, fixed))
        for other_key, other in referencing(tables[ref[0]], column, tables):
            bounds.extend(_bounds(other_key, other, sign, fixed, references=dotted))

    extreme = max if sign > 0 else min
    marker = read_marker(state.comment)
    if marker is not None and sign * state.next_value < sign * marker.next_value:
        marker = None  # not this copy's: the sequence never reached the recorded next value
    aggregate = "max" if sign > 0 else "min"
    present = [extremes.get((ref, aggregate)) for ref in used] + [state.next_value - state.increment]
    present = [v for v in present if v is not None]
    high_water = marker.high_water if marker is not None else extreme(present)
    current = extreme([*present, high_water])

    planned = offset_for(logical_date, high_water, bounds, sequence=name, increment=state.increment)
    next_value = extreme(high_water + sign * planned.offset, current + state.increment)
    hard_limit = min(sign * b.value for b in bounds)
    if sign * next_value > hard_limit:
        raise NoRoom(
            f"sequence {name}: the values already used reach {current:,}, "
            f"past its limit {sign * hard_limit:,}"
        )
    date = logical_date.isoformat()
    comment = with_marker(state.comment, Marker(high_water, date, planned.offset, next_value))
    if len(comment) > COMMENT_LIMIT:
        raise NoRoom(
            f"sequence {name}: its COMMENT leaves no room for the rebase's marker line (a comment holds "
            f"{COMMENT_LIMIT} characters; with the marker it would have {len(comment)}). Fix: shorten the "
            "sequence's comment in production (ALTER TABLE ... COMMENT = '...')"
        )
    return SequencePlan(
        sequence=name,
        columns=tuple(names.column_key(*ref) for ref in used),
        high_water=high_water,
        offset=planned.offset,
        next_value=next_value,
        limit=planned.limit,
        limited_by=planned.limited_by,
        clamped=planned.clamped,
        rerun=marker is not None,
        name=sequence.name,
        interim=with_marker(state.comment, Marker(high_water, date, planned.offset, state.next_value)),
        comment=comment,
    )


def _sequence_bound(name: str, state: _State) -> Bound:
    if state.sign > 0:
        value, keyword, at_type = state.maximum, "MAXVALUE", state.maximum >= TYPE_MAXVALUE
    else:
        value, keyword, at_type = state.minimum, "MINVALUE", state.minimum <= TYPE_MINVALUE
    if at_type:
        return Bound(value, f"sequence {name} (bigint)")
    return Bound(
        value,
        f"sequence {name} ({keyword} {value:,})",
        f"raise the {keyword} of sequence {name} in production (ALTER SEQUENCE ... {keyword} ...)"
        if state.sign > 0
        else f"lower the {keyword} of sequence {name} in production (ALTER SEQUENCE ... {keyword} ...)",
    )


def _bounds(
    dotted: str, column: Column, sign: int, fixed: int, *, references: str | None = None
) -> Iterator[Bound]:
    """The bound a column's type sets on the values of a sequence that feeds it (or that feeds the column
    its foreign key `references`); `fixed`: the characters the feeding DEFAULT adds to the digits."""
    integer = column_bound(dotted, column, sign=sign, references=references)
    if integer is not None:
        yield integer
        return
    note = f", references {references}" if references else ""
    decimal = _DECIMAL.fullmatch(column.data_type.strip())
    if decimal is not None:
        digits = int(decimal[1]) - int(decimal[2] or 0)
        top = 10**digits - 1 if digits > 0 else 0
        bottom = 0 if decimal[3].strip() else -top
        yield Bound(
            top if sign > 0 else bottom,
            f"{dotted} ({column.data_type}{note})",
            f"raise the precision of {dotted} in production",
        )
        return
    length = character_length(column.data_type.strip().lower())
    if length is not None:
        low, high = digits_range(length - fixed)
        added = f"; its DEFAULT adds {fixed} characters" if fixed else ""
        yield Bound(
            high if sign > 0 else low,
            f"{dotted} ({column.data_type}{added}{note})",
            f"lengthen {dotted} in production (ALTER TABLE ... MODIFY ...)",
        )


def fixed_characters(default: str | None) -> int:
    """Characters a DEFAULT adds to the sequence's digits: the text of its string literals.
    `concat('INV-',nextval(`invoice_seq`))` adds 4."""
    if not default:
        return 0
    expression = _BACKQUOTED.sub("``", default)  # a quote inside a backquoted name opens no literal
    return sum(len(_ESCAPE.sub("x", m[1])) for m in _LITERAL.finditer(expression))
