"""A folder of `V<n>__<name>.sql` files, applied to a working copy in numeric order (V2 before V10).

What a copy has received is recorded in the copy itself, in `_deid_migrations.applied` (version, name,
checksum, applied_at). Every night starts from a fresh clone of production, which never has that table, so
every file applies every night; within one copy (a retried step) a file applies once. Consequences:

- a file must not change once applied to a copy (a checksum mismatch is an error): a change is a new file;
- when production gains what a file does (the feature ships), delete the file, or write it rerunnable
  (`CREATE TABLE IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`), or it fails the first night production has it.

Each file runs in its own transaction (PostgreSQL's DDL is transactional), together with its row in the
version table: a failed file leaves nothing of itself behind, and the files before it stay applied. A file
whose first line is `-- deid: no-transaction` runs statement by statement outside a transaction, for what a
transaction block refuses (CREATE INDEX CONCURRENTLY, VACUUM, ...); its statements must be rerunnable, since a
failure leaves the ones before it committed. Such statements in a file without the marker, and transaction
control (BEGIN, COMMIT) in one with it absent, are refused before anything runs.

Files are split into statements here (as psql does: quotes, dollar quotes, comments, parentheses and
`BEGIN ATOMIC ... END` bodies respected), so that a failure names the file and the line. Messages quote the
migration's own text and the server's message only where that message is about the statement (syntax,
unknown objects); otherwise they carry the SQLSTATE and object names, never values from rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from deid import db
from deid.backends import backend_for, diagnose
from deid.dberrors import retell
from deid.errors import ConfigError, DeidError, Problem, TransientError
from deid.migrations import VERSION_SCHEMA, VERSION_TABLE, MigrationProblems, describe_database_error

FILE_NAME = re.compile(r"V(?P<version>[0-9]+)__(?P<description>[A-Za-z0-9][A-Za-z0-9_-]*)\.sql")
NO_TRANSACTION_MARKER = "-- deid: no-transaction"
_MARKER = re.compile(r"--\s*deid\s*:\s*no-transaction\s*", re.IGNORECASE)
MAX_VERSION = 2**63 - 1  # the version column is a bigint, so timestamps (V20261128093000__...) fit
NAMING_HINT = (
    "name it V<n>__<description>.sql: n a whole number from 1, description letters, digits, _ or -, "
    "e.g. V3__add_course_tags.sql (only *.sql files are read; keep other files out of the folder or "
    "give them another extension)"
)

CREATE_VERSION_TABLE = (
    f"CREATE SCHEMA IF NOT EXISTS {VERSION_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version    bigint PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)""",
    f"COMMENT ON TABLE {VERSION_TABLE} IS 'Staging-only schema migrations that deid applied to this copy'",
)
RECORD = sa.text(f"INSERT INTO {VERSION_TABLE} (version, name, checksum) VALUES (:version, :name, :checksum)")


@dataclass(frozen=True)
class Statement:
    sql: str  # from its first token to the character before its `;`
    line: int  # line of its first token in the file, from 1
    words: tuple[str, ...]  # its first unquoted words, lower case: what kind of statement it is

    def line_at(self, position: int | None) -> int:
        """The file line of the 1-based character `position` within the statement (the server's cursor)."""
        if not position or position < 1:
            return self.line
        return self.line + self.sql.count("\n", 0, position - 1)

    def text_at(self, line: int) -> str:
        """The statement's text on file line `line`, stripped and shortened, for messages."""
        lines = self.sql.splitlines() or [""]
        text = lines[min(max(line - self.line, 0), len(lines) - 1)].strip()
        return text if len(text) <= 160 else text[:157] + "..."


@dataclass(frozen=True)
class SqlMigration:
    version: int
    name: str  # the file name, V<n>__<description>.sql
    path: Path
    checksum: str  # sha256 of the text with line endings normalised
    transactional: bool
    statements: tuple[Statement, ...]


# --- reading the folder (no database) --------------------------------------------------------------------


