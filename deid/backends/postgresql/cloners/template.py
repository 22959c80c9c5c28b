"""Clone by template: the staging server copies the production database's files itself.

The fastest strategy, and the only one that never moves rows through a client, but PostgreSQL requires
that nobody else be connected to the template while it is copied. It is therefore meant for a replica or a
restored snapshot that lives on the staging server, not for a busy primary (use clone: dump there).

STRATEGY FILE_COPY (PostgreSQL 15+; before 15 it was the only strategy) copies files instead of writing
every block through the WAL; from version 18 the cloner asks for file_copy_method = clone, a reflink copy
on a filesystem that has them (see the backend's cow module). The run record says which it was, and, when
the server's files are on this host, the space the copy took and whether its blocks are shared.
"""

from __future__ import annotations

import re
import time

import sqlalchemy as sa

from deid.backends.postgresql import cow
from deid.backends.postgresql.quoting import quote_ident
from deid.cloners import Cloner, create_working_copy
from deid.db import backend_of, connect_readonly, safe_url
from deid.errors import ConfigError, TerminalError
from deid.steps.context import RunContext
from deid.steps.copies import admin

# Where a database lives: its server's start time (microseconds) and its oid on that server. Two servers
# never agree on both, whatever host names the URLs use, and neither needs a privilege to read.
_FINGERPRINT = "SELECT pg_postmaster_start_time(), (SELECT oid FROM pg_database WHERE datname = {})"
OBJECT_IN_USE = "55006"


class TemplateCloner(Cloner):
    name = "template"

    def clone(self, ctx: RunContext) -> None:
        backend = backend_of(ctx.staging_server_url)
        if not backend.capabilities.instant_clone:
            raise ConfigError(
                f"clone: template needs a server that copies a database itself, which {backend.name} "
                "does not; use clone: dump"
            )
        source = ctx.production_database
        production = connect_readonly(ctx.production_url, poolclass=sa.pool.NullPool)
        try:
            with production.connect() as c:
                there = tuple(c.exec_driver_sql(_FINGERPRINT.format("current_database()")).one())
        finally:
            production.dispose()  # our own session would count as "another user" of the template
        with admin(ctx.staging_server_url) as c:
            here = tuple(c.execute(sa.text(_FINGERPRINT.format(":d")), {"d": source}).one())
            if here != there:
                raise ConfigError(
                    f"clone: template copies the production database inside its own server, so production "
                    f"({safe_url(ctx.production_url)}) and the staging server "
                    f"({safe_url(ctx.staging_server_url)}) must be the same PostgreSQL server; they are not. "
                    "Point production at a replica or snapshot on the staging server, or use clone: dump"
                )
            others = _settled_sessions(c, source)
            if others:
                raise busy(others, source)
            strategy, method = cow.file_copy(c)
            disk = cow.watch_disk(c, source)
            try:
                create_working_copy(c, ctx.work_name, f"TEMPLATE {quote_ident(source)}{strategy}")
            except sa.exc.OperationalError as e:
                # Someone connected between the check and the copy.
                if getattr(e.orig, "sqlstate", None) != OBJECT_IN_USE:
                    raise
                raise busy(_sessions(e.orig), source) from None
            ctx.record["clone_method_detail"] = method
            ctx.record.update(disk.finish(c, ctx.work_name))


def _settled_sessions(c: sa.Connection, source: str, wait: float = 1.0) -> int:
    """Other sessions on `source` once those that are closing have gone: a session whose client has just
    disconnected (deid's own read of production a moment ago) stays in pg_stat_activity until its process
    exits, a few milliseconds later. A session still there after `wait` seconds is a user's."""
    deadline = time.monotonic() + wait
    while (others := _other_sessions(c, source)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return others


def _other_sessions(c: sa.Connection, source: str) -> int:
    """Client sessions on `source`. Autovacuum workers are not counted: CREATE DATABASE stops them itself."""
    return c.execute(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = :d AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ),
        {"d": source},
    ).scalar_one()


def busy(sessions: int | None, source: str) -> TerminalError:
    count = f"{sessions} other session(s) are" if sessions else "other sessions are"
    return TerminalError(
        f"{count} connected to {source}; the template cloner is meant for a replica or snapshot database, "
        "not a busy primary; use clone: dump"
    )


def _sessions(error: BaseException | None) -> int | None:
    """N from PostgreSQL's DETAIL "There are N other sessions using the database." """
    detail = getattr(getattr(error, "diag", None), "message_detail", None) or ""
    found = re.search(r"(\d+) other session", detail)
    return int(found[1]) if found else None
