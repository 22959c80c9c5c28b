"""A folder of `V<n>__<name>.sql` files, applied to a working copy in numeric order (V2 before V10).

What a copy has received is recorded in the copy itself, in deid's version table (version, name, checksum,
applied_at; the engine's MigrationDialect names it). Every night starts from a fresh clone of production,
which never has that table, so every file applies every night; within one copy (a retried step) a file
applies once. Consequences:

- a file must not change once applied to a copy (a checksum mismatch is an error): a change is a new file;
- when production gains what a file does (the feature ships), delete the file, or write it rerunnable
  (`CREATE TABLE IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`), or it fails the first night production has it.

Where the engine's DDL is transactional (MigrationDialect.one_transaction), each file runs in its own
transaction together with its row in the version table: a failed file leaves nothing of itself behind, and
the files before it stay applied. A file whose first line is `-- deid: no-transaction` runs statement by
statement outside a transaction, for what a transaction block refuses (the dialect says which statements);
its statements must be rerunnable, since a failure leaves the ones before it committed. Such statements in a
file without the marker, and transaction control (BEGIN, COMMIT) in one with it absent, are refused before
anything runs.

Where DDL commits on its own, no file can be one transaction: each statement runs and commits alone, and its
progress (the number of statements done and their checksum) is recorded right after it, in the same
transaction where the statement is not DDL. A failed file keeps the statements before the failing one; a
retried step resumes at the failing statement, after running the file's earlier session settings again (SET
...). Only the statements not yet applied may change in between: a change to one that was applied is refused.
Transaction control is refused in such files (each statement is its own transaction already).

Files are split into statements by the engine's dialect (as its command-line client splits them), so that a
failure names the file and the line. Messages quote the migration's own text and the server's message only
where that message is about the statement (syntax, unknown objects); otherwise they carry the error code and
object names, never values from rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from deid import db
from deid.backends import DEFAULT_ENGINE, backend_for, diagnose
from deid.backends.base import AppliedMigration, MigrationDialect, MigrationStatement
from deid.dberrors import retell
from deid.errors import ConfigError, DeidError, Problem, TransientError
from deid.migrations import MigrationProblems, describe_database_error

FILE_NAME = re.compile(r"V(?P<version>[0-9]+)__(?P<description>[A-Za-z0-9][A-Za-z0-9_-]*)\.sql")
NO_TRANSACTION_MARKER = "-- deid: no-transaction"
_MARKER = re.compile(r"--\s*deid\s*:\s*no-transaction\s*", re.IGNORECASE)
MAX_VERSION = 2**63 - 1  # the version column is a bigint, so timestamps (V20261128093000__...) fit
NAMING_HINT = (
    "name it V<n>__<description>.sql: n a whole number from 1, description letters, digits, _ or -, "
    "e.g. V3__add_course_tags.sql (only *.sql files are read; keep other files out of the folder or "
    "give them another extension)"
)
REBUILD = "or rebuild the working copy (`deid run` starts again from production)"

Statement = MigrationStatement
Applied = AppliedMigration


def statements_checksum(statements: Sequence[MigrationStatement]) -> str:
    """sha256 of statements' texts (comments between them and line endings left out): what a file applied
    part-way is checked against before it resumes."""
    digest = hashlib.sha256()
    for statement in statements:
        digest.update(statement.sql.replace("\r\n", "\n").encode("utf-8") + b"\0")
    return digest.hexdigest()


def default_dialect() -> MigrationDialect:
    """The default engine's, for reading a folder when no database is named (lint, tests)."""
    return backend_for(DEFAULT_ENGINE).migrations()


@dataclass(frozen=True)
class SqlMigration:
    version: int
    name: str  # the file name, V<n>__<description>.sql
    path: Path
    checksum: str  # sha256 of the text with line endings normalised
    transactional: bool
    statements: tuple[Statement, ...]


# --- reading the folder (no database) --------------------------------------------------------------------


def read_folder(folder: Path | str, dialect: MigrationDialect | None = None) -> list[SqlMigration]:
    """Every migration of `folder`, sorted by version, split by `dialect` (the default engine's if None).
    Raises MigrationProblems listing every bad file."""
    dialect = dialect or default_dialect()
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
        migration, found = read_file(path, version, dialect)
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


def read_file(
    path: Path, version: int, dialect: MigrationDialect
) -> tuple[SqlMigration | None, list[Problem]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        return None, [Problem(str(path), 0, f"not UTF-8 (byte {exc.start})", "save the file as UTF-8")]
    checksum = hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    marked = first is not None and bool(_MARKER.fullmatch(lines[first].strip()))
    transactional = dialect.one_transaction and not marked
    statements = tuple(dialect.split(text))
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
    for statement in statements:
        found = _statement_problem(dialect, statement, transactional)
        if found:
            problems.append(Problem(str(path), statement.line, *found))
    migration = SqlMigration(version, path.name, path, checksum, transactional, statements)
    return migration, problems


def _statement_problem(
    dialect: MigrationDialect, statement: MigrationStatement, transactional: bool
) -> tuple[str, str] | None:
    """What is wrong with a statement where it stands (what, fix), or None."""
    what = dialect.needs_no_transaction(statement.words) if transactional else None
    if what:
        return (
            f"{what} cannot run inside a transaction, and this file runs in one",
            f"put the statement in a file whose first line is '{NO_TRANSACTION_MARKER}' "
            "(its statements run one by one, each committed: make them rerunnable, e.g. "
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS)",
        )
    if dialect.is_transaction_control(statement.words) and (transactional or not dialect.one_transaction):
        how = (
            "deid runs each file in a transaction of its own"
            if transactional
            else "deid runs each statement on its own and records it as applied (the engine's DDL commits "
            "by itself, so a file cannot be one transaction)"
        )
        return (
            f"{' '.join(statement.words[:1]).upper()}: {how}",
            "delete the transaction control statements from the file",
        )
    return dialect.problem(statement)


