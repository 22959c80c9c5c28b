"""The kept columns that can hold free text: what the PII scan and the free-text check read."""

from __future__ import annotations

from collections.abc import Iterator

from deid.expect.sql import quote_ident
from deid.plan import TablePlan
from deid.schema import Kind, Table


def kept_text(table: Table, table_plan: TablePlan) -> Iterator[tuple[str, str]]:
    """(column, SQL giving its content as text) for each kept text, json or text-array column.

    Generated columns are left out: they are recomputed from other columns, which are checked themselves.
    """
    if table_plan.copy != "full":
        return
    for action in table_plan.actions:
        column = table.column(action.column)
        if action.sql is not None or column is None or column.generated:
            continue
        name = quote_ident(column.name)
        if column.kind in (Kind.TEXT, Kind.JSON):
            yield column.name, f"({name})::text"
        elif column.kind is Kind.ARRAY and column.element_kind in (Kind.TEXT, Kind.JSON):
            yield column.name, f"array_to_string({name}, ' ')"
