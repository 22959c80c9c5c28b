"""Database errors retold without values.

A server's messages may quote row data: a constraint violation's detail prints the failing row, an invalid
cast prints the value. Errors raised while the working copy holds production data are retold from what the
engine's backend reads out of the driver's structured fields only (code, constraint, table, column), plus the
server's message where the engine says it names objects, never values (Backend.diagnose).
"""

from __future__ import annotations

from deid.backends import diagnose
from deid.errors import TerminalError, TransientError


def retell(exc: BaseException, doing: str) -> Exception:
    """A TerminalError or TransientError describing `exc` without any value from the data."""
    told = diagnose(exc)
    parts = [f"{doing} failed"]
    if told.code:
        parts.append(told.code)
    for label, value in (("table", told.table), ("column", told.column), ("constraint", told.constraint)):
        if value:
            parts.append(f"{label} {value}")
    if told.value_free and told.message:
        parts.append(told.message)
    if not told.code:
        parts.append(type(getattr(exc, "orig", None) or exc).__name__)
    kind = TransientError if told.transient else TerminalError
    return kind(": ".join(parts[:1]) + " (" + "; ".join(parts[1:]) + ")")
