"""`alembic upgrade heads` against a working copy, from a script location (the folder of env.py, versions/).

The configuration is built in code: no alembic.ini is read. `script_location` and `sqlalchemy.url` are set
on it, so a usual env.py (`engine_from_config(config.get_section(...), prefix="sqlalchemy.")`) connects to
the working copy; anything else env.py reads from the ini file is absent. Alembic keeps its own version
table (alembic_version, wherever env.py puts it), which production normally has too: the revisions applied
are exactly those production lacks. On an engine whose DDL commits by itself, a failed revision keeps what
it did before the error; Alembic records a revision only once it is done, so a retry runs it again.
"heads" rather than "head", so a script location with several branches upgrades all of them; with one
branch the two are the same.

The applied revisions are known without Alembic's private API: the copy's current heads are read first by
running env.py in Alembic's read-only mode (what `alembic current` does), the revisions between them and the
script's heads are the plan, and after the upgrade the heads are read again and must be the script's.
"""

from __future__ import annotations

import types
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError

from deid import db
from deid.errors import ConfigError, DeidError, Problem, TerminalError, TransientError
from deid.migrations import MigrationProblems, describe_database_error


def apply(connection_url: str, script_location: Path | str) -> list[str]:
    """Upgrade the database at `connection_url` to the script location's heads; returns the revisions
    applied, oldest first, as "<revision> <message>"."""
    config, script = _script(connection_url, Path(script_location))
    current = _current_heads(config, script)
    plan = _plan(script, current)
    if not plan:
        return []
    try:
        command.upgrade(config, "heads")
    except Exception as exc:
        transactional = db.backend_of(connection_url).capabilities.transactional_ddl
        raise _failure(config, script, plan, exc, transactional) from None
    after = _current_heads(config, script)
    if set(after) != set(script.get_heads()):
        raise TerminalError(
            f"alembic upgrade of {script.dir} ended at {', '.join(after) or 'base'}, not at the script's "
            f"heads {', '.join(script.get_heads())}: does env.py run the migrations (context.run_migrations)?"
        )
    return [_name(s) for s in plan]


def _script(connection_url: str, location: Path) -> tuple[Config, ScriptDirectory]:
    if not (location / "env.py").is_file():
        raise ConfigError(
            f"alembic script location {location} has no env.py. deid.yaml's migrations: "
            "{alembic: SCRIPT_LOCATION} names the folder holding env.py and versions/, relative to the "
            "folder of deid.yaml."
        )
    url = db.normalise_url(connection_url).render_as_string(hide_password=False)
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # the ini parser's interpolation
    try:
        return config, ScriptDirectory.from_config(config)
    except CommandError as exc:
        raise ConfigError(f"alembic script location {location}: {exc}") from None


def _current_heads(config: Config, script: ScriptDirectory) -> tuple[str, ...]:
    """The revisions the database is at, as env.py sees it (its version table, its schema)."""
    seen: list[tuple[str, ...]] = []

    def record(heads, context) -> list:
        seen.append(tuple(heads))
        return []

    try:
        with EnvironmentContext(config, script, fn=record, dont_mutate=True):
            script.run_env()
    except Exception as exc:
        reason, transient = _describe(exc, "reading the alembic version table")
        kind = TransientError if transient else TerminalError
        raise kind(f"alembic env.py in {script.dir}: {reason}") from None
    return seen[0] if seen else ()


def _plan(script: ScriptDirectory, current: tuple[str, ...]) -> list[Script]:
    """The revisions between `current` and the script's heads, oldest first."""
    try:
        newer = list(script.iterate_revisions("heads", current or "base"))
    except CommandError as exc:
        raise TerminalError(
            f"alembic: the working copy is at revision {', '.join(current)}, which {script.dir} does not "
            f"lead to ({exc}). Production has a revision these migrations lack: update the script location "
            "to production's revisions plus staging's."
        ) from None
    return [s for s in reversed(newer) if s.revision not in current]


def _failure(
    config: Config, script: ScriptDirectory, plan: list[Script], exc: Exception, transactional: bool
) -> TerminalError | TransientError:
    failed = _revision_in_traceback(exc, plan)
    where = str(Path(failed.path)) if failed else str(script.dir)
    try:
        reached = set(_current_heads(config, script))
    except (TerminalError, TransientError):
        reached = set()
    done = {s.revision for head in reached for s in script.iterate_revisions(head, "base")}
    applied = [_name(s) for s in plan if s.revision in done]
    line = _line_in(exc, failed)
    reason, transient = _describe(exc, "the revision")
    kept = f"applied before it: {', '.join(applied)}" if applied else "no revision of this run was applied"
    if failed and not transactional:
        # DDL commits by itself: what the revision did before the error stays, and is done again on a retry
        kept += (
            f"; what revision {failed.revision} did before the error stayed applied (the engine commits DDL "
            "by itself), and a retry runs the whole revision again: make its operations rerunnable, or "
            "rebuild the working copy"
        )
    if transient:
        return TransientError(f"{where}:{line}: {reason} ({kept}; retrying may help)")
    name = f"revision {_name(failed)}" if failed else "alembic upgrade"
    return MigrationProblems(
        [Problem(where, line, f"{name} failed: {reason}", f"correct the revision (or env.py); {kept}")]
    )


def _describe(exc: Exception, doing: str) -> tuple[str, bool]:
    if isinstance(exc, sa.exc.DBAPIError):
        return describe_database_error(exc, doing)
    if isinstance(exc, DeidError):
        return str(exc), exc.transient
    # a Python error in env.py or a revision (an import, a typo): about the code, not the data
    first = next(iter(str(exc).strip().splitlines()), "")
    return f"{type(exc).__name__}: {first}".rstrip(": "), False


def _revision_in_traceback(exc: BaseException, plan: list[Script]) -> Script | None:
    """The revision whose upgrade() was running when `exc` was raised: the deepest frame in one of the
    plan's files."""
    by_path = {str(Path(s.path).resolve()): s for s in plan}
    found = None
    for frame, _ in _frames(exc):
        found = by_path.get(str(Path(frame.f_code.co_filename).resolve()), found)
    return found


def _line_in(exc: BaseException, revision: Script | None) -> int:
    if revision is None:
        return 0
    path = str(Path(revision.path).resolve())
    line = 0
    for frame, lineno in _frames(exc):
        if str(Path(frame.f_code.co_filename).resolve()) == path:
            line = lineno
    return line


def _frames(exc: BaseException):
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _name(revision: Script) -> str:
    message = (revision.doc or "").strip()
    return f"{revision.revision} {message}".strip()
