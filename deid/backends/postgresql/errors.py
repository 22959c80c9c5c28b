"""psycopg's errors read into a Diagnosis: PostgreSQL gives an SQLSTATE and structured fields (table, column,
constraint), so nothing is parsed from message text, which may quote row data (a violated key's DETAIL
prints the row, an invalid cast prints the value)."""

from __future__ import annotations

import re

from deid.backends.diagnosis import Diagnosis

_VALUE_FREE_CLASSES = ("23",)  # integrity violations: "duplicate key value violates unique constraint "x""
_TRANSIENT_CLASSES = ("08", "53", "57", "58", "40")  # connection, resources, operator intervention, rollback
# Classes that describe the statement itself (its syntax, the objects it names, its state), never a row:
# feature not supported, transaction state, dependent objects, invalid schema, syntax error or access rule
# violation, object not in prerequisite state.
_STATEMENT_CLASSES = ("0A", "25", "2B", "3F", "42", "55")
_IN_TRANSACTION_BLOCK = "25001"  # active_sql_transaction: "... cannot run inside a transaction block"

# Refusals by a server that answered: a wrong password, an unknown role or database, no pg_hba entry. libpq
# reports them at connect time as text only (no SQLSTATE), so they are recognised by their standard wording.
_REFUSED = re.compile(
    r"FATAL:.*(password authentication failed|does not exist|no pg_hba\.conf entry|not permitted to log in)"
)

# libpq's check of an option's value, made before it dials: 'invalid sslmode value: "bogus"'. Its message
# quotes the option's value from the connection string, which is a setting, never row data.
_BAD_OPTION = re.compile(r"\binvalid [a-z_]+ value: ")


def diagnose(original: BaseException) -> Diagnosis:
    diag = getattr(original, "diag", None)
    sqlstate = getattr(original, "sqlstate", None) or (diag.sqlstate if diag else None) or ""
    if not sqlstate:
        return Diagnosis()
    primary = getattr(diag, "message_primary", None)
    value_free = sqlstate.startswith(_VALUE_FREE_CLASSES)
    about_statement = sqlstate.startswith(_STATEMENT_CLASSES)
    position = getattr(diag, "statement_position", None)
    return Diagnosis(
        code=f"SQLSTATE {sqlstate}",
        table=getattr(diag, "table_name", None),
        column=getattr(diag, "column_name", None),
        constraint=getattr(diag, "constraint_name", None),
        message=primary if value_free or about_statement else None,
        value_free=value_free,
        about_statement=about_statement,
        position=int(position) if position else None,
        transient=sqlstate.startswith(_TRANSIENT_CLASSES),
        needs_no_transaction=sqlstate == _IN_TRANSACTION_BLOCK,
    )


def refused(reason: str) -> bool:
    return bool(_REFUSED.search(reason))


def bad_option(reason: str) -> bool:
    return bool(_BAD_OPTION.search(reason))
