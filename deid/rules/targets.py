"""The bridge between a schema column and a transformer: what a transformer will transform.

Arrays are handled here once for every transformer: the transformer sees one element (its kind and type) and
the engine maps it over the array, so no transformer has to know about arrays.
"""

from __future__ import annotations

from deid.schema import Column, Kind, Table
from deid.transformers.base import Target


def target_for(table: Table, column: Column, *, element_wise: bool) -> Target:
    """The Target of a column; with element_wise, of one element of an array column."""
    columns = tuple(c.name for c in table.columns)
    if element_wise and column.kind is Kind.ARRAY:
        return Target(
            column=column,
            kind=column.element_kind or Kind.OTHER,
            sql_type=column.element_type or "text",
            unique=False,
            columns=columns,
        )
    return Target(
        column=column,
        kind=column.kind,
        sql_type=column.data_type,
        unique=table.is_unique(column.name),
        columns=columns,
        rows=table.row_estimate,
    )
