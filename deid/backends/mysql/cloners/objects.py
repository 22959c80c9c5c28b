"""The objects of a MySQL database that a table copy or a table rename does not carry: triggers, views,
stored routines and events. Each is read from the server's own definition (SHOW CREATE ..., with the
sql_mode and character sets it was created with), and created again in another database.

Why this is needed: `RENAME TABLE a.t TO b.t` refuses a table with triggers (error 1435, "Trigger in wrong
schema") and cannot move a view to another database, and neither moves routines or events; a copy made by
`CREATE TABLE` + `INSERT ... SELECT` has none of them either.

References to the old database must not survive the move: a trigger of a working copy that still wrote into
`production`.`audit` would write production from staging. A view is read in the server's compact form
(SHOW CREATE VIEW while the view's database is the current one prints its own tables unqualified), so it
needs no rewriting. Triggers, routines and events keep the text their author wrote, where the database may
be spelled out (`CREATE TRIGGER learners.t ... ON learners.users`); `repoint` rewrites those references: a
name followed by one of the database's own objects (`db.table`, `db.proc(`) or by two more parts
(`db.table.column`), never a column that shares the database's name (`learners.email`), never inside a
string or a comment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import sqlalchemy as sa

from deid import rawsql
from deid.backends.mysql.quoting import qualified, quote_identifier
from deid.errors import TerminalError

ROUTINE_KINDS = ("PROCEDURE", "FUNCTION")


@dataclass(frozen=True)
class Definition:
    """One object as the server prints it, with the session settings it was created under."""

    kind: str  # TRIGGER, VIEW, PROCEDURE, FUNCTION, EVENT
    name: str
    statement: str
    sql_mode: str | None
    charset: str
    collation: str
    table: str | None = None  # a trigger's table
    time_zone: str | None = None  # an event's

    @property
    def label(self) -> str:
        return f"{self.kind.lower()} {self.name}" + (f" on {self.table}" if self.table else "")


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _names(c: sa.Connection, query: str, database: str) -> list[tuple]:
    return [tuple(_text(v) for v in row) for row in c.execute(sa.text(query), {"d": database})]


def tables(c: sa.Connection, database: str) -> list[str]:
    """The tables RENAME TABLE moves: base tables, MariaDB's system-versioned tables and sequences."""
    rows = _names(
        c,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :d "
        "AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME",
        database,
    )
    return [name for (name,) in rows]


def view_names(c: sa.Connection, database: str) -> list[str]:
    rows = _names(
        c,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :d AND TABLE_TYPE = 'VIEW' "
        "ORDER BY TABLE_NAME",
        database,
    )
    return [name for (name,) in rows]


def object_names(c: sa.Connection, database: str) -> set[str]:
    """Every name a statement could qualify with the database: tables, views, routines, triggers, events."""
    names = set(tables(c, database)) | set(view_names(c, database))
    for query in (
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = :d",
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :d",
        "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :d",
    ):
        names |= {name for (name,) in _names(c, query, database)}
    return names


def triggers(c: sa.Connection, database: str) -> list[Definition]:
    """The database's triggers in the order they fire (per table, timing and event)."""
    rows = _names(
        c,
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :d "
        "ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
        database,
    )
    found = []
    for name, table in rows:
        shown = _show(c, f"SHOW CREATE TRIGGER {qualified(database, name)}")
        found.append(
            Definition(
                "TRIGGER",
                name,
                shown["SQL Original Statement"],
                shown["sql_mode"],
                shown["character_set_client"],
                shown["collation_connection"],
                table=table,
            )
        )
    return found


def views(c: sa.Connection, database: str) -> list[Definition]:
    """The database's views, in the compact form that names the database's own tables unqualified."""
    found = []
    with using(c, database):
        for name in view_names(c, database):
            shown = _show(c, f"SHOW CREATE VIEW {quote_identifier(name)}")
            found.append(
                Definition(
                    "VIEW",
                    name,
                    shown["Create View"],
                    None,
                    shown["character_set_client"],
                    shown["collation_connection"],
                )
            )
    return found


def routines(c: sa.Connection, database: str) -> list[Definition]:
    """Stored procedures and functions (MariaDB's Oracle-mode packages are not read: see docs)."""
    rows = _names(
        c,
        "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = :d "
        "AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
        database,
    )
    found = []
    for name, kind in rows:
        shown = _show(c, f"SHOW CREATE {kind} {qualified(database, name)}")
        found.append(
            Definition(
                kind,
                name,
                shown[f"Create {kind.title()}"],
                shown["sql_mode"],
                shown["character_set_client"],
                shown["collation_connection"],
            )
        )
    return found


