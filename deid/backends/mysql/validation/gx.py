"""How Great Expectations names a table of the working copy (deid.expect.gx_runner's table assets), and
where its regex built-in reads a column as deid's shapes do (nowhere)."""

from __future__ import annotations

from deid.names import table_names
from deid.schema import Column


def gx_table(table: str) -> tuple[str | None, str]:
    """(None, table) of `public.table`: deid's one namespace is the connection's database (names.py), which
    GX reads without a schema."""
    return None, table_names(table)[1]


def gx_regex_as_deid(column: Column) -> bool:
    """Never: GX matches a column under the column's own collation (`column REGEXP regex`), and the usual
    ones ignore case, where deid's shape reads the text under the binary collation: `[a-z]` would pass
    upper case. deid's shape scan checks these columns."""
    return False
