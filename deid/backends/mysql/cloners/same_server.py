"""Clone inside one server: production and the staging copies share a MySQL/MariaDB server, so the server
copies the rows itself (`INSERT INTO work.t SELECT ... FROM production.t`), and no row passes through a
client or a pipe.

Like PostgreSQL's template cloner, it is meant for a replica or a restored snapshot on the staging server,
not for a busy primary (use clone: dump there), because of how InnoDB reads for an INSERT ... SELECT: under
REPEATABLE READ it is a *locking* read of the newest rows, not a read of the transaction's snapshot, so
`START TRANSACTION WITH CONSISTENT SNAPSHOT` does not make the copies of several tables agree (measured:
a row committed after the snapshot was copied, and the writer was blocked until the copy committed). The
copy is made consistent instead by `LOCK TABLES` on production's tables (READ: others may read, writers wait
until the copy ends; no deadlock can abort them) for as long as the rows are copied; the run record says
for how long (`clone_locked_seconds`).

The steps:
1. each table is created in the working copy from production's own definition (SHOW CREATE TABLE, as a
   dump does, rather than CREATE TABLE ... LIKE, which leaves out foreign keys), under the relaxed sql_mode
   a dump runs with (NO_AUTO_VALUE_ON_ZERO: a row with id 0 keeps it), foreign key checks off;
2. production's tables are locked, the definitions are read again and compared (a DDL in between fails
   the clone, which may be retried), and every table's rows are copied, the generated columns (VIRTUAL and
   STORED, whose values the server computes) and a system-versioned table's period columns left out;
3. once the locks are released: AUTO_INCREMENT set to production's counter, then stored routines, views
   (in the form that names production's own tables unqualified, so they read the working copy's),
   triggers (after the rows, so none fires on the copy; any reference that spells out production's name
   re-pointed at the working copy) and events (disabled: production's scheduled jobs).

Production is only read, but not through a read-only session: the statements that read it also write the
working copy. The staging role needs SELECT, LOCK TABLES, SHOW VIEW, TRIGGER and EVENT on the production
database, and nothing that writes there.
"""

from __future__ import annotations

import re
import time

import sqlalchemy as sa

from deid import rawsql
from deid.backends.mysql import copies
from deid.backends.mysql.cloners import objects
from deid.backends.mysql.cloners.dump import read_source
from deid.backends.mysql.quoting import qualified, quote_identifier
from deid.cloners import Cloner, create_working_copy
from deid.db import connect_readonly, safe_url
from deid.errors import ConfigError, TerminalError, TransientError
from deid.steps.context import RunContext
from deid.steps.copies import admin

# what a dump runs its statements under: no strictness that would refuse production's own rows (a zero
# date production accepted), and an explicit 0 in an AUTO_INCREMENT column kept as 0
COPY_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
_SERVER = "SELECT @@hostname, @@port, @@datadir"
_COUNTER = re.compile(r" AUTO_INCREMENT=(\d+)")
# columns the server fills itself: generated ones, and the period of a MariaDB system-versioned table
_NOT_INSERTED = re.compile(r"\b(?:VIRTUAL|STORED|PERSISTENT) GENERATED\b|\bROW (?:START|END)\b", re.I)


class SameServerCloner(Cloner):
    name = "same_server"

    def clone(self, ctx: RunContext) -> None:
        source, work = ctx.production_database, ctx.work_name
        production = connect_readonly(ctx.production_url, poolclass=sa.pool.NullPool)
        try:
            with production.connect() as p, admin(ctx.staging_server_url) as c:
                _check_same_server(p, c, ctx)
        finally:
            production.dispose()
        with admin(ctx.staging_server_url) as c:
            origin = read_source(c, source)
            kinds = _table_kinds(c, source)
            sequences = sorted(t for t, kind in kinds.items() if kind == "SEQUENCE")
            if sequences:
                raise TerminalError(
                    f"clone: same_server cannot copy MariaDB sequences ({', '.join(sequences)}) with their "
                    "values; use clone: dump"
                )
            copies.check_roles(c, tuple(getattr(ctx.database, "staging_roles", ()) or ()))
            create_working_copy(c, work, copies.database_options(*origin.defaults))
            locked = copy_database(c, source, work)
        ctx.record["clone_method_detail"] = "CREATE TABLE + INSERT ... SELECT under LOCK TABLES ... READ"
        ctx.record["clone_locked_seconds"] = round(locked, 3)


