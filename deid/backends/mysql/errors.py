"""PyMySQL's errors read into a Diagnosis. MySQL and MariaDB give an error number and a text, and no
structured fields, so table and constraint are not read out of the text, and a text is kept only for the
numbers whose text never holds a row's value (a duplicate key's text quotes the value: it is not kept)."""

from __future__ import annotations

from deid.backends.diagnosis import Diagnosis

# lost or refused connection, too many connections, lock wait timeout, deadlock, query interrupted
_TRANSIENT = frozenset({1040, 1053, 1205, 1213, 1317, 2003, 2006, 2013, 2055})
# texts that name objects only: a foreign key's constraint ("Cannot add or update a child row: a foreign key
# constraint fails (`db`.`t`, CONSTRAINT `fk` ...)"), a CHECK's ("CONSTRAINT `c` failed for `db`.`t`")
_VALUE_FREE = frozenset({1451, 1452, 3819, 4025})
# texts about the statement: syntax, unknown table, column, database or data type, wrong usage
_STATEMENT = frozenset({1049, 1054, 1064, 1091, 1146, 1221, 1235, 4161})
_REFUSED = frozenset({1044, 1045, 1049})  # access denied to database, access denied, unknown database
ER_DUP_ENTRY = 1062  # a duplicate key (its text quotes the value)


def _number_and_text(original: BaseException) -> tuple[int | None, str]:
    args = getattr(original, "args", ())
    number = args[0] if args and isinstance(args[0], int) else None
    text = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
    return number, text


def errno_of(exc: BaseException) -> int | None:
    """The server's error number of a PyMySQL error (wrapped by SQLAlchemy or not), or None."""
    number, _ = _number_and_text(getattr(exc, "orig", None) or exc)
    return number


def diagnose(original: BaseException) -> Diagnosis:
    number, text = _number_and_text(original)
    if number is None:
        return Diagnosis()
    value_free, about_statement = number in _VALUE_FREE, number in _STATEMENT
    return Diagnosis(
        code=f"error {number}",
        message=text if (value_free or about_statement) and text else None,
        value_free=value_free,
        about_statement=about_statement,
        transient=number in _TRANSIENT,
    )


def refused(original: BaseException | None) -> bool:
    number, _ = _number_and_text(original) if original is not None else (None, "")
    return number in _REFUSED
