"""Schema migrations that staging needs and production lacks, replayed on tonight's working copy.

Two kinds, named in deid.yaml under `migrations:`:

- `{sql: FOLDER}`: files `V<n>__<name>.sql`, applied in numeric order, each in its own transaction where
  the engine's DDL is transactional, statement by statement and resumable where it is not; deid records
  what it applied in a version table of the copy, which the engine's MigrationDialect names (`sqlfiles.py`).
- `{alembic: SCRIPT_LOCATION}`: `alembic upgrade head` against the copy; Alembic keeps its own
  `alembic_version` table (see `alembic_runner.py`).

Each runner is a module with `apply(url, location) -> list[str]`, looked up by kind and imported only when
used, so deid imports Alembic only for databases that use it. The tables the runners keep for themselves
are listed here (`is_bookkeeping`), so that coverage checks can leave them out explicitly.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from pathlib import Path

from deid.backends import backend_for, diagnose, engine_names
from deid.config import Migrations
from deid.dberrors import retell
from deid.errors import ConfigError, Problem, TerminalError, TransientError
from deid.schema import Table
from deid.suggest import did_you_mean

__all__ = [
    "MigrationProblems",
    "apply_migrations",
    "describe_database_error",
    "is_bookkeeping",
    "kinds",
    "version_tables",
]

ALEMBIC_VERSION_TABLE = "alembic_version"  # Alembic's default name; its schema is the env.py's choice

_RUNNERS: dict[str, str] = {
    "sql": "deid.migrations.sqlfiles",
    "alembic": "deid.migrations.alembic_runner",
}


class MigrationProblems(TerminalError):
    """Migrations that cannot be applied: a badly named or duplicate file, a changed applied file, a failed
    statement. Each problem names the file (and line, when known) and the fix; every problem is listed."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(sorted(set(problems)))
        count = len(self.problems)
        text = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{text}\n{count} migration problem{'s' if count != 1 else ''} found.")


def kinds() -> tuple[str, ...]:
    return tuple(sorted(_RUNNERS))


def apply_migrations(connection_url: str, migrations: Migrations | None, root: Path | str) -> list[str]:
    """Apply to the database at `connection_url` the migrations it lacks; returns their names, in order.

    `migrations.path` is relative to `root` (the folder of deid.yaml). Running it again applies nothing.
    Raises TerminalError (a subclass naming the file and line for sql) when a migration fails or the folder
    is inconsistent, TransientError when the connection is lost.
    """
    if migrations is None:
        return []
    if migrations.kind not in _RUNNERS:
        raise ConfigError(
            f"unknown migrations kind '{migrations.kind}'.{did_you_mean(migrations.kind, _RUNNERS)} "
            f"Use one of: {', '.join(kinds())}"
        )
    location = Path(migrations.path)
    if not location.is_absolute():
        location = Path(root) / location
    runner = importlib.import_module(_RUNNERS[migrations.kind])
    return runner.apply(connection_url, location)


def is_bookkeeping(table: Table) -> bool:
    """True for the tables migration tools keep for themselves: deid's version table and Alembic's.

    deid's is recognised by the name an engine's MigrationDialect gives it (any engine's: a Table does not
    say which engine it came from, and the names are deid's own). Alembic's is recognised by name and shape
    (one column, version_num) in any schema, since env.py may put it anywhere; a user table that merely
    shares the name keeps needing a rule.
    """
    if table.qualified in version_tables():
        return True
    return table.name == ALEMBIC_VERSION_TABLE and [c.name for c in table.columns] == ["version_num"]


@functools.cache
def version_tables() -> frozenset[str]:
    """deid's version table on every engine with SQL-folder migrations, as its introspection names it."""
    found = set()
    for name in engine_names():
        try:
            found.add(backend_for(name).migrations().version_table)
        except NotImplementedError:
            continue
    return frozenset(found)


def describe_database_error(exc: BaseException, doing: str) -> tuple[str, bool]:
    """What a failed migration statement did wrong, without values from rows; and whether a retry may help."""
    told = retell(exc, doing)
    diagnosis = diagnose(exc)
    if diagnosis.about_statement and diagnosis.message:  # the migration's own text may be quoted
        return f"{diagnosis.message} ({diagnosis.code})", False
    # no code on an operational error (PEP 249's name): the connection failed before or under the statement
    original = getattr(exc, "orig", None) or exc
    lost = not diagnosis.code and type(original).__name__ == "OperationalError"
    return str(told), lost or isinstance(told, TransientError)
