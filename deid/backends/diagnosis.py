"""What a database error says, in words every engine's errors can be put in (Backend.diagnose).

Drivers report errors their own way (an SQLSTATE and structured fields, or a number and a text); deid retells
them without values (deid.dberrors) and decides from them whether a retry may help, so each backend reads its
driver's errors into this one shape.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnosis:
    code: str = ""  # the engine's error code as people look it up: "SQLSTATE 23505", "error 1062"
    table: str | None = None
    column: str | None = None
    constraint: str | None = None
    # the server's primary message, only where the engine's rules say it cannot hold a value from a row:
    # `value_free` messages name objects only (a violated key's name); `about_statement` messages describe
    # the statement itself (its syntax, the objects it names) and may quote it, so they are shown for deid's
    # own and the migrations' statements, never for an error about data
    message: str | None = None
    value_free: bool = False
    about_statement: bool = False
    position: int | None = None  # 1-based character of the statement where the server found the error
    transient: bool = False  # a retry may succeed: connection lost, resources short, deadlock, timeout
    needs_no_transaction: bool = False  # the statement cannot run inside a transaction
