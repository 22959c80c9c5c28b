"""How Great Expectations names a table of the working copy (deid.expect.gx_runner's table assets)."""

from __future__ import annotations

from deid.names import table_names


def gx_table(table: str) -> tuple[str | None, str]:
    """(None, table) of `public.table`: deid's one namespace is the connection's database (names.py), which
    GX reads without a schema."""
    return None, table_names(table)[1]
