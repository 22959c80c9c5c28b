"""An expectation as deid builds it: a query on the working copy that returns rows only where it fails.

Every query returns rows of counts and names only: `column_name` (NULL for table-level expectations),
`unexpected` (how many broke it), `checked` (how many were looked at), and optionally `pattern`. A passing
expectation returns no row. The queries never select a row value, so neither GX's results nor deid's report
can carry one.

Where Great Expectations has a built-in for the check (deid.expect.gx_expectations.BUILT_IN), the spec
names it instead of a query: `gx`, the class, and `gx_kwargs`, its arguments; its result format leaves values
out. It runs on the table itself (a table asset), or, when it checks a column, on `view`: a query asset of
the table's columns as deid reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class View:
    """A query asset of one table's checked columns: `label` names it ("<table> (<label>)"), `column` is
    the column as it selects it (SQL, e.g. its text), `where` the rows it reads ("" for all). On a table
    asset GX would first compile every column's type, and fail on one SQLAlchemy does not know (xml, a
    custom type) even when the check never reads it."""

    label: str
    column: str
    where: str = ""


@dataclass(frozen=True)
class Spec:
    expectation: str
    table: str
    columns: tuple[str | None, ...]  # one outcome per entry; (None,) for a table-level expectation
    query: str
    detail: str = ""  # what was compared, counts and names only (e.g. "production has 200 rows")
    gx: str = ""  # a GX built-in expectation's class, run on `table` (query is then "")
    gx_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    view: View | None = None  # where a built-in on a column runs (None: on the table asset)


def fits_a_view(*names: str) -> bool:
    """Whether GX can select these names in a query asset. Its query text cannot carry a '%' (the driver
    reads it as a parameter, escaped or not), nor a ':' (GX compiles the asset's query and reads the result
    as text() again, so an escaped ":x" turns into a bind parameter)."""
    return not any("%" in name or ":" in name for name in names)