# --- what a copy lacks -----------------------------------------------------------------------------------


def pending(migrations: Iterable[SqlMigration], applied: Mapping[int, Applied]) -> list[SqlMigration]:
    """The migrations `applied` lacks, in order, a file applied part-way included (it resumes). Raises
    MigrationProblems if the record and the folder disagree: an applied file (or an applied statement of a
    file applied part-way) changed or gone, or a file numbered below one already applied."""
    migrations = list(migrations)
    problems = []
    files = {m.version: m for m in migrations}
    for version, done in sorted(applied.items()):
        migration = files.get(version)
        if migration is None:
            problems.append(
                Problem(
                    done.name,
                    0,
                    f"version {version} ({done.name}) is recorded as applied to this copy, but the folder "
                    "has no file with that version",
                    f"restore the file, {REBUILD}",
                )
            )
        elif done.statements_done is not None:
            problem = _resumable(migration, done)
            if problem:
                problems.append(problem)
        elif migration.checksum != done.checksum:
            problems.append(
                Problem(
                    str(migration.path),
                    0,
                    f"{migration.name} changed after it was applied to this copy (checksum "
                    f"{done.checksum[:12]}, now {migration.checksum[:12]})",
                    f"an applied migration must not change: restore it and put the change in a new file "
                    f"V<n>__<description>.sql with n > {max(files)}, {REBUILD}",
                )
            )
    partway = {v for v, a in applied.items() if a.statements_done is not None}
    todo = [m for m in migrations if m.version not in applied or m.version in partway]
    latest = max(applied, default=0)
    for migration in todo:
        if migration.version < latest:
            problems.append(
                Problem(
                    str(migration.path),
                    0,
                    f"{migration.name} is not applied to this copy but the later version {latest} is",
                    f"migrations apply in order: number it above {latest}, {REBUILD}",
                )
            )
    if problems:
        raise MigrationProblems(problems)
    return todo


def _resumable(migration: SqlMigration, done: Applied) -> Problem | None:
    """A problem if the statements of `migration` that an earlier try applied are no longer what it ran."""
    count = done.statements_done or 0
    applied = migration.statements[:count]
    if len(applied) == count and statements_checksum(applied) == done.done_checksum:
        return None
    last = f" (line {applied[-1].line} now)" if applied else ""
    return Problem(
        str(migration.path),
        0,
        f"{migration.name} stopped part-way on an earlier try: its first {count} statement(s) stayed applied"
        f"{last}, and they are not what ran then",
        f"restore those {count} statement(s) as they were (correct only the statement that failed and those "
        f"after it; the retry resumes with it), {REBUILD}",
    )


# --- applying --------------------------------------------------------------------------------------------


