"""The copies deid keeps on a MySQL or MariaDB staging server. Each copy is a database (a schema).

**The note.** MySQL 8 has no database comment and MariaDB's holds 1024 characters, so a copy's note (deid's
facts, as JSON: deid.steps.copies) is the one row of a table inside the copy, `_deid_note`. Being a table,
it moves with the copy's other tables in the publish's RENAME TABLE: the note and the rows it describes
change names in the same statement. It holds deid's facts only (the state model refuses anything else), and
staging users can read it in the published copy.

**Access.** MySQL has no per-database switch like PostgreSQL's ALLOW_CONNECTIONS: who may read a database is
decided by grants, which belong to a database *name* (mysql.db), not to a database, and which DROP DATABASE
leaves in place. So:

- `set_allow_connections` does nothing. A working copy is born under a name (`S__work_YYYYMMDD`) that no
  grant deid gives ever names, and `create_closed` refuses to create it when any grant but deid's own would
  reach it: a database-level grant whose pattern matches the name (`learners%`.*, `learners_staging_`.*:
  `_` and `%` are wildcards in grants) or a table grant left on that very name. Privileges held ON *.*
  reach every database and cannot be checked per name: staging users must hold none.
- `grant_connect` grants table privileges ON `S`.* (the staging name) to `staging_roles`. The grant stays
  with the name across every later publish and rollback, so the published copy's readers never change
  with the copy. With no roles, deid grants nothing: the grants an administrator gave on the staging name
  decide (MySQL has no PUBLIC to grant to).

**Renames.** A database cannot be renamed; `rename` moves all the tables of every copy involved in ONE
`RENAME TABLE` statement, which MySQL runs atomically: a staging user's query sees the old tables or the
new ones under the staging name, never none. MySQL DDL is not transactional, so `transaction` is a plain
context manager; what cannot ride in the one statement is done around it (see `rename`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa

from deid import rawsql
from deid.backends.mysql.cloners import objects
from deid.backends.mysql.cloners.objects import Definition
from deid.backends.mysql.quoting import qualified, quote_identifier, quote_literal
from deid.errors import ConfigError, TerminalError

NOTE_TABLE = "_deid_note"
# Table names deid makes in a MySQL copy begin so (the note, the scrub's ledger): production may have none.
RESERVED_PREFIX = "_deid_"
# The privileges `grant_connect` gives on the staging name: what an application reading and writing its
# rows needs, not DDL (the staging copy's schema is the one deid published).
STAGING_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, EXECUTE, SHOW VIEW, CREATE TEMPORARY TABLES, LOCK TABLES"
)
# How long the publish's RENAME TABLE waits for a session's open transaction on one of its tables before it
# fails (and changes nothing): while it waits, every new query on those tables waits behind it.
RENAME_LOCK_WAIT_SECONDS = 30
_NO_SUCH_TABLE, _NO_SUCH_DATABASE = 1146, 1049
_UNKNOWN_THREAD, _NOT_OWNER = 1094, 1095
_DENIED = frozenset({1142, 1044, 1045})


def _number(error: sa.exc.DBAPIError) -> int | None:
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _text(value):
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _schemata(c: sa.Connection) -> dict[str, tuple[str, str]]:
    """Every database: its default character set and collation, by exact name (information_schema compares
    names without case, so the match is done here)."""
    rows = c.execute(
        sa.text(
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
            "FROM information_schema.SCHEMATA"
        )
    )
    return {_text(n): (_text(cs), _text(co)) for n, cs, co in rows}


def exists(c: sa.Connection, database: str) -> bool:
    return database in _schemata(c)


def databases(c: sa.Connection, name: str, prefix: str) -> list[tuple[str, bool, str | None]]:
    """(name, True, note) of `name` and of every database whose name starts with `prefix`, matched in Python:
    LIKE's `_` is a wildcard. True: MySQL has no per-database switch (set_allow_connections)."""
    found = [n for n in sorted(_schemata(c)) if n == name or n.startswith(prefix)]
    return [(n, True, read_note(c, n)) for n in found]


