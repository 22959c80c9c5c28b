"""The databases deid keeps on a PostgreSQL staging server: each copy is a database, its facts are the
database's comment (COMMENT ON DATABASE, which travels with it through every rename), connections are
switched off per database (ALLOW_CONNECTIONS), and publish renames databases inside one transaction
(ALTER DATABASE ... RENAME is transactional), so staging users see the old copy or the new one, never none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql.quoting import quote_ident
from deid.errors import TerminalError

_INSUFFICIENT_PRIVILEGE = "42501"


def exists(c: sa.Connection, database: str) -> bool:
    found = c.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database})
    return found.scalar() is not None


def databases(c: sa.Connection, name: str, prefix: str) -> list[tuple[str, bool, str | None]]:
    """(name, accepting connections, note) of `name` and of every database whose name starts with `prefix`."""
    rows = c.execute(
        sa.text(
            "SELECT datname, datallowconn, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname = :s OR starts_with(datname, :prefix)"
        ),
        {"s": name, "prefix": prefix},
    ).all()
    return [(n, bool(allow), note) for n, allow, note in rows]


def read_note(c: sa.Connection, database: str) -> str | None:
    return c.execute(
        sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :d"),
        {"d": database},
    ).scalar()


def write_note(c: sa.Connection, database: str, text: str) -> None:
    # COMMENT takes no bind parameters; format() quotes both the name and the literal on the server.
    statement = c.execute(
        sa.text("SELECT format('COMMENT ON DATABASE %I IS %L', CAST(:d AS text), CAST(:t AS text))"),
        {"d": database, "t": text},
    ).scalar_one()
    rawsql.execute(c, statement)


def set_allow_connections(c: sa.Connection, database: str, allow: bool) -> None:
    rawsql.execute(c, f"ALTER DATABASE {quote_ident(database)} WITH ALLOW_CONNECTIONS {str(allow)}")


def terminate_sessions(c: sa.Connection, database: str) -> int:
    """End every other session on `database`, waiting up to 5 s for each to exit; returns how many."""
    try:
        ended = c.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE datname = :d AND pid <> pg_backend_pid()"
            ),
            {"d": database},
        ).scalar()
    except sa.exc.ProgrammingError as e:
        if getattr(e.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        raise TerminalError(
            f"deid's role may not end the sessions connected to {database}: grant it pg_signal_backend "
            "(or run deid as the databases' owner)"
        ) from None
    return int(ended or 0)


def drop(c: sa.Connection, database: str) -> None:
    # FORCE ends any session that slipped in between (PostgreSQL 13+).
    rawsql.execute(c, f"DROP DATABASE IF EXISTS {quote_ident(database)} WITH (FORCE)")


def create_closed(c: sa.Connection, name: str, options: str) -> None:
    """CREATE DATABASE `name` `options`, reachable only by deid's role.

    A new database grants CONNECT to PUBLIC, and the ACL is not copied from the template, so the copy is
    created with connections disabled and opened only once PUBLIC's CONNECT is revoked: there is no moment
    at which another role could read the unscrubbed rows.
    """
    db = quote_ident(name)
    rawsql.execute(c, f"CREATE DATABASE {db} {options} ALLOW_CONNECTIONS false")
    # Explicit, so the owner is deid's role even when the session runs under SET ROLE or a template owner.
    rawsql.execute(c, f"ALTER DATABASE {db} OWNER TO CURRENT_USER")
    rawsql.execute(c, f"REVOKE CONNECT ON DATABASE {db} FROM PUBLIC")
    set_allow_connections(c, name, True)


@contextmanager
def transaction(c: sa.Connection) -> Iterator[None]:
    """One explicit transaction on an autocommit connection: COMMIT on success, ROLLBACK on any error."""
    rawsql.execute(c, "BEGIN")
    try:
        yield
    except BaseException:
        # If the connection is gone, the server rolled back with it.
        with suppress(sa.exc.SQLAlchemyError):
            rawsql.execute(c, "ROLLBACK")
        raise
    rawsql.execute(c, "COMMIT")


def rename(c: sa.Connection, renames: list[tuple[str, str]]) -> None:
    """Rename databases, in order, in the caller's transaction (ALTER DATABASE ... RENAME is
    transactional)."""
    for old, new in renames:
        rawsql.execute(c, f"ALTER DATABASE {quote_ident(old)} RENAME TO {quote_ident(new)}")


def grant_connect(c: sa.Connection, database: str, roles: tuple[str, ...]) -> None:
    """Let `roles` (every role when empty) connect to `database`."""
    grantees = ", ".join(quote_ident(r) for r in roles) if roles else "PUBLIC"
    rawsql.execute(c, f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {grantees}")
