"""An expectation as deid builds it: a query on the working copy that returns rows only where it fails.

Every query returns rows of counts and names only: `column_name` (NULL for table-level expectations),
`unexpected` (how many broke it), `checked` (how many were looked at), and optionally `pattern`. A passing
expectation returns no row. The queries never select a row value, so neither GX's results nor deid's report
can carry one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    expectation: str
    table: str
    columns: tuple[str | None, ...]  # one outcome per entry; (None,) for a table-level expectation
    query: str
    detail: str = ""  # what was compared, counts and names only (e.g. "production has 200 rows")
