"""PostgreSQL's part of SQL-folder migrations (a deid.backends.base.MigrationDialect; the module is one).

PostgreSQL's DDL is transactional, so a file runs in one transaction together with its row in the version
table: a failed file leaves nothing of itself behind. A few statements refuse a transaction block (VACUUM,
CREATE INDEX CONCURRENTLY, ...): deid.migrations.sqlfiles asks for them to be in a file marked
`-- deid: no-transaction`, whose statements run one by one.

Files are split into statements as psql splits them: quotes, dollar quotes, comments, parentheses and
`BEGIN ATOMIC ... END` bodies respected, so that a failure names the file and the line.

The version table is `_deid_migrations.applied`: a schema of its own, not `_deid` (which the scrub drops with
the key), so the record stays in the published copy and staging users can see which staging-only
migrations their copy carries.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from deid.backends.base import AppliedMigration, MigrationStatement
from deid.backends.diagnosis import Diagnosis

VERSION_SCHEMA = "_deid_migrations"
version_table = VERSION_TABLE = f"{VERSION_SCHEMA}.applied"
one_transaction = True

_CREATE_VERSION_TABLE = (
    f"CREATE SCHEMA IF NOT EXISTS {VERSION_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version    bigint PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)""",
    f"COMMENT ON TABLE {VERSION_TABLE} IS 'Staging-only schema migrations that deid applied to this copy'",
)
_RECORD = sa.text(
    f"INSERT INTO {VERSION_TABLE} (version, name, checksum) VALUES (:version, :name, :checksum)"
)


def applied(connection: sa.Connection) -> dict[int, AppliedMigration]:
    exists = connection.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": VERSION_TABLE}).scalar()
    if not exists:
        return {}
    rows = connection.execute(sa.text(f"SELECT version, name, checksum FROM {VERSION_TABLE}"))
    return {row.version: AppliedMigration(row.version, row.name, row.checksum) for row in rows}


def create_version_table(connection: sa.Connection) -> None:
    for statement in _CREATE_VERSION_TABLE:
        connection.exec_driver_sql(statement)


def record(connection: sa.Connection, row: AppliedMigration) -> None:
    # a file is recorded once, whole (in its own transaction, or after its last no-transaction statement)
    connection.execute(_RECORD, {"version": row.version, "name": row.name, "checksum": row.checksum})


def problem(statement: MigrationStatement) -> tuple[str, str] | None:
    return None  # psql's splitting leaves nothing PostgreSQL cannot run as split


def session_setting(statement: MigrationStatement) -> bool:
    return False  # a file is never resumed part-way here (one transaction, or rerunnable statements)


def error_position(statement: MigrationStatement, diagnosis: Diagnosis) -> int | None:
    return diagnosis.position  # the server's cursor (diag.statement_position)


# --- which statements refuse a transaction -------------------------------------------------------------


def needs_no_transaction(words: tuple[str, ...]) -> str | None:
    """The statement's name if PostgreSQL refuses to run it inside a transaction block."""

    def starts(*seq: str) -> bool:
        return words[: len(seq)] == seq

    for seq in (
        ("vacuum",),
        ("create", "database"),
        ("drop", "database"),
        ("create", "tablespace"),
        ("drop", "tablespace"),
        ("alter", "system"),
        ("create", "index", "concurrently"),
        ("create", "unique", "index", "concurrently"),
        ("drop", "index", "concurrently"),
    ):
        if starts(*seq):
            return " ".join(seq).upper()
    if starts("reindex") and ("concurrently" in words or {"schema", "database", "system"} & set(words[1:4])):
        return "REINDEX " + ("CONCURRENTLY" if "concurrently" in words else "of a schema or database")
    if starts("alter", "table") and "detach" in words and "concurrently" in words:
        return "DETACH PARTITION CONCURRENTLY"
    return None


def is_transaction_control(words: tuple[str, ...]) -> bool:
    if not words:
        return False
    if words[0] in ("begin", "commit", "end", "abort") or words[:2] == ("start", "transaction"):
        return True
    return words[0] == "rollback" and "to" not in words[1:3]


# --- splitting a file into statements ---------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
_WORDS_KEPT = 16


def split(text: str) -> list[MigrationStatement]:
    """The statements of a SQL script, split at `;` as psql splits them.

    A `;` ends a statement outside quotes ('...', E'...', "...", $tag$...$tag$), comments (--, nested /* */)
    and parentheses, and, in CREATE [OR REPLACE] FUNCTION|PROCEDURE, outside BEGIN ... END (SQL-standard
    bodies). Text after the last `;` is a statement too. Comments before a statement are not part of it.
    """
    statements: list[MigrationStatement] = []
    i, n = 0, len(text)
    start: int | None = None
    paren = depth = 0
    words: list[str] = []
    word_count = 0

    def finish(end: int) -> None:
        nonlocal start, paren, depth, words, word_count
        if start is not None:
            line = text.count("\n", 0, start) + 1
            statements.append(MigrationStatement(text[start:end].rstrip(), line, tuple(words)))
        start, paren, depth, words, word_count = None, 0, 0, [], 0

    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith("--", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        elif text.startswith("/*", i):
            i = _after_block_comment(text, i)
        elif c == ";" and paren == 0 and depth == 0:
            finish(i)
            i += 1
        else:
            if start is None:
                start = i
            if c == "'":
                i = _after_quoted(text, i, "'", backslashes=False)
            elif c == '"':
                i = _after_quoted(text, i, '"', backslashes=False)
            elif c == "$" and (tag := _DOLLAR_QUOTE.match(text, i)):
                close = text.find(tag.group(), tag.end())
                i = n if close < 0 else close + len(tag.group())
            elif word := _WORD.match(text, i):
                i = word.end()
                lowered = word.group().lower()
                if lowered == "e" and text.startswith("'", i):  # E'...': backslash escapes
                    i = _after_quoted(text, i, "'", backslashes=True)
                    continue
                if word_count < _WORDS_KEPT:
                    words.append(lowered)
                word_count += 1
                if paren == 0 and _in_routine_definition(words):
                    if lowered == "begin" or (lowered == "case" and depth > 0):
                        depth += 1
                    elif lowered == "end" and depth > 0:
                        depth -= 1
            else:
                if c == "(":
                    paren += 1
                elif c == ")":
                    paren = max(paren - 1, 0)
                i += 1
    finish(n)
    return statements


def _in_routine_definition(words: list[str]) -> bool:
    """CREATE [OR REPLACE] FUNCTION|PROCEDURE: the statements whose bodies may be BEGIN ATOMIC ... END."""
    routine = ("function", "procedure")
    return words[:1] == ["create"] and (
        words[1:2] in (["function"], ["procedure"])
        or (words[1:3] == ["or", "replace"] and len(words) > 3 and words[3] in routine)
    )


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


def _after_block_comment(text: str, i: int) -> int:
    depth, n = 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return n
