"""How Great Expectations names a table of the working copy (deid.expect.gx_runner's table assets), and
where its regex built-in reads a column as deid's shapes do."""

from __future__ import annotations

import re

from deid.names import table_names
from deid.schema import Column, Kind

# the text types whose `~` reads the value as deid's shapes do (its text, case for case): not citext, whose
# `~` ignores case, nor char(n), whose padding the shapes' ::text strips, nor a domain (its base unknown here)
_PLAIN_TEXT = re.compile(r"(text|character varying|varchar)(\(\d+\))?")


def gx_table(table: str) -> tuple[str | None, str]:
    """(schema, table) of the table `schema.table`, as written: the runner has SQLAlchemy quote both."""
    schema, name = table_names(table)
    return schema, name


def gx_regex_as_deid(column: Column) -> bool:
    """Whether GX's regex built-in, matching the column as it is (`column ~ regex`), reads what deid's shape
    reads: a plain text column."""
    return column.kind is Kind.TEXT and bool(_PLAIN_TEXT.fullmatch(column.data_type.strip().lower()))
