"""The kept columns that can hold free text: what the PII scan and the free-text check read.

Every kept column whose values have a text form that can carry an identifier: text of any kind (varchar,
citext, domains over them), json, and every type deid has no finer kind for (xml, tsvector, composite and
range types, hstore, ...), whose text form is what a staging user would read; and arrays of these. Numbers,
dates, booleans, UUIDs, network addresses, enums (labels come from the schema, not from rows) and binary
strings are not text. A column the migrations added is kept by definition (deid.expect.scope).
"""

from __future__ import annotations

from collections.abc import Iterator

from deid.backends.base import ValidationDialect
from deid.plan import TablePlan
from deid.schema import Kind, Table

TEXT_KINDS = (Kind.TEXT, Kind.JSON, Kind.OTHER)


def kept_text(table: Table, table_plan: TablePlan, dialect: ValidationDialect) -> Iterator[tuple[str, str]]:
    """(column, SQL giving its content as text) for each kept column that can hold text.

    Generated columns are left out: they are recomputed from other columns, which are checked themselves.
    """
    if table_plan.copy != "full":
        return
    for action in table_plan.actions:
        column = table.column(action.column)
        if action.rewrites or column is None or column.generated:
            continue
        if column.kind in TEXT_KINDS:
            yield column.name, dialect.kept_text(column.name, array=False)
        elif column.kind is Kind.ARRAY and column.element_kind in TEXT_KINDS:
            yield column.name, dialect.kept_text(column.name, array=True)