def read_note(c: sa.Connection, database: str) -> str | None:
    try:
        table = f"{qualified(database, NOTE_TABLE)}"
        note = rawsql.execute(c, f"SELECT note FROM {table} WHERE id = 1").scalar()
    except sa.exc.DBAPIError as error:
        if _number(error) in (_NO_SUCH_TABLE, _NO_SUCH_DATABASE):
            return None
        raise
    return _text(note)


def write_note(c: sa.Connection, database: str, text: str) -> None:
    """Replace the copy's note (the table is made on the first write; it commits on its own)."""
    table = f"{qualified(database, NOTE_TABLE)}"
    rawsql.execute(
        c,
        f"CREATE TABLE IF NOT EXISTS {table} (id tinyint NOT NULL PRIMARY KEY, note longtext NOT NULL) "
        "ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin "
        "COMMENT = 'deid: the facts of this copy (deid status reads them)'",
    )
    c.execute(sa.text(f"REPLACE INTO {table} (id, note) VALUES (1, :t)"), {"t": text})


def set_allow_connections(c: sa.Connection, database: str, allow: bool) -> None:
    """Nothing: MySQL cannot close one database to connections. A working copy is unreachable because no
    grant but deid's reaches its name (checked by create_closed); the staging name stays granted."""


def terminate_sessions(c: sa.Connection, database: str, wait: float = 5.0) -> int:
    """KILL every other session whose current database is `database` (not deid's own), waiting up to `wait`
    seconds for them to go; returns how many. Seeing other users' sessions needs PROCESS; ending them
    CONNECTION ADMIN (MariaDB) / CONNECTION_ADMIN (MySQL 8) or SUPER."""
    ids = _sessions(c, database)
    for session in ids:
        try:
            rawsql.execute(c, f"KILL CONNECTION {int(session)}")
        except sa.exc.DBAPIError as error:
            if _number(error) == _UNKNOWN_THREAD:
                continue  # it ended by itself meanwhile
            if _number(error) == _NOT_OWNER:
                raise TerminalError(
                    f"deid's role may not end the sessions connected to {database}: grant it CONNECTION "
                    "ADMIN (MariaDB), CONNECTION_ADMIN (MySQL 8) or SUPER"
                ) from None
            raise
    deadline = time.monotonic() + wait
    while ids and set(_sessions(c, database)) & set(ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(ids)


def _sessions(c: sa.Connection, database: str) -> list[int]:
    rows = c.execute(
        sa.text(
            "SELECT ID, DB FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
            "AND COMMAND NOT IN ('Daemon', 'Killed') AND DB = :d"
        ),
        {"d": database},
    )
    return [int(session) for session, db in rows if _text(db) == database]


def drop(c: sa.Connection, database: str) -> None:
    rawsql.execute(c, f"DROP DATABASE IF EXISTS {quote_identifier(database)}")


def database_options(charset: str, collation: str) -> str:
    """The `options` MySQL's cloners pass to create_working_copy: the source's character set and collation
    (read from information_schema, checked to be plain names before they go into the statement)."""
    for value in (charset, collation):
        if not value or not value.replace("_", "").isalnum():
            raise TerminalError(f"unexpected character set or collation name {value!r} of a database")
    return f"CHARACTER SET {charset} COLLATE {collation}"


def create_closed(c: sa.Connection, name: str, options: str) -> None:
    """CREATE DATABASE `name` `options` (MySQL's cloners pass `database_options`), after checking that no
    grant but deid's own reaches the name: then only deid's role (and accounts holding privileges ON *.*)
    can read the unscrubbed rows from the first moment."""
    check_grants(c, name)
    rawsql.execute(c, f"CREATE DATABASE {quote_identifier(name)} {options}")


def check_grants(c: sa.Connection, name: str) -> None:
    """TerminalError naming every grant other than deid's own that reaches database `name`."""
    user, host = _current_user(c)
    try:
        found = c.execute(
            sa.text(
                "SELECT User, Host, Db, 'database' FROM mysql.db WHERE :n LIKE Db "
                "UNION ALL SELECT User, Host, Db, 'table' FROM mysql.tables_priv WHERE Db = BINARY :n"
            ),
            {"n": name},
        ).all()
    except sa.exc.DBAPIError as error:
        if _number(error) not in _DENIED:
            raise
        raise TerminalError(
            f"deid cannot check who may read {name}: MySQL grants by name pattern, so before it creates a "
            "working copy deid reads mysql.db and mysql.tables_priv. Grant its staging role SELECT on both "
            "(GRANT SELECT ON mysql.db TO ...; GRANT SELECT ON mysql.tables_priv TO ...)"
        ) from None
    others = [
        (_text(u), _text(h), _text(db), kind)
        for u, h, db, kind in found
        if (_text(u), _text(h)) != (user, host)
    ]
    if others:
        shown = "; ".join(
            f"{kind} grant ON {quote_identifier(db)}.* TO '{u}'@'{h}'" for u, h, db, kind in others
        )
        raise TerminalError(
            f"{len(others)} grant(s) would let other accounts read the working copy {name} before it is "
            f"scrubbed: {shown}. In MySQL grants match database names as LIKE patterns (`_` and `%` are "
            "wildcards) and survive DROP DATABASE. Grant staging users the staging name alone, with `_` "
            "escaped (GRANT ... ON `learners\\_staging`.* ...), or staging_roles in deid.yaml, and revoke "
            "these (REVOKE ALL ON `<pattern>`.* FROM ...)"
        )


def _current_user(c: sa.Connection) -> tuple[str, str]:
    account = _text(rawsql.execute(c, "SELECT CURRENT_USER()").scalar()) or ""
    user, _, host = account.rpartition("@")
    return user, host


def check_roles(c: sa.Connection, roles: tuple[str, ...]) -> None:
    """ConfigError naming each of `roles` the server does not know, before anything is cloned: a typo
    found at publish would come after the rename (see grant_connect)."""
    if not roles:
        return
    try:
        known = {(_text(u), _text(h)) for u, h in c.execute(sa.text("SELECT User, Host FROM mysql.user"))}
    except sa.exc.DBAPIError as error:
        if _number(error) not in _DENIED:
            raise
        raise TerminalError(
            "deid cannot check staging_roles: grant its staging role SELECT ON mysql.user"
        ) from None
    missing = []
    for role in roles:
        user, host = _account(role)
        if (user, host) not in known and not (host == "%" and (user, "") in known):  # MariaDB's roles
            missing.append(role)
    if missing:
        raise ConfigError(
            f"staging_roles names account(s) the staging server does not have: {', '.join(missing)}. "
            "Write an account as name (name@'%', or a MariaDB role) or name@host, and create it first"
        )


def _account(role: str) -> tuple[str, str]:
    user, at, host = role.rpartition("@")
    return (user, host) if at and user else (role, "%")


def _grantee(role: str) -> str:
    user, host = _account(role)
    return quote_literal(user) if "@" not in role else f"{quote_literal(user)}@{quote_literal(host)}"


def grant_connect(c: sa.Connection, database: str, roles: tuple[str, ...]) -> None:
    """GRANT the table privileges of STAGING_PRIVILEGES ON `database`.* to `roles`; nothing when there are
    none (MySQL has no PUBLIC: the grants already on the name decide)."""
    if not roles:
        return
    grantees = ", ".join(_grantee(role) for role in roles)
    rawsql.execute(c, f"GRANT {STAGING_PRIVILEGES} ON {quote_identifier(database)}.* TO {grantees}")


@contextmanager
def transaction(c: sa.Connection) -> Iterator[None]:
    """Nothing around the block: MySQL commits each DDL statement on its own, so no transaction could hold
    the swap. The swap is atomic because `rename` is one statement; the notes written after it are not part
    of it (Capabilities.transactional_ddl is False)."""
    yield


# --- the swap -------------------------------------------------------------------------------------------


@dataclass
class _Origin:
    """A database whose content moves, and everything a table rename does not carry along."""

    name: str
    destination: str
    defaults: tuple[str, str]
    tables: list[str]
    names: set[str]
    triggers: list[Definition] = field(default_factory=list)
    views: list[Definition] = field(default_factory=list)
    routines: list[Definition] = field(default_factory=list)
    events: list[Definition] = field(default_factory=list)


def rename(c: sa.Connection, renames: list[tuple[str, str]]) -> None:
    """Give copies new names, in order, as ONE `RENAME TABLE` of all their tables (atomic in MySQL: a query
    on the staging name sees the old tables or the new ones, never a missing one).

    Around that statement: the target databases are created first (with their copy's character set), and
    the databases left empty are dropped after. A table with triggers cannot move to another database
    (error 1435) and a view cannot move at all, so the triggers of every moving table are dropped just
    before the statement and created again on the tables in their new database just after, and each copy's
    views are created in its new database (CREATE OR REPLACE, so a view under the staging name is replaced,
    never missing, and reads the new tables as soon as they are in). Stored routines and events are moved
    after the statement (dropped from the old database, created in the new one). So, for the moment of
    the swap (milliseconds: DROP TRIGGER, RENAME TABLE, CREATE TRIGGER), a staging user writing to the
    published copy fires no trigger, a view of the old copy reads the new tables, and a routine or event
    may be absent. If a table stays locked by another session's open transaction longer than
    RENAME_LOCK_WAIT_SECONDS (the swap ends the sessions on both copies first; one elsewhere can still
    hold a table), the rename fails, nothing has moved, and the triggers and views are created again
    where they were.
    """
    if not renames:
        return
    schemata = _schemata(c)
    origins = _origins(c, renames, schemata)
    if not origins:
        return
    for origin in origins:
        origin.triggers = objects.triggers(c, origin.name)
        origin.views = objects.views(c, origin.name)
        origin.routines = objects.routines(c, origin.name)
        origin.events = objects.events(c, origin.name)
    for target, (charset, collation) in _targets(renames, origins).items():
        options = database_options(charset, collation)
        if target in schemata:
            rawsql.execute(c, f"ALTER DATABASE {quote_identifier(target)} {options}")
        else:
            rawsql.execute(c, f"CREATE DATABASE {quote_identifier(target)} {options}")
    statement = _rename_statement(renames, origins)
    dropped: list[tuple[str, Definition]] = []
    try:
        with _bounded_lock_wait(c):  # failing here costs nothing: nothing has moved yet
            for origin in origins:
                for trigger in origin.triggers:
                    objects.drop(c, trigger, origin.name)
                    dropped.append((origin.name, trigger))
            for database, view in _colliding_views(origins):
                objects.drop(c, view, database)
                dropped.append((database, view))
            if statement:
                rawsql.execute(c, statement)
    except BaseException as error:
        for database, definition in dropped:  # back where they were, on tables that did not move
            lost = objects.create_all(c, [definition], database, database)
            if lost:
                error.add_note(f"and could not create again {'; '.join(lost)}: {definition.statement}")
        raise
    failed = _recreate(c, origins)
    emptied = ({o.name for o in origins} | {new for _, new in renames}) - {o.destination for o in origins}
    for database in sorted(emptied):
        drop(c, database)
    if failed:
        raise TerminalError(
            "the tables were renamed, but these objects could not be created again in their new database: "
            + "; ".join(failed)
            + ". Their definitions are the old database's (SHOW CREATE ...): create them by hand"
        )


def _origins(c: sa.Connection, renames: list[tuple[str, str]], schemata: dict) -> list[_Origin]:
    """The databases whose content moves, each with its final name; ConfigError for a rename onto a name
    whose own content stays (it would be overwritten), or from a name that holds nothing."""
    mentioned = [n for pair in renames for n in pair]
    content = {n: objects.tables(c, n) for n in dict.fromkeys(mentioned) if n in schemata}
    location = {n: n for n, tables in content.items() if tables or _has_objects(c, n)}
    for old, new in renames:
        movers = [x for x, at in location.items() if at == old]
        if not movers:
            raise TerminalError(f"cannot rename {old} to {new}: {old} holds no copy")
        staying = [x for x, at in location.items() if at == new and x not in movers]
        if staying:
            raise TerminalError(f"cannot rename {old} to {new}: {new} already holds a copy")
        for mover in movers:
            location[mover] = new
    return [
        _Origin(x, at, schemata[x], content[x], objects.object_names(c, x))
        for x, at in location.items()
        if at != x
    ]


def _has_objects(c: sa.Connection, database: str) -> bool:
    return bool(objects.object_names(c, database))


def _targets(renames: list[tuple[str, str]], origins: list[_Origin]) -> dict[str, tuple[str, str]]:
    """Every name tables move to, the last ones included (a parked name in between as well), with the
    character set and collation of the copy that lands there."""
    defaults = {o.name: o.defaults for o in origins}
    location = {o.name: o.name for o in origins}
    targets = {}
    for old, new in renames:
        for origin, at in list(location.items()):
            if at == old:
                location[origin] = new
                targets[new] = defaults[origin]
    return targets


def _rename_statement(renames: list[tuple[str, str]], origins: list[_Origin]) -> str:
    """`RENAME TABLE a.t TO b.t, ...` in the order of `renames` (a name freed earlier in the statement may
    be taken later in it: MySQL runs the pairs left to right)."""
    location = {o.name: o.name for o in origins}
    tables = {o.name: o.tables for o in origins}
    pairs = []
    for old, new in renames:
        for origin, at in list(location.items()):
            if at != old:
                continue
            pairs += [f"{qualified(old, t)} TO {qualified(new, t)}" for t in tables[origin]]
            location[origin] = new
    return f"RENAME TABLE {', '.join(pairs)}" if pairs else ""


def _colliding_views(origins: list[_Origin]) -> list[tuple[str, Definition]]:
    """Views in a target database named like a table that moves in (a copy whose migration turned a view
    into a table): the rename would fail on them, so they are dropped first (and put back on failure)."""
    found = []
    for origin in origins:
        incoming = set(origin.tables)
        for other in origins:
            if other.name == origin.destination:
                found += [(other.name, view) for view in other.views if view.name in incoming]
    return found


@contextmanager
def _bounded_lock_wait(c: sa.Connection) -> Iterator[None]:
    """Statements that wait for a table's metadata lock (DROP TRIGGER, RENAME TABLE) give up after
    RENAME_LOCK_WAIT_SECONDS, instead of the server's default (a day or a year) during which every new
    query on the table would queue behind them. After the rename, deid waits as long as it takes: the
    objects it re-creates must exist."""
    before = int(rawsql.execute(c, "SELECT @@SESSION.lock_wait_timeout").scalar())
    rawsql.execute(c, f"SET SESSION lock_wait_timeout = {int(RENAME_LOCK_WAIT_SECONDS)}")
    try:
        yield
    finally:
        rawsql.execute(c, f"SET SESSION lock_wait_timeout = {before}")


def _recreate(c: sa.Connection, origins: list[_Origin]) -> list[str]:
    """Triggers, routines, views and events of each moved copy, in its new database; what failed."""
    failed = []
    for origin in origins:
        objects.repoint_defaults(c, origin.destination, origin.name, origin.names)
        failed += objects.create_all(c, origin.triggers, origin.destination, origin.name, origin.names)
    for origin in origins:  # all dropped before any is created: a copy may take the name another leaves
        for routine in [*origin.routines, *origin.events]:
            objects.drop(c, routine, origin.name)
    for origin in origins:
        failed += objects.create_all(c, origin.routines, origin.destination, origin.name, origin.names)
    for origin in origins:
        failed += objects.create_all(c, origin.views, origin.destination, origin.name, origin.names)
        failed += objects.create_all(c, origin.events, origin.destination, origin.name, origin.names)
    for origin in origins:
        # a database that stays (the staging name) still holds the views of the copy that left it
        expected = {v.name for o in origins if o.destination == origin.name for v in o.views}
        if origin.name in {o.destination for o in origins}:
            for name in set(objects.view_names(c, origin.name)) - expected:
                rawsql.execute(c, f"DROP VIEW IF EXISTS {qualified(origin.name, name)}")
    return failed