def events(c: sa.Connection, database: str) -> list[Definition]:
    rows = _names(
        c,
        "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :d ORDER BY EVENT_NAME",
        database,
    )
    found = []
    for (name,) in rows:
        shown = _show(c, f"SHOW CREATE EVENT {qualified(database, name)}")
        found.append(
            Definition(
                "EVENT",
                name,
                shown["Create Event"],
                shown["sql_mode"],
                shown["character_set_client"],
                shown["collation_connection"],
                time_zone=shown["time_zone"],
            )
        )
    return found


def _show(c: sa.Connection, statement: str) -> dict:
    row = rawsql.execute(c, statement).mappings().one()
    return {key: _text(value) for key, value in row.items()}


def drop(c: sa.Connection, definition: Definition, database: str) -> None:
    kind = "TABLE" if definition.kind == "SEQUENCE" else definition.kind
    rawsql.execute(c, f"DROP {kind} IF EXISTS {qualified(database, definition.name)}")


def disable_events(c: sa.Connection, database: str) -> list[str]:
    """Keep a copy's events from running (they were production's jobs); returns their names."""
    query = "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :d"
    names = [name for (name,) in _names(c, query, database)]
    for name in names:
        rawsql.execute(c, f"ALTER EVENT {qualified(database, name)} DISABLE")
    return names


def settle(c: sa.Connection, database: str, source: str) -> list[str]:
    """After a clone of `source` into `database`: its events disabled (production's scheduled jobs must not
    run on an unscrubbed copy), then every trigger, routine and event that names `source` explicitly
    re-pointed at `database` (a table's triggers all created again, in their order). Returns the events."""
    disabled = disable_events(c, database)
    names = object_names(c, database)
    repoint_defaults(c, database, source, names)
    found = triggers(c, database)
    stale_tables = {t.table for t in found if repoint(t.statement, source, database, names) != t.statement}
    again = [t for t in found if t.table in stale_tables]
    for definition in [*routines(c, database), *events(c, database)]:
        if repoint(definition.statement, source, database, names) != definition.statement:
            again.append(definition)
    for definition in again:
        drop(c, definition, database)
    for definition in again:
        create(c, definition, database, source, names)
    return disabled


def repoint_defaults(c: sa.Connection, database: str, old: str, names: Iterable[str]) -> list[str]:
    """Column DEFAULTs and generation expressions of `database` that name objects of database `old` (MariaDB
    writes a sequence into a DEFAULT with its database: `nextval(`shop`.`invoice_seq`)`, and keeps that name
    through a dump, a copy and a RENAME TABLE), re-pointed at `database`: else an insert into the copy would
    draw from production's sequence, or from a database a publish has renamed away. Returns table.column of
    each one changed."""
    rows = c.execute(
        sa.text(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_DEFAULT, GENERATION_EXPRESSION "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :d ORDER BY TABLE_NAME, ORDINAL_POSITION"
        ),
        {"d": database},
    ).all()
    changed = []
    for table, column, default, generation in rows:
        default, generation = _text(default), _text(generation)
        if generation and repoint(generation, old, database, names) != generation:
            # a generated column's expression cannot be altered in place: a rare case, said plainly
            raise TerminalError(
                f"{table}.{column} is generated from an expression naming database {old}; deid cannot "
                "re-point it in a copy. Write the expression without the database name in production"
            )
        if not default:
            continue
        moved = repoint(default, old, database, names)
        if moved != default:
            rawsql.execute(
                c,
                f"ALTER TABLE {qualified(database, table)} ALTER COLUMN {quote_identifier(column)} "
                f"SET DEFAULT ({moved})",
            )
            changed.append(f"{table}.{column}")
    return changed


# --- creating again ------------------------------------------------------------------------------------

# each trigger is created after the one before it, so it lands last: an order clause naming a trigger not
# created yet would fail
_ORDER = re.compile(
    r"\bFOR\s+EACH\s+ROW\s+(?:FOLLOWS|PRECEDES)\s+(?:`(?:[^`]|``)+`|[\w$]+)(?:\s*\.\s*(?:`(?:[^`]|``)+`|[\w$]+))?",
    re.I,
)
_VIEW_HEAD = re.compile(r"^\s*CREATE\s+(?!OR\s+REPLACE\b)", re.I)


