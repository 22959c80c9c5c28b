"""The bridge between a schema column and a transformer: what the SQL form will transform, and how.

Arrays are handled here once for every transformer: the transformer sees one element (its kind and type) and
the planner maps it over the array, so no transformer has to know about arrays.
"""

from __future__ import annotations

from deid.names import quote_ident, quote_table  # noqa: F401  (re-exported: callers import them from here)
from deid.schema import Column, Kind, Table
from deid.transformers.base import Target

ELEMENT = "_deid_elem"  # the alias of one array element inside the mapped expression


def target_for(table: Table, column: Column, *, element_wise: bool) -> Target:
    """The Target of a column; with element_wise, of one element of an array column."""
    if element_wise and column.kind is Kind.ARRAY:
        return Target(
            column=column,
            value=ELEMENT,
            kind=column.element_kind or Kind.OTHER,
            sql_type=column.element_type or "text",
            unique=False,
            row=quote_ident,
            columns=tuple(c.name for c in table.columns),
        )
    return Target(
        column=column,
        value=quote_ident(column.name),
        kind=column.kind,
        sql_type=column.data_type,
        unique=table.is_unique(column.name),
        row=quote_ident,
        columns=tuple(c.name for c in table.columns),
        rows=table.row_estimate,
    )


def over_array(element_sql: str, column: Column) -> str:
    """Map an element expression over an array column, keeping order and NULL arrays."""
    return (
        f"CASE WHEN {quote_ident(column.name)} IS NULL THEN NULL ELSE ARRAY("
        f"SELECT {element_sql} FROM unnest({quote_ident(column.name)}) "
        f"WITH ORDINALITY AS _deid_u({ELEMENT}, _deid_n) "
        f"ORDER BY _deid_n)::{column.data_type} END"
    )
