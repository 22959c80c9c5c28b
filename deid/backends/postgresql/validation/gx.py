"""How Great Expectations names a table of the working copy (deid.expect.gx_runner's table assets)."""

from __future__ import annotations

from deid.names import table_names


def gx_table(table: str) -> tuple[str | None, str]:
    """(schema, table) of the table `schema.table`, as written: the runner has SQLAlchemy quote both."""
    schema, name = table_names(table)
    return schema, name