def create(
    c: sa.Connection,
    definition: Definition,
    database: str,
    source: str | None = None,
    names: Iterable[str] = (),
) -> None:
    """Create `definition` in `database` (views: CREATE OR REPLACE). `source`: the database it was read
    from, whose references (to its objects `names`) are rewritten to `database`."""
    statement = definition.statement
    if source is not None and source != database and definition.kind != "VIEW":
        statement = repoint(statement, source, database, names)
    if definition.kind == "TRIGGER":
        statement = _ORDER.sub("FOR EACH ROW", statement)
    if definition.kind == "VIEW":
        statement = _VIEW_HEAD.sub("CREATE OR REPLACE ", statement, count=1)
    with using(c, database), session(c, definition):
        rawsql.execute(c, statement)


def create_all(
    c: sa.Connection, definitions: list[Definition], database: str, source: str, names: Iterable[str] = ()
) -> list[str]:
    """Create each definition in `database` (see create); a view that reads a view not created yet is tried
    again after the others. Returns what could not be created, with the server's error number."""
    pending, failed = list(definitions), {}
    while pending:
        progress, retry = False, []
        for definition in pending:
            try:
                create(c, definition, database, source, names)
            except sa.exc.DBAPIError as error:
                retry.append(definition)
                number = getattr(error.orig, "args", (None,))[0]
                failed[definition.label] = f"{definition.label} in {database} (error {number})"
            else:
                progress = True
                failed.pop(definition.label, None)
        if not progress:
            break
        pending = retry
    return list(failed.values())


@contextmanager
def using(c: sa.Connection, database: str) -> Iterator[None]:
    """`database` as the session's current one (where unqualified names resolve), the previous one after."""
    before = _text(rawsql.execute(c, "SELECT DATABASE()").scalar())
    rawsql.execute(c, f"USE {quote_identifier(database)}")
    try:
        yield
    finally:
        if before is not None and before != database:
            with suppress(sa.exc.DBAPIError):  # it was dropped meanwhile (a renamed copy's emptied database)
                rawsql.execute(c, f"USE {quote_identifier(before)}")


@contextmanager
def session(c: sa.Connection, definition: Definition) -> Iterator[None]:
    """The sql_mode, character sets and time zone `definition` was created under, for its creation; the
    session's own after (the body's text means what it meant when its author wrote it)."""
    saved = rawsql.execute(
        c,
        "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client, @@SESSION.collation_connection, "
        "@@SESSION.time_zone",
    ).one()
    settings = [
        ("sql_mode", definition.sql_mode, saved[0]),
        ("character_set_client", definition.charset, saved[1]),
        ("collation_connection", definition.collation, saved[2]),
        ("time_zone", definition.time_zone, saved[3]),
    ]
    changed = [(name, old) for name, new, old in settings if new is not None and new != old]
    for name, _ in changed:
        value = dict((n, v) for n, v, _ in settings)[name]
        c.execute(sa.text(f"SET SESSION {name} = :v"), {"v": value})
    try:
        yield
    finally:
        for name, old in changed:
            c.execute(sa.text(f"SET SESSION {name} = :v"), {"v": old})


# strings and comments are skipped whole; a versioned comment (/*!50001 ... */) is SQL and is not skipped
_SKIP = r"'(?:[^'\\]|''|\\.)*'|\"(?:[^\"\\]|\"\"|\\.)*\"|(?:--\s|#)[^\n]*|/\*(?!!).*?\*/"
_PART = r"(?:`(?:[^`]|``)+`|[\w$]+)"


def repoint(statement: str, old: str, new: str, names: Iterable[str]) -> str:
    """`statement` with its references to database `old` made references to `new`: `old` followed by one
    of `names` (the objects of `old`) or by two more name parts; strings and comments untouched."""
    spellings = [re.escape(quote_identifier(old))]
    if re.fullmatch(r"[\w$]+", old):
        spellings.append(rf"(?<![\w$`.]){re.escape(old)}(?![\w$])")
    reference = re.compile(
        rf"(?P<skip>{_SKIP})|(?P<db>{'|'.join(spellings)})(?P<rest>\s*\.\s*(?P<next>{_PART})(?P<third>\s*\.\s*{_PART})?)",
        re.S,
    )
    known = set(names)

    def replace(match: re.Match) -> str:
        if match["skip"]:
            return match[0]
        part = match["next"]
        name = part[1:-1].replace("``", "`") if part.startswith("`") else part
        if match["third"] or name in known:
            return quote_identifier(new) + match["rest"]
        return match[0]

    return reference.sub(replace, statement)
