"""Statements deid writes itself (quoted names, no parameters), run as they are.

`exec_driver_sql` hands the driver a parameter list even when there is none, and a driver with the
`format` paramstyle then reads every `%` as a placeholder: a table or column named `discount%` would break
the statement, or worse, change it.
With `no_parameters` the statement goes to the server untouched. Values never go this way: they are bound.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

_RAW = {"no_parameters": True}


def execute(connection: sa.Connection, statement: str) -> Any:
    """Run one statement without parameters; returns its CursorResult."""
    return connection.exec_driver_sql(statement, execution_options=_RAW)
