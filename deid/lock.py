"""One run at a time per staging name: a PostgreSQL session advisory lock on the staging server.

The lock lives in a dedicated connection to the staging server's maintenance database, held for the whole
run. A session lock dies with its session, so a run killed with SIGKILL, or a lost machine, releases it
without any stale-lock file to clean up. Advisory locks are per database: every run must lock in the same
one, which is why the maintenance database (the staging server URL) is used, never a copy.

The lock is exclusive, except for the scrub of single tables in Airflow: those mapped tasks of one run work
on one working copy side by side, so they share it (`shared=True`), which still shuts out any other run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import sqlalchemy as sa

from deid.db import engine
from deid.errors import TerminalError, TransientError

APPLICATION_NAME = "deid run"


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
        staging_server_url,
        poolclass=sa.pool.NullPool,
        isolation_level="AUTOCOMMIT",
        # Names the holder in pg_stat_activity, for the message another run shows.
        connect_args={"application_name": f"{APPLICATION_NAME} {staging_name}"[:63]},
    )
    try:
        with eng.connect() as c:
            row = c.execute(
                sa.text(f"SELECT pg_try_advisory_lock{kind}(:k), pg_backend_pid()"), {"k": key}
            ).one()
            if not row[0]:
                raise TerminalError(f"another deid run for {staging_name} is in progress ({_holder(c, key)})")
            try:
                yield RunLock(staging_name, key, row[1])
            finally:
                # If the session is gone, its lock went with it.
                with suppress(sa.exc.SQLAlchemyError, TransientError):
                    c.execute(sa.text(f"SELECT pg_advisory_unlock{kind}(:k)"), {"k": key})
    finally:
        eng.dispose()


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
