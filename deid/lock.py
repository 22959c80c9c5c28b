"""One run at a time per staging name and server: the engine's session lock, and the run's holder.

**The session lock.** A dedicated connection holds the engine's lock on the staging name (Backend.try_lock:
an advisory lock, a named user lock) for as long as a command or an Airflow task works on the staging
name's copies. The lock dies with its session, so a process killed with SIGKILL, or a lost machine, releases
it without any stale-lock file to clean up. Every deid process must lock in the same place, whatever database
its staging URL names (two URLs to one server, naming different databases, must still exclude each other):
the lock is always taken from the engine's maintenance database (Backend.maintenance_database). The lock is
exclusive, except for the scrub of single tables in Airflow: those mapped tasks of one run work on one
working copy side by side, so they share it (`shared=True`), which still shuts out any other command.

**The holder.** An Airflow run is several processes, one per task, and between two tasks no session holds
the lock. So a run also writes itself on its working copy as its holder (steps/state.py Holder), from the
snapshot on; `check_holder` is what every step, `rollback` and `cleanup` ask before touching copies: an
Airflow run's copy belongs to that run until it ends (its cleanup task drops the copy), and a CLI command
met meanwhile is refused, naming the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import sqlalchemy as sa

from deid.db import backend_of, engine, normalise_url
from deid.errors import BadConnectionSettings, ConfigError, TransientError
from deid.steps.state import Holder

APPLICATION_NAME = "deid run"


class Busy(TransientError):
    """Another deid command or run holds the staging name (its session lock, or its working copy between an
    Airflow run's tasks): retrying once it is over may succeed (exit code 4)."""


@dataclass(frozen=True)
class RunLock:
    staging_name: str
    pid: int  # the engine's id of the session holding it


@contextmanager
def run_lock(staging_server_url: str, staging_name: str, shared: bool = False) -> Iterator[RunLock]:
    """Hold the run lock of `staging_name` for the block; Busy naming the holder when it is taken.

    `shared`: several holders at once, all shut out by an exclusive holder (and shutting it out).
    """
    backend = backend_of(staging_server_url)
    eng = engine(
        lock_url(staging_server_url),
        poolclass=sa.pool.NullPool,
        isolation_level="AUTOCOMMIT",
        # Names the holder beside its session on the server, for the message another run shows.
        connect_args=backend.session_name_args(f"{APPLICATION_NAME} {staging_name}"),
    )
    try:
        with _connect(eng, backend.maintenance_database) as c:
            pid = backend.try_lock(c, staging_name, shared)
            if pid is None:
                holder = backend.lock_holder(c, staging_name)
                raise Busy(f"another deid run for {staging_name} is in progress ({holder})")
            try:
                yield RunLock(staging_name, pid)
            finally:
                # If the session is gone, its lock went with it.
                with suppress(sa.exc.SQLAlchemyError, TransientError):
                    backend.unlock(c, staging_name, shared)
    finally:
        eng.dispose()


def lock_url(staging_server_url: str) -> sa.URL:
    """The staging server's URL for its maintenance database: same server, user and options, one database
    for all deid processes (Backend.maintenance_database; none: the URL names no database)."""
    return normalise_url(staging_server_url).set(database=backend_of(staging_server_url).maintenance_database)


@contextmanager
def _connect(eng: sa.Engine, database: str | None) -> Iterator[sa.Connection]:
    try:
        with eng.connect() as c:
            yield c
    except BadConnectionSettings:
        raise  # the staging connection's own settings, wherever it would connect
    except ConfigError as refused:
        # the server answered but will not let deid into that database (missing, or CONNECT revoked)
        raise ConfigError(
            f"deid takes its run lock in the database '{database}' of the staging server, whatever "
            f"database the staging connection names, so that runs reaching one server by different URLs "
            f"still exclude each other; it cannot connect there ({refused}). Create that database or grant "
            "deid's role CONNECT on it"
        ) from None


def check_holder(holder: Holder | None, mine: Holder, copy: str, *, dropping: bool = False) -> None:
    """Busy unless this run (`mine`) may work on `copy`, held by `holder`: another run holds it, as it would
    hold the session lock, so the refusal is transient (exit code 4, Airflow retries) where a copy a step
    may not take for what was done to it (steps/state.py Refused) is not.

    A copy nobody holds, or held by a CLI command (one process: it held the session lock, which this
    caller now holds, so it is over), is anyone's. An Airflow run's copy is that run's; `dropping` (a snapshot
    clearing leftovers) may also take over the copy of an earlier run of the same DAG, which max_active_runs=1
    guarantees is over.
    """
    if holder is None or holder.via == "cli":
        return
    same_dag = mine.via == "airflow" and mine.dag_id == holder.dag_id
    if same_dag and (mine.run_id == holder.run_id or dropping):
        return
    raise Busy(
        f"{copy} belongs to {holder.describe()}, which refreshes this staging copy right now. Wait for it "
        "to finish; if that run is over without dropping its copy (see Airflow), `deid cleanup DATABASE "
        "--force` drops it"
    )