def read_folder(folder: Path | str) -> list[SqlMigration]:
    """Every migration of `folder`, sorted by version. Raises MigrationProblems listing every bad file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(
            f"migrations folder {folder} not found. deid.yaml's migrations: {{sql: FOLDER}} is relative "
            "to the folder of deid.yaml."
        )
    problems: list[Problem] = []
    by_version: dict[int, SqlMigration] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() != ".sql":
            continue
        match = FILE_NAME.fullmatch(path.name)
        if not match:
            problems.append(Problem(str(path), 0, f"{path.name} is not a migration file name", NAMING_HINT))
            continue
        version = int(match["version"])
        if not 1 <= version <= MAX_VERSION:
            problems.append(
                Problem(
                    str(path),
                    0,
                    f"version {match['version']} is out of range",
                    "rename it V<n>__<description>.sql with n from 1 to 2^63-1",
                )
            )
            continue
        migration, found = read_file(path, version)
        problems += found
        other = by_version.get(version)
        if other is not None:
            problems.append(
                Problem(
                    str(path),
                    0,
                    f"version {version} is used twice: {other.name} and {path.name}",
                    "give each file its own version: renumber one of them",
                )
            )
        elif migration is not None:
            by_version[version] = migration
    if problems:
        raise MigrationProblems(problems)
    return [by_version[v] for v in sorted(by_version)]


def read_file(path: Path, version: int) -> tuple[SqlMigration | None, list[Problem]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        return None, [Problem(str(path), 0, f"not UTF-8 (byte {exc.start})", "save the file as UTF-8")]
    checksum = hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    transactional = first is None or not _MARKER.fullmatch(lines[first].strip())
    statements = tuple(split_statements(text))
    problems = []
    for number, line in enumerate(lines, 1):
        if _MARKER.fullmatch(line.strip()) and number - 1 != first:
            problems.append(
                Problem(
                    str(path),
                    number,
                    f"'{NO_TRANSACTION_MARKER}' only counts as the file's first line",
                    "move it to the first line (or delete it)",
                )
            )
    if transactional:
        for statement in statements:
            what = needs_no_transaction(statement.words)
            if what:
                problems.append(
                    Problem(
                        str(path),
                        statement.line,
                        f"{what} cannot run inside a transaction, and this file runs in one",
                        f"put the statement in a file whose first line is '{NO_TRANSACTION_MARKER}' "
                        "(its statements run one by one, each committed: make them rerunnable, e.g. "
                        "CREATE INDEX CONCURRENTLY IF NOT EXISTS)",
                    )
                )
            elif is_transaction_control(statement.words):
                problems.append(
                    Problem(
                        str(path),
                        statement.line,
                        f"{' '.join(statement.words[:1]).upper()}: deid runs each file in a transaction "
                        "of its own",
                        "delete the transaction control statements from the file",
                    )
                )
    migration = SqlMigration(version, path.name, path, checksum, transactional, statements)
    return migration, problems


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


def split_statements(text: str) -> list[Statement]:
    """The statements of a SQL script, split at `;` as psql splits them.

    A `;` ends a statement outside quotes ('...', E'...', "...", $tag$...$tag$), comments (--, nested /* */)
    and parentheses, and, in CREATE [OR REPLACE] FUNCTION|PROCEDURE, outside BEGIN ... END (SQL-standard
    bodies). Text after the last `;` is a statement too. Comments before a statement are not part of it.
    """
    statements: list[Statement] = []
    i, n = 0, len(text)
    start: int | None = None
    paren = depth = 0
    words: list[str] = []
    word_count = 0

    def finish(end: int) -> None:
        nonlocal start, paren, depth, words, word_count
        if start is not None:
            line = text.count("\n", 0, start) + 1
            statements.append(Statement(text[start:end].rstrip(), line, tuple(words)))
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


# --- what a copy lacks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    version: int
    name: str
    checksum: str


def pending(migrations: Iterable[SqlMigration], applied: Mapping[int, Applied]) -> list[SqlMigration]:
    """The migrations `applied` lacks, in order. Raises MigrationProblems if the record and the folder
    disagree: an applied file changed or gone, or a file numbered below one already applied."""
    migrations = list(migrations)
    problems = []
    files = {m.version: m for m in migrations}
    rebuild = "or rebuild the working copy (`deid run` starts again from production)"
    for version, done in sorted(applied.items()):
        migration = files.get(version)
        if migration is None:
            problems.append(
                Problem(
                    done.name,
                    0,
                    f"version {version} ({done.name}) is recorded as applied to this copy, but the folder "
                    "has no file with that version",
                    f"restore the file, {rebuild}",
                )
            )
        elif migration.checksum != done.checksum:
            problems.append(
                Problem(
                    str(migration.path),
                    0,
                    f"{migration.name} changed after it was applied to this copy (checksum "
                    f"{done.checksum[:12]}, now {migration.checksum[:12]})",
                    f"an applied migration must not change: restore it and put the change in a new file "
                    f"V<n>__<description>.sql with n > {max(files)}, {rebuild}",
                )
            )
    todo = [m for m in migrations if m.version not in applied]
    latest = max(applied, default=0)
    for migration in todo:
        if migration.version < latest:
            problems.append(
                Problem(
                    str(migration.path),
                    0,
                    f"{migration.name} is not applied to this copy but the later version {latest} is",
                    f"migrations apply in order: number it above {latest}, {rebuild}",
                )
            )
    if problems:
        raise MigrationProblems(problems)
    return todo


# --- applying --------------------------------------------------------------------------------------------


def apply(connection_url: str, folder: Path | str) -> list[str]:
    """Apply the files of `folder` that the database at `connection_url` lacks; returns their names."""
    migrations = read_folder(folder)
    if not backend_for(db.normalise_url(connection_url).get_backend_name()).capabilities.transactional_ddl:
        raise ConfigError("sql migrations need an engine with transactional DDL; use alembic migrations")
    # Autocommit at the driver: transactions are opened and closed here, explicitly, per file.
    engine = db.engine(connection_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    done: list[str] = []
    try:
        with engine.connect() as connection:
            todo = pending(migrations, _applied(connection))
            if todo:
                for statement in CREATE_VERSION_TABLE:
                    connection.exec_driver_sql(statement)
            for migration in todo:
                _apply_one(connection, migration, done)
                done.append(migration.name)
    except sa.exc.DBAPIError as exc:  # reading or creating the version table
        raise retell(exc, f"migrations bookkeeping ({VERSION_TABLE})") from None
    finally:
        engine.dispose()
    return done


def _applied(connection: sa.Connection) -> dict[int, Applied]:
    exists = connection.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": VERSION_TABLE}).scalar()
    if not exists:
        return {}
    rows = connection.execute(sa.text(f"SELECT version, name, checksum FROM {VERSION_TABLE}"))
    return {row.version: Applied(row.version, row.name, row.checksum) for row in rows}


_RAW = {"no_parameters": True}  # the statement goes to the driver as written: a `%` is not a placeholder


def _apply_one(connection: sa.Connection, migration: SqlMigration, done: list[str]) -> None:
    statement: Statement | None = None
    if migration.transactional:
        connection.exec_driver_sql("BEGIN", execution_options=_RAW)
    try:
        for statement in migration.statements:
            connection.exec_driver_sql(statement.sql, execution_options=_RAW)
        statement = None  # from here on, a failure is the bookkeeping's or the commit's
        connection.execute(
            RECORD, {"version": migration.version, "name": migration.name, "checksum": migration.checksum}
        )
        if migration.transactional:
            connection.exec_driver_sql("COMMIT", execution_options=_RAW)
    except sa.exc.DBAPIError as exc:
        if migration.transactional:
            with contextlib.suppress(sa.exc.SQLAlchemyError, DeidError):
                connection.exec_driver_sql("ROLLBACK", execution_options=_RAW)
        raise _failure(migration, statement, exc, done) from None


def _failure(
    migration: SqlMigration, statement: Statement | None, exc: sa.exc.DBAPIError, done: list[str]
) -> DeidError:
    reason, transient = describe_database_error(
        exc, "the statement" if statement else "recording and committing the file"
    )
    diagnosis = diagnose(exc)
    line = 0
    if statement is not None:
        line = statement.line_at(diagnosis.position)
        reason += f", in: {statement.text_at(line)}"
    if migration.transactional:
        outcome = f"nothing of {migration.name} was applied (it runs in one transaction)"
    else:
        outcome = (
            f"the statements of {migration.name} before this one stayed committed (it runs without a "
            "transaction): make them rerunnable"
        )
    before = f"; applied before it: {', '.join(done)}" if done else ""
    fix = f"correct the file; {outcome}{before}"
    if diagnosis.needs_no_transaction:
        fix = (
            f"this statement cannot run inside a transaction: put it in a file whose first line is "
            f"'{NO_TRANSACTION_MARKER}'; {outcome}{before}"
        )
    if transient:
        return TransientError(f"{migration.path}:{line}: {reason} ({outcome}; retrying may help)")
    return MigrationProblems([Problem(str(migration.path), line, f"migration failed: {reason}", fix)])
