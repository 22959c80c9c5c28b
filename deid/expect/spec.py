"""An expectation as deid builds it: a query on the working copy that returns rows only where it fails.

Every query returns rows of counts and names only: `column_name` (NULL for table-level expectations),
`unexpected` (how many broke it), `checked` (how many were looked at), and optionally `pattern`. A passing
expectation returns no row. The queries never select a row value, so neither GX's results nor deid's report
can carry one.

Where Great Expectations has a built-in for the check (deid.expect.gx_expectations.BUILT_IN), the spec
names it: `gx`, the class, and `gx_kwargs`, its arguments. It runs on a table asset of its table, and its
result format leaves values out. A built-in that checks a column also carries deid's own `query` for the
same check, run instead, as a custom expectation, on a table GX cannot read: one with a column of a type
SQLAlchemy does not reflect (xml, point), whose columns GX fails to compile before any check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Spec:
    expectation: str
    table: str
    columns: tuple[str | None, ...]  # one outcome per entry; (None,) for a table-level expectation
    query: str
    detail: str = ""  # what was compared, counts and names only (e.g. "production has 200 rows")
    gx: str = ""  # a GX built-in expectation's class, run on `table` (query: deid's own, or "")
    gx_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
