"""The run lock on PostgreSQL: a session advisory lock, which dies with its session (a SIGKILLed holder or a
lost machine leaves nothing to clean up). Advisory locks belong to one database, so every deid process locks
in the database every cluster is created with, `postgres` (Backend.maintenance_database)."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa


def lock_key(name: str) -> int:
    """A signed 64-bit key (the type pg_advisory_lock takes), stable across processes and versions."""
    digest = hashlib.sha256(f"deid:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def try_lock(c: sa.Connection, name: str, shared: bool) -> int | None:
    """The holding session's backend pid, or None when the lock is taken."""
    kind = "_shared" if shared else ""
    taken, pid = c.execute(
        sa.text(f"SELECT pg_try_advisory_lock{kind}(:k), pg_backend_pid()"), {"k": lock_key(name)}
    ).one()
    return pid if taken else None


def unlock(c: sa.Connection, name: str, shared: bool) -> None:
    kind = "_shared" if shared else ""
    c.execute(sa.text(f"SELECT pg_advisory_unlock{kind}(:k)"), {"k": lock_key(name)})


def session_name_args(text: str) -> dict[str, str]:
    """Connect arguments showing `text` beside the session in pg_stat_activity (cut to the 63 bytes kept)."""
    return {"application_name": text.encode()[:63].decode(errors="ignore")}


def holder(c: sa.Connection, name: str) -> str:
    """ "backend pid N since <time>" for the session holding the lock (a bigint key is classid:objid)."""
    key = lock_key(name)
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
