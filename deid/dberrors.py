"""Database errors retold without values.

PostgreSQL's messages may quote row data: a constraint violation's DETAIL prints the failing row, an invalid
cast prints the value. Errors raised while the working copy holds production data are retold from the
structured fields only (SQLSTATE, constraint, table, column), plus the primary message for the integrity
class, whose primary text names objects but never values.
"""

from __future__ import annotations

from deid.errors import TerminalError, TransientError

_VALUE_FREE_CLASSES = ("23",)  # integrity violations: "duplicate key value violates unique constraint "x""
_TRANSIENT_CLASSES = ("08", "53", "57", "58", "40")  # connection, resources, operator intervention, rollback


def retell(exc: BaseException, doing: str) -> Exception:
    """A TerminalError or TransientError describing `exc` without any value from the data."""
    original = getattr(exc, "orig", exc)
    diag = getattr(original, "diag", None)
    sqlstate = getattr(original, "sqlstate", None) or (diag.sqlstate if diag else None) or ""
    parts = [f"{doing} failed"]
    if sqlstate:
        parts.append(f"SQLSTATE {sqlstate}")
    if diag is not None:
        for label, value in (
            ("table", diag.table_name),
            ("column", diag.column_name),
            ("constraint", diag.constraint_name),
        ):
            if value:
                parts.append(f"{label} {value}")
        if sqlstate.startswith(_VALUE_FREE_CLASSES) and diag.message_primary:
            parts.append(diag.message_primary)
    if not sqlstate:
        parts.append(type(original).__name__)
    kind = TransientError if sqlstate.startswith(_TRANSIENT_CLASSES) else TerminalError
    return kind(": ".join(parts[:1]) + " (" + "; ".join(parts[1:]) + ")")