def apply(connection_url: str, folder: Path | str) -> list[str]:
    """Apply the files of `folder` that the database at `connection_url` lacks; returns their names."""
    backend = db.backend_of(connection_url)
    try:
        dialect = backend.migrations()
    except NotImplementedError:
        raise ConfigError(
            f"sql migrations are not implemented for engine '{backend.name}'; use alembic migrations"
        ) from None
    migrations = read_folder(folder, dialect)
    # Autocommit at the driver: transactions are opened and closed here, explicitly.
    engine = db.engine(connection_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    done: list[str] = []
    try:
        with engine.connect() as connection:
            applied = dialect.applied(connection)
            todo = pending(migrations, applied)
            if todo:
                dialect.create_version_table(connection)
            for migration in todo:
                if migration.transactional:
                    _apply_in_one_transaction(connection, dialect, migration, done)
                else:
                    _apply_statement_by_statement(connection, dialect, migration, applied, done)
                done.append(migration.name)
    except sa.exc.DBAPIError as exc:  # reading or creating the version table
        raise retell(exc, f"migrations bookkeeping ({dialect.version_table})") from None
    finally:
        engine.dispose()
    return done


_RAW = {"no_parameters": True}  # the statement goes to the driver as written: a `%` is not a placeholder


def _whole(migration: SqlMigration) -> Applied:
    return Applied(migration.version, migration.name, migration.checksum)


def _apply_in_one_transaction(
    connection: sa.Connection, dialect: MigrationDialect, migration: SqlMigration, done: list[str]
) -> None:
    statement: Statement | None = None
    connection.exec_driver_sql("BEGIN", execution_options=_RAW)
    try:
        for statement in migration.statements:
            connection.exec_driver_sql(statement.sql, execution_options=_RAW)
        statement = None  # from here on, a failure is the bookkeeping's or the commit's
        dialect.record(connection, _whole(migration))
        connection.exec_driver_sql("COMMIT", execution_options=_RAW)
    except sa.exc.DBAPIError as exc:
        _rollback(connection)
        raise _failure(dialect, migration, statement, 0, exc, done) from None


def _apply_statement_by_statement(
    connection: sa.Connection,
    dialect: MigrationDialect,
    migration: SqlMigration,
    applied: Mapping[int, Applied],
    done: list[str],
) -> None:
    """Run the statements one by one, each committed. Where the engine's files cannot be one transaction,
    record after each statement how far the file got (in the statement's transaction, which DDL commits
    early) and resume a file an earlier try left part-way; a file marked no-transaction on an engine whose
    files can be one transaction is recorded once, after its last statement, and reruns whole."""
    resumable = not dialect.one_transaction
    earlier = applied.get(migration.version)
    start = (earlier.statements_done or 0) if resumable and earlier is not None else 0
    statements = migration.statements
    index, statement = start, None
    try:
        for statement in statements[:start]:
            if dialect.session_setting(statement):  # a new session: the file's settings hold again
                connection.exec_driver_sql(statement.sql, execution_options=_RAW)
        for index in range(start, len(statements)):
            statement = statements[index]
            if resumable:
                connection.exec_driver_sql("BEGIN", execution_options=_RAW)
            connection.exec_driver_sql(statement.sql, execution_options=_RAW)
            if resumable:
                dialect.record(connection, _progress(migration, index + 1))
                connection.exec_driver_sql("COMMIT", execution_options=_RAW)
        index, statement = len(statements), None  # a failure from here is the bookkeeping's
        if not resumable or not statements:
            dialect.record(connection, _whole(migration))
    except sa.exc.DBAPIError as exc:
        if resumable:
            _rollback(connection)
        raise _failure(dialect, migration, statement, index, exc, done) from None


def _progress(migration: SqlMigration, count: int) -> Applied:
    """The version table's row once `count` statements of `migration` are applied (the file whole when
    that is all of them)."""
    if count >= len(migration.statements):
        return _whole(migration)
    done = migration.statements[:count]
    return Applied(migration.version, migration.name, migration.checksum, count, statements_checksum(done))


def _rollback(connection: sa.Connection) -> None:
    with contextlib.suppress(sa.exc.SQLAlchemyError, DeidError):
        connection.exec_driver_sql("ROLLBACK", execution_options=_RAW)


def _failure(
    dialect: MigrationDialect,
    migration: SqlMigration,
    statement: Statement | None,
    index: int,
    exc: sa.exc.DBAPIError,
    done: list[str],
) -> DeidError:
    """The error for `statement` (the `index`-th of the file, from 0) failing, or for the bookkeeping after
    the statements when `statement` is None."""
    reason, transient = describe_database_error(
        exc, "the statement" if statement else "recording and committing the file"
    )
    diagnosis = diagnose(exc)
    line = 0
    if statement is not None:
        line = statement.line_at(dialect.error_position(statement, diagnosis))
        reason += f", in: {statement.text_at(line)}"
    outcome = _outcome(dialect, migration, statement, index)
    before = f"; applied before it: {', '.join(done)}" if done else ""
    fix = f"correct the file; {outcome}{before}"
    if diagnosis.needs_no_transaction:
        fix = (
            f"this statement cannot run inside a transaction: put it in a file whose first line is "
            f"'{NO_TRANSACTION_MARKER}'; {outcome}{before}"
        )
    elif statement is not None and not migration.transactional and not dialect.one_transaction:
        fix = f"correct this statement (or those after it); {outcome}{before}"
    if transient:
        return TransientError(f"{migration.path}:{line}: {reason} ({outcome}; retrying may help)")
    return MigrationProblems([Problem(str(migration.path), line, f"migration failed: {reason}", fix)])


def _outcome(
    dialect: MigrationDialect, migration: SqlMigration, statement: Statement | None, index: int
) -> str:
    """What of `migration` stayed in the copy after a failure at its statement number `index` (from 0)."""
    if migration.transactional:
        return f"nothing of {migration.name} was applied (it runs in one transaction)"
    if dialect.one_transaction:
        return (
            f"the statements of {migration.name} before this one stayed committed (it runs without a "
            "transaction): make them rerunnable"
        )
    if statement is None:
        return (
            f"every statement of {migration.name} stayed applied, but recording it failed: a retry runs its "
            "last statement again"
        )
    if index == 0:
        kept = f"nothing of {migration.name} was applied (its first statement failed)"
    else:
        last = migration.statements[index - 1].line
        kept = (
            f"statements 1 to {index} of {migration.name} (up to line {last}) stayed applied: the engine "
            "commits each statement by itself, DDL included"
        )
    return (
        f"{kept}; deid recorded how far it got, and a retry resumes at this statement (statement "
        f"{index + 1}, line {statement.line}); the statements before it must not change"
    )