def _check_same_server(production: sa.Connection, staging: sa.Connection, ctx: RunContext) -> None:
    """ConfigError unless the production URL and the staging server URL reach one server: same host name,
    port and data directory, and (when the staging role may see it) production's own session listed there."""
    there = tuple(rawsql.execute(production, _SERVER).one())
    session = rawsql.execute(production, "SELECT CONNECTION_ID()").scalar_one()
    here = tuple(rawsql.execute(staging, _SERVER).one())
    seen = staging.execute(
        sa.text("SELECT DB FROM information_schema.PROCESSLIST WHERE ID = :i"), {"i": session}
    ).first()
    database = seen[0].decode() if seen and isinstance(seen[0], bytes) else (seen[0] if seen else None)
    if here != there or (seen is not None and database != ctx.production_database):
        raise ConfigError(
            f"clone: same_server copies the production database inside its own server, so production "
            f"({safe_url(ctx.production_url)}) and the staging server ({safe_url(ctx.staging_server_url)}) "
            "must be the same MySQL/MariaDB server; they are not. Use clone: dump"
        )


def _table_kinds(c: sa.Connection, database: str) -> dict[str, str]:
    rows = c.execute(
        sa.text("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = :d"),
        {"d": database},
    )
    text = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
    return {text(name): text(kind) for name, kind in rows if text(kind) != "VIEW"}


def copy_database(c: sa.Connection, source: str, work: str) -> float:
    """Copy `source` into the empty database `work` on the same server; returns how long production's
    tables were locked, in seconds."""
    tables = objects.tables(c, source)
    definitions = {t: _definition(c, source, t) for t in tables}
    saved = rawsql.execute(c, "SELECT @@SESSION.sql_mode, @@SESSION.foreign_key_checks").one()
    c.execute(sa.text("SET SESSION sql_mode = :m"), {"m": COPY_SQL_MODE})
    rawsql.execute(c, "SET SESSION foreign_key_checks = 0")
    try:
        with objects.using(c, work):
            for definition in definitions.values():
                rawsql.execute(c, definition)
        locked, counters = _copy_rows(c, source, work, tables, definitions)
        for table, counter in counters.items():
            rawsql.execute(c, f"ALTER TABLE {qualified(work, table)} AUTO_INCREMENT = {counter}")
    finally:
        c.execute(sa.text("SET SESSION sql_mode = :m"), {"m": saved[0]})
        rawsql.execute(c, f"SET SESSION foreign_key_checks = {int(saved[1])}")
    names = objects.object_names(c, source)
    failed = objects.create_all(c, objects.routines(c, source), work, source, names)
    failed += objects.create_all(c, objects.views(c, source), work, source, names)
    failed += objects.create_all(c, objects.triggers(c, source), work, source, names)
    failed += objects.create_all(c, objects.events(c, source), work, source, names)
    objects.disable_events(c, work)
    if failed:
        raise TerminalError(f"clone: same_server could not create in {work}: {'; '.join(failed)}")
    return locked


def _definition(c: sa.Connection, database: str, table: str) -> str:
    shown = rawsql.execute(c, f"SHOW CREATE TABLE {qualified(database, table)}").one()
    text = shown[1]
    return text.decode() if isinstance(text, bytes) else text


def _copy_rows(
    c: sa.Connection, source: str, work: str, tables: list[str], definitions: dict[str, str]
) -> tuple[float, dict[str, int]]:
    """Every table's rows, under LOCK TABLES (production READ, the copy WRITE); the seconds production was
    locked and production's AUTO_INCREMENT counters as they were under the lock."""
    if not tables:
        return 0.0, {}
    locks = [f"{qualified(source, t)} READ" for t in tables]
    locks += [f"{qualified(work, t)} WRITE" for t in tables]
    columns = _insertable_columns(c, source)
    started = time.monotonic()
    rawsql.execute(c, f"LOCK TABLES {', '.join(locks)}")
    try:
        now = {t: _definition(c, source, t) for t in tables}
        changed = sorted(t for t in tables if _shape(now[t]) != _shape(definitions[t]))
        added = set(objects.tables(c, source)) - set(tables)
        if changed or added:
            raise TransientError(
                f"clone: production's {source} changed while it was being copied "
                f"({', '.join(sorted({*changed, *added}))}); the run may be retried"
            )
        for table in tables:
            listed = ", ".join(quote_identifier(name) for name in columns[table])
            rawsql.execute(
                c,
                f"INSERT INTO {qualified(work, table)} ({listed}) "
                f"SELECT {listed} FROM {qualified(source, table)}",
            )
        counters = {t: int(m[1]) for t in tables if (m := _COUNTER.search(now[t]))}
    finally:
        rawsql.execute(c, "UNLOCK TABLES")
    return time.monotonic() - started, counters


def _shape(definition: str) -> str:
    return _COUNTER.sub("", definition)


def _insertable_columns(c: sa.Connection, database: str) -> dict[str, list[str]]:
    rows = c.execute(
        sa.text(
            "SELECT TABLE_NAME, COLUMN_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :d "
            "ORDER BY TABLE_NAME, ORDINAL_POSITION"
        ),
        {"d": database},
    )
    found: dict[str, list[str]] = {}
    for table, column, extra in rows:
        text = [v.decode() if isinstance(v, bytes) else v for v in (table, column, extra)]
        if not _NOT_INSERTED.search(text[2] or ""):
            found.setdefault(text[0], []).append(text[1])
    return found
