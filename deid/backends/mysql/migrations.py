"""MySQL's and MariaDB's part of SQL-folder migrations (a deid.backends.base.MigrationDialect; the module is
one).

DDL commits the transaction around it, before and after itself, so a file cannot be one transaction:
deid.migrations.sqlfiles runs it statement by statement and records after each statement how far the file
got (`statements_done`, and `done_checksum` of those statements), in the statement's own transaction when it
is not DDL (an INSERT and its progress commit together) and right after it when it is. A retried step
resumes a file at the statement that failed; a file whose applied statements changed is refused.

Files are split as the mysql client splits them: `;` (or the delimiter a `DELIMITER` line sets, for trigger
and routine bodies holding `;`) outside '...' and "..." strings (backslash escapes), `backtick` names, `#`,
`-- ` and /* */ comments. An executable comment (/*! ... */, /*!50003 ... */, MariaDB's /*M! ... */) is SQL
the server runs: its words count, and it is kept whole. A DELIMITER line counts where a statement may begin
(as in the client: after a delimiter, not inside a statement). Strings are read with backslash escapes, as
under the default sql_mode (not under NO_BACKSLASH_ESCAPES).

The version table is `_deid_migrations_applied`, a table of the copy itself (a MySQL database has no schema
inside it); introspection lists it under deid's default namespace, like every table.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from deid import names
from deid.backends.base import AppliedMigration, MigrationStatement
from deid.backends.diagnosis import Diagnosis

TABLE = "_deid_migrations_applied"
version_table = f"{names.DEFAULT_SCHEMA}.{TABLE}"
one_transaction = False

# InnoDB, so that a statement that is not DDL commits together with its progress row
_CREATE_VERSION_TABLE = f"""CREATE TABLE IF NOT EXISTS `{TABLE}` (
    version         BIGINT       NOT NULL PRIMARY KEY,
    name            VARCHAR(255) NOT NULL,
    checksum        CHAR(64)     NOT NULL COMMENT 'sha256 of the file',
    statements_done INT          NULL COMMENT 'NULL: the whole file; n: its first n statements so far',
    done_checksum   CHAR(64)     NULL COMMENT 'sha256 of those n statements as they ran',
    applied_at      DATETIME(6)  NOT NULL COMMENT 'UTC'
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
  COMMENT='Staging-only schema migrations that deid applied to this copy'"""
_EXISTS = sa.text(
    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
)
_READ = sa.text(f"SELECT version, name, checksum, statements_done, done_checksum FROM `{TABLE}`")
# a file's row is written after each of its statements: the last write says how far it got
_RECORD = sa.text(
    f"REPLACE INTO `{TABLE}` (version, name, checksum, statements_done, done_checksum, applied_at) "
    "VALUES (:version, :name, :checksum, :statements_done, :done_checksum, UTC_TIMESTAMP(6))"
)


def applied(connection: sa.Connection) -> dict[int, AppliedMigration]:
    if not connection.execute(_EXISTS, {"t": TABLE}).scalar():
        return {}
    return {
        row.version: AppliedMigration(
            row.version, row.name, row.checksum, row.statements_done, row.done_checksum or ""
        )
        for row in connection.execute(_READ)
    }


def create_version_table(connection: sa.Connection) -> None:
    connection.exec_driver_sql(_CREATE_VERSION_TABLE)


def record(connection: sa.Connection, row: AppliedMigration) -> None:
    connection.execute(
        _RECORD,
        {
            "version": row.version,
            "name": row.name,
            "checksum": row.checksum,
            "statements_done": row.statements_done,
            "done_checksum": row.done_checksum or None,
        },
    )


# --- what the engine treats apart --------------------------------------------------------------------------


def needs_no_transaction(words: tuple[str, ...]) -> str | None:
    return None  # no statement is refused inside a transaction: DDL ends the transaction instead


def is_transaction_control(words: tuple[str, ...]) -> bool:
    if not words:
        return False
    if words[0] == "begin":
        return words[1:3] != ("not", "atomic")  # MariaDB's anonymous block, BEGIN NOT ATOMIC ... END
    if words[0] in ("commit", "xa") or words[:2] in (("start", "transaction"), ("set", "autocommit")):
        return True
    return words[0] == "rollback" and "to" not in words[1:3]


_ROUTINES = frozenset({"trigger", "procedure", "function", "event"})
_BEFORE_ROUTINE = frozenset({"or", "replace", "definer", "current_user", "aggregate"})


def problem(statement: MigrationStatement) -> tuple[str, str] | None:
    words = statement.words
    if words[:1] == ("lock",) or words[:2] == ("unlock", "tables"):
        return (
            f"{words[0].upper()} TABLES: deid records each statement in its version table, which a session "
            "holding LOCK TABLES cannot write",
            "delete the LOCK TABLES and UNLOCK TABLES statements from the file",
        )
    compound = words[:3] == ("begin", "not", "atomic")
    if not (compound or _routine(words)):
        return None
    every = _words(statement.sql)
    if every.count("begin") <= every.count("end"):
        return None
    what = "a block" if compound else f"a {next(w for w in words if w in _ROUTINES)} body"
    return (
        f"{what} with BEGIN ... END holds ';', which ends the statement here",
        "put the statement between a line 'DELIMITER $$' and a line 'DELIMITER ;', and end it with $$ "
        "(as the mysql client reads it)",
    )


def _routine(words: tuple[str, ...]) -> bool:
    """CREATE [OR REPLACE] [DEFINER = ...] TRIGGER|PROCEDURE|FUNCTION|EVENT: bodies may be BEGIN ... END."""
    if words[:1] != ("create",):
        return False
    for word in words[1:]:
        if word in _ROUTINES:
            return True
        if word not in _BEFORE_ROUTINE:
            return False
    return False


_GLOBAL = re.compile(
    r"@@global\.|@@persist|\b(global|persist|persist_only|password|role|transaction)\b", re.I
)


def session_setting(statement: MigrationStatement) -> bool:
    """SET of a session variable or a user variable (SET foreign_key_checks = 0, SET NAMES, SET @x = ...):
    run again before a file resumes, on the retry's new session. Not SET GLOBAL, PASSWORD, ROLE."""
    return statement.words[:1] == ("set",) and not _GLOBAL.search(statement.sql)


_AT_LINE = re.compile(r"at line (\d+)\s*$")


def error_position(statement: MigrationStatement, diagnosis: Diagnosis) -> int | None:
    """Where a syntax error is: its text ends "... near '...' at line N", N counted within the statement."""
    found = _AT_LINE.search(diagnosis.message or "")
    if not found:
        return None
    line = int(found.group(1))
    position = 0
    for _ in range(line - 1):
        newline = statement.sql.find("\n", position)
        if newline < 0:
            return None
        position = newline + 1
    return position + 1


# --- splitting a file into statements ---------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_$\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_DELIMITER = re.compile(r"delimiter[ \t]+(\S+)[^\n]*(?:\n|$)", re.IGNORECASE)
_EXECUTABLE = re.compile(r"/\*M?![0-9]*")  # /*! ... */, /*!50003 ... */, MariaDB's /*M!100100 ... */
_WORDS_KEPT = 16


def split(text: str) -> list[MigrationStatement]:
    """The statements of a SQL script, split as the mysql client splits them (see the module's text). Text
    after the last delimiter is a statement too. Comments before a statement are not part of it."""
    statements: list[MigrationStatement] = []
    for start, end, words in _scan(text):
        line = text.count("\n", 0, start) + 1
        statements.append(MigrationStatement(text[start:end].rstrip(), line, tuple(words[:_WORDS_KEPT])))
    return statements


def _words(sql: str) -> list[str]:
    """Every unquoted word of one statement, lower case."""
    return [word for _, _, words in _scan(sql, delimiter="\0") for word in words]


def _scan(text: str, delimiter: str = ";"):
    """(start, end, words) of each statement of `text`."""
    i, n = 0, len(text)
    start: int | None = None
    words: list[str] = []
    executable = False  # inside /*! ... */: SQL the server runs
    while i < n:
        c = text[i]
        if start is None and c in "dD" and _at_line_start(text, i) and (command := _DELIMITER.match(text, i)):
            delimiter, i = command.group(1), command.end()  # a client command, as mysql reads it
        elif not executable and text.startswith(delimiter, i):
            if start is not None:
                yield start, i, words
            start, words = None, []
            i += len(delimiter)
        elif c.isspace():
            i += 1
        elif c == "#" or (text.startswith("--", i) and (i + 2 == n or text[i + 2] <= " ")):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        elif executable and text.startswith("*/", i):
            executable, i = False, i + 2
        elif (opener := _EXECUTABLE.match(text, i)) and not executable:
            if start is None:
                start = i
            executable, i = True, opener.end()
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            i = n if close < 0 else close + 2
        else:
            if start is None:
                start = i
            if c in "'\"":
                i = _after_quoted(text, i, c, backslashes=True)
            elif c == "`":
                i = _after_quoted(text, i, c, backslashes=False)
            elif word := _WORD.match(text, i):
                # a delimiter ends a word that could go on (`END$$`: `$` may be part of a name)
                end = text.find(delimiter, i, word.end())
                end = word.end() if end < 0 else end
                words.append(text[i:end].lower())
                i = end
            else:
                i += 1
    if start is not None:
        yield start, n, words


def _at_line_start(text: str, i: int) -> bool:
    """Only blanks between the line's start and `i` (where a DELIMITER command may begin)."""
    return not text[text.rfind("\n", 0, i) + 1 : i].strip()


def _after_quoted(text: str, i: int, quote: str, *, backslashes: bool) -> int:
    """The index after the literal that starts at text[i] (a doubled quote stays inside)."""
    i += 1
    n = len(text)
    while i < n:
        c = text[i]
        if backslashes and c == "\\":
            i += 2
        elif c == quote:
            if text.startswith(quote, i + 1):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n
