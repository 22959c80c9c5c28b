"""A table's rewritten columns, applied to one batch of its rows: engine-neutral.

An engine streams the rows out as text (one Arrow string column per column it reads), this module runs each
column's vector form over the batch, and the engine streams the outputs back. Which columns a table streams
is decided here too (`streamable`), from the transformers alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from deid.schema import Kind, Table
from deid.transformers import get
from deid.transformers.base import Batch, Target, Transformer
from deid.vector.prf import Key
from deid.vector.tally import Tally


@dataclass(frozen=True)
class StreamedColumn:
    """One rewritten column: its transformer's vector form, where it applies and with which parameters."""

    name: str
    transformer: Transformer = field(repr=False)
    target: Target = field(repr=False)
    params: Mapping[str, Any] = field(repr=False)

    @property
    def searched(self) -> bool:
        """Whether validation looks its outputs up among production's values (expect.leaks.allowance):
        outputs built unlike any real value."""
        from deid.expect.leaks import allowance

        action = _Action(self.transformer.name, self.params)
        return allowance(action, sampled=1, production_rows=1) is not None

    @property
    def reads(self) -> tuple[str, ...]:
        """The other columns of the row its vector form reads (`by:`)."""
        by = self.params.get("by") or ""
        return (by,) if by else ()


@dataclass(frozen=True)
class _Action:
    """What expect.leaks.allowance reads of a column's action."""

    transformer: str
    params: Mapping[str, Any]


def streamed_columns(table: Table, actions) -> list[StreamedColumn]:
    """The table's rewritten columns that deid's process transforms: those with a vector form for their
    column (not arrays). The others are computed by their SQL forms as the rows stream (engine_side)."""
    from deid.rules.targets import target_for

    out = []
    for action in actions:
        column = table.column(action.column)
        if not action.rewrites or column is None or not _vectorized(action.transformer, column):
            continue
        target = target_for(table, column, element_wise=False)
        out.append(StreamedColumn(action.column, get(action.transformer), target, dict(action.params)))
    return out


def unvectorized(table: Table, actions) -> list[str]:
    """The rewritten columns without a vector form for their column (json, arrays): an engine that streams
    must compute them some other way (its SQL forms), or refuse the table."""
    return [
        a.column
        for a in actions
        if a.rewrites
        and (column := table.column(a.column)) is not None
        and not _vectorized(a.transformer, column)
    ]


def engine_side(table: Table, actions) -> dict[str, str | None]:
    """The rewritten columns without a vector form: column -> its SQL form (None where the plan holds none),
    which the engine computes in the query that streams the rows out."""
    held = set(unvectorized(table, actions))
    return {a.column: a.sql for a in actions if a.column in held}


def _vectorized(transformer: str, column) -> bool:
    return get(transformer).vector is not None and column.kind is not Kind.ARRAY


def read_columns(columns: list[StreamedColumn]) -> list[str]:
    """Every column the batches must carry: the rewritten ones, then those read by `by:`, each once."""
    names = [c.name for c in columns]
    for c in columns:
        names.extend(n for n in c.reads if n not in names)
    return names


def transform(batch: pa.RecordBatch, columns: list[StreamedColumn], key: Key) -> list[pa.Array]:
    """The new values of each streamed column for the batch's rows, in `columns` order (text arrays)."""

    def row(name: str) -> pa.Array:
        return batch.column(name)

    out = []
    for c in columns:
        given = Batch(values=batch.column(c.name), key=key, row=row)
        values = c.transformer.vector(given, c.target, c.params)
        if len(values) != batch.num_rows:  # a vector form's bug must not shift values onto other rows
            raise AssertionError(f"{c.transformer.name} gave {len(values)} values for {batch.num_rows} rows")
        out.append(values)
    return out


def new_tally(columns: list[StreamedColumn], seed: int | None = None) -> Tally:
    """The tally of a stream of `columns` (what validation counts as the rows stream past): its own random
    seed, or the one the parts of a table share."""
    from deid.vector.shapes import vector_predicate

    names = tuple(c.name for c in columns)
    searched = frozenset(c.name for c in columns if c.searched)
    shapes = {
        c.name: predicate
        for c in columns
        if (predicate := vector_predicate(c.transformer.name, c.params, c.target.column)) is not None
    }
    return Tally(names, searched, shapes=shapes, **({} if seed is None else {"seed": seed}))
