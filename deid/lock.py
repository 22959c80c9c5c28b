"""One run at a time per staging name and server: a PostgreSQL session advisory lock, and the run's holder.

**The session lock.** A dedicated connection holds `pg_try_advisory_lock(key of the staging name)` for as
long as a command or an Airflow task works on the staging name's copies. A session lock dies with its
session, so a process killed with SIGKILL, or a lost machine, releases it without any stale-lock file to
clean up. Advisory locks belong to one database, so every deid process must lock in the same one, whatever
database its staging URL names (two URLs to one server, one naming `postgres` and one `staging_admin`, must
still exclude each other): the lock is always taken in LOCK_DATABASE, the database every PostgreSQL
cluster is created with. The lock is exclusive, except for the scrub of single tables in Airflow: those
mapped tasks of one run work on one working copy side by side, so they share it (`shared=True`), which
still shuts out any other command.

**The holder.** An Airflow run is several processes, one per task, and between two tasks no session holds
the lock. So a run also writes itself on its working copy as its holder (steps/state.py Holder), from the
snapshot on; `check_holder` is what every step, `rollback` and `cleanup` ask before touching copies: an
Airflow run's copy belongs to that run until it ends (its cleanup task drops the copy), and a CLI command
met meanwhile is refused, naming the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import sqlalchemy as sa

from deid.db import engine, normalise_url
from deid.errors import ConfigError, TransientError
from deid.steps.state import Holder, Refused

APPLICATION_NAME = "deid run"
LOCK_DATABASE = "postgres"


class Busy(TransientError):
    """Another deid command or run holds the staging name: retrying later may succeed (exit code 4)."""


@dataclass(frozen=True)
class RunLock:
    staging_name: str
    key: int
    pid: int  # backend pid of the connection holding it


def lock_key(staging_name: str) -> int:
    """A signed 64-bit key (the type pg_advisory_lock takes), stable across processes and versions."""
    digest = hashlib.sha256(f"deid:{staging_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def run_lock(staging_server_url: str, staging_name: str, shared: bool = False) -> Iterator[RunLock]:
    """Hold the run lock of `staging_name` for the block; TerminalError naming the holder when it is taken.

    `shared`: several holders at once, all shut out by an exclusive holder (and shutting it out).
    """
    key = lock_key(staging_name)
    kind = "_shared" if shared else ""
    eng = engine(
        lock_url(staging_server_url),
        poolclass=sa.pool.NullPool,
        isolation_level="AUTOCOMMIT",
        # Names the holder in pg_stat_activity, for the message another run shows.
        connect_args={"application_name": f"{APPLICATION_NAME} {staging_name}"[:63]},
    )
    try:
        with _connect(eng) as c:
            row = c.execute(
                sa.text(f"SELECT pg_try_advisory_lock{kind}(:k), pg_backend_pid()"), {"k": key}
            ).one()
            if not row[0]:
                raise Busy(f"another deid run for {staging_name} is in progress ({_holder(c, key)})")
            try:
                yield RunLock(staging_name, key, row[1])
            finally:
                # If the session is gone, its lock went with it.
                with suppress(sa.exc.SQLAlchemyError, TransientError):
                    c.execute(sa.text(f"SELECT pg_advisory_unlock{kind}(:k)"), {"k": key})
    finally:
        eng.dispose()


def lock_url(staging_server_url: str) -> sa.URL:
    """The staging server's URL for LOCK_DATABASE: same server, user and options, one database for all."""
    return normalise_url(staging_server_url).set(database=LOCK_DATABASE)


@contextmanager
def _connect(eng: sa.Engine) -> Iterator[sa.Connection]:
    try:
        with eng.connect() as c:
            yield c
    except ConfigError as refused:
        # the server answered but will not let deid into LOCK_DATABASE (missing, or CONNECT revoked)
        raise ConfigError(
            f"deid takes its run lock in the database '{LOCK_DATABASE}' of the staging server, whatever "
            f"database the staging connection names, so that runs reaching one server by different URLs "
            f"still exclude each other; it cannot connect there ({refused}). Create that database or grant "
            "deid's role CONNECT on it"
        ) from None


def check_holder(holder: Holder | None, mine: Holder, copy: str, *, dropping: bool = False) -> None:
    """TerminalError unless this run (`mine`) may work on `copy`, held by `holder`.

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
    raise Refused(
        f"{copy} belongs to {holder.describe()}, which refreshes this staging copy right now. Wait for it "
        "to finish; if that run is over without dropping its copy (see Airflow), `deid cleanup DATABASE "
        "--force` drops it"
    )


def _holder(c: sa.Connection, key: int) -> str:
    """ "backend pid N since <time>" for the session holding the lock (a bigint key is classid:objid)."""
    row = c.execute(
        sa.text(
            "SELECT l.pid, a.backend_start, a.client_addr, a.application_name FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
        ),
        {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
    ).first()
    if row is None:
        return "its holder has just finished: try again"
    pid, since, client, application = row
    text = f"backend pid {pid}"
    if since is not None:  # hidden from roles that may not see other roles' sessions
        text += f" since {since:%Y-%m-%d %H:%M:%S %Z}".rstrip()
    if client is not None:
        text += f", from {client}"
    if application:
        text += f", {application}"
    return text
