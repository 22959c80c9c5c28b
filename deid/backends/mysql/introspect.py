"""Read a MySQL 8 or MariaDB 10.11+ database's structure from information_schema into deid's Schema.

One query per family of objects (tables, columns, keys, foreign keys, CHECKs, triggers), whatever the number
of tables, each restricted to the database the connection uses (DATABASE()).

A MySQL database is the namespace (Capabilities.schemas is False), and a working copy is another database,
so the database's own name appears nowhere in the result: every table is put under deid's default schema
name (deid.names.DEFAULT_SCHEMA), and production, its copies and a PostgreSQL twin with the same tables in
`public` get the same keys, so one rule file (`public.learners`, or `learners`) covers them all.

What is read the same way as the PostgreSQL backend reads its catalogs:

- AUTO_INCREMENT is an identity: the column is `identity`, and the table's counter is listed among the
  sequences as an identity sequence owned by the column (named after its table: the counter belongs to
  the table, `ALTER TABLE t AUTO_INCREMENT = n`), as PostgreSQL lists an identity column's sequence.
  MariaDB's CREATE SEQUENCE objects are listed as plain sequences, with the columns whose DEFAULT calls
  nextval() on them.
- A generated column (VIRTUAL or STORED) is `generated`, with its expression as its default, as
  pg_get_expr gives a PostgreSQL generated column's.
- ON UPDATE CURRENT_TIMESTAMP is the column's `on_update`.
- Unique keys: the primary key and unique indexes over plain columns (one over an expression, MySQL 8's
  functional key parts, makes no column set unique).
- Triggers: every trigger, with what its body sets in the row (deid.backends.mysql.triggers).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from deid import names
from deid.backends.mysql import texts, triggers, types
from deid.backends.mysql.copies import NOTE_TABLE
from deid.errors import ConfigError
from deid.schema import (
    CheckConstraint,
    Column,
    ForeignKey,
    Kind,
    Schema,
    Sequence,
    Table,
    Trigger,
    UniqueKey,
    View,
)

NAMESPACE = names.DEFAULT_SCHEMA

SESSION = sa.text("SELECT VERSION() AS version, DATABASE() AS db")

# BASE TABLE, and MariaDB's SYSTEM VERSIONED tables (rows with their history); VIEW; MariaDB's SEQUENCE.
TABLES = sa.text("""
SELECT TABLE_NAME AS name, TABLE_TYPE AS type, TABLE_ROWS AS row_estimate
FROM information_schema.TABLES WHERE TABLE_SCHEMA = :db
""")
_TABLE_TYPES = frozenset({"BASE TABLE", "SYSTEM VERSIONED"})

COLUMNS = sa.text("""
SELECT TABLE_NAME AS table_name, COLUMN_NAME AS name, COLUMN_TYPE AS column_type, DATA_TYPE AS data_type,
       IS_NULLABLE AS nullable, COLUMN_DEFAULT AS column_default, EXTRA AS extra,
       GENERATION_EXPRESSION AS generation, CHARACTER_MAXIMUM_LENGTH AS max_length
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :db
ORDER BY TABLE_NAME, ORDINAL_POSITION
""")

# Unique indexes, the primary key's included (PRIMARY). A functional key part has no COLUMN_NAME.
KEYS = sa.text("""
SELECT TABLE_NAME AS table_name, INDEX_NAME AS name, COLUMN_NAME AS column_name
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = :db AND NON_UNIQUE = 0
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
""")

FOREIGN_KEYS = sa.text("""
SELECT TABLE_NAME AS table_name, CONSTRAINT_NAME AS name, COLUMN_NAME AS column_name,
       REFERENCED_TABLE_SCHEMA AS ref_database, REFERENCED_TABLE_NAME AS ref_table,
       REFERENCED_COLUMN_NAME AS ref_column
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = :db AND REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION
""")

# MariaDB names a CHECK per table (two tables may each have a CONSTRAINT_1) and says which table; MySQL 8
# names it per database and leaves the table to TABLE_CONSTRAINTS, where a NOT ENFORCED one refuses nothing.
CHECKS_MARIADB = sa.text("""
SELECT TABLE_NAME AS table_name, CONSTRAINT_NAME AS name, CHECK_CLAUSE AS clause
FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = :db
""")
CHECKS_MYSQL = sa.text("""
SELECT tc.TABLE_NAME AS table_name, cc.CONSTRAINT_NAME AS name, cc.CHECK_CLAUSE AS clause
FROM information_schema.CHECK_CONSTRAINTS cc
JOIN information_schema.TABLE_CONSTRAINTS tc
  ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME
 AND tc.CONSTRAINT_TYPE = 'CHECK'
WHERE cc.CONSTRAINT_SCHEMA = :db AND tc.ENFORCED = 'YES'
""")

# Only the triggers of tables the session holds the TRIGGER privilege on are listed (docs/backends/mysql.md).
TRIGGERS = sa.text("""
SELECT EVENT_OBJECT_TABLE AS table_name, TRIGGER_NAME AS name, ACTION_TIMING AS timing,
       EVENT_MANIPULATION AS event, ACTION_ORIENTATION AS orientation, ACTION_STATEMENT AS body
FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = :db
ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME
""")

_GENERATED = re.compile(r"\b(?:VIRTUAL|STORED|PERSISTENT) GENERATED\b", re.I)
_BACKQUOTED = re.compile(r"`((?:[^`]|``)+)`")
_NEXTVAL = re.compile(r"\bnextval\(\s*`((?:[^`]|``)+)`\s*\)", re.I)


def introspect(connection: sa.Connection, database_name: str) -> Schema:
    """The structure of the database `connection` uses, as a Schema named `database_name`."""
    session = connection.execute(SESSION).mappings().one()
    database = _text(session["db"])
    if database is None:
        raise ConfigError(
            f"cannot read the structure of {database_name}: the connection names no database (add the "
            "database to the URL: mysql://user@host/DATABASE)"
        )
    version = _text(session["version"]) or ""
    mariadb = texts.is_mariadb(version)
    params = {"db": database}
    # the copy's note (deid's state, copies.py) is deid's, not the database's: it never needs a rule
    relations = [r for r in _rows(connection.execute(TABLES, params)) if r["name"] != NOTE_TABLE]
    table_names = {r["name"] for r in relations if r["type"] in _TABLE_TYPES}
    columns = _by_table(connection.execute(COLUMNS, params), table_names)
    keys = _by_table(connection.execute(KEYS, params), table_names)
    foreign_keys = _by_table(connection.execute(FOREIGN_KEYS, params), table_names)
    checks = _by_table(connection.execute(CHECKS_MARIADB if mariadb else CHECKS_MYSQL, params), table_names)
    trigger_rows = _by_table(connection.execute(TRIGGERS, params), table_names)

    tables = []
    for relation in relations:
        if relation["type"] not in _TABLE_TYPES:
            continue
        name = relation["name"]
        table_checks = {c["name"]: texts.expression(c["clause"], mariadb, database) for c in checks[name]}
        table_columns = tuple(_column(c, table_checks, mariadb, database) for c in columns[name])
        # MariaDB's own CHECK of a JSON column is what its type means, as MySQL 8's json type has none
        json_checks = {c.name for c in table_columns if mariadb and c.data_type == "json"}
        tables.append(
            _table(
                relation,
                table_columns,
                keys[name],
                foreign_keys[name],
                {n: clause for n, clause in table_checks.items() if n not in json_checks},
                trigger_rows[name],
                database,
            )
        )
    return Schema(
        database=database_name,
        engine="mysql",
        server_version=version,
        tables=_sorted(tables),
        sequences=_sorted(
            [
                *(_auto_increment(t) for t in tables if any(c.identity for c in t.columns)),
                *(_sequence(r["name"], tables) for r in relations if r["type"] == "SEQUENCE"),
            ]
        ),
        views=_sorted(View(schema=NAMESPACE, name=r["name"]) for r in relations if r["type"] == "VIEW"),
    )


def _text(value: Any) -> Any:
    """information_schema texts, which some servers send as binary strings, as str."""
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _rows(result: sa.CursorResult) -> list[dict[str, Any]]:
    return [{key: _text(value) for key, value in row.items()} for row in result.mappings()]


def _by_table(result: sa.CursorResult, tables: set[str]) -> defaultdict[str, list[dict[str, Any]]]:
    """Rows grouped by table, for the tables only (views have columns too)."""
    grouped: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _rows(result):
        if row["table_name"] in tables:
            grouped[row["table_name"]].append(row)
    return grouped


def _sorted(items: Iterable[Any]) -> tuple[Any, ...]:
    """Objects sorted by qualified name: the JSON must not change unless the schema does."""
    return tuple(sorted(items, key=lambda item: item.qualified))


def _column(row: Mapping[str, Any], checks: Mapping[str, str | None], mariadb: bool, database: str) -> Column:
    extra = row["extra"] or ""
    data_type = row["data_type"]
    kind = types.kind_of(data_type)
    column_type = row["column_type"]
    if mariadb and types.is_mariadb_json(data_type, row["name"], checks.get(row["name"])):
        kind, column_type = Kind.JSON, "json"
    generated = bool(_GENERATED.search(extra))
    return Column(
        name=row["name"],
        data_type=column_type,
        kind=kind,
        nullable=row["nullable"] == "YES",
        default=(
            texts.expression(row["generation"], mariadb, database)
            if generated
            else texts.default(row["column_default"], extra, kind, mariadb, database)
        ),
        generated=generated,
        identity="auto_increment" in extra.lower(),
        enum_labels=types.labels(column_type) if kind is Kind.ENUM else (),
        max_length=types.max_length(data_type, row["max_length"]),
        on_update=texts.on_update(extra),
    )


def _table(
    relation: Mapping[str, Any],
    columns: tuple[Column, ...],
    keys: list[Mapping[str, Any]],
    foreign_keys: list[Mapping[str, Any]],
    checks: Mapping[str, str | None],
    trigger_rows: list[Mapping[str, Any]],
    database: str,
) -> Table:
    indexes: dict[str, list[str | None]] = defaultdict(list)
    for key in keys:
        indexes[key["name"]].append(key["column_name"])
    unique_keys = [
        UniqueKey(name, tuple(cols), primary=name == "PRIMARY")  # type: ignore[arg-type]
        for name, cols in indexes.items()
        if None not in cols
    ]
    primary_key = next((k.columns for k in unique_keys if k.primary), ())
    spelled = {c.name.lower(): c.name for c in columns}
    return Table(
        schema=NAMESPACE,
        name=relation["name"],
        columns=columns,
        primary_key=primary_key,
        unique=tuple(sorted({k.columns for k in unique_keys if not k.primary} - {primary_key})),
        foreign_keys=_foreign_keys(foreign_keys, database),
        triggers=_triggers(trigger_rows, [c.name for c in columns]),
        row_estimate=int(relation["row_estimate"] or 0),
        checks=tuple(
            sorted(
                (
                    CheckConstraint(name, f"CHECK ({clause})", _check_columns(clause or "", spelled, columns))
                    for name, clause in checks.items()
                ),
                key=lambda c: c.name,
            )
        ),
        unique_keys=tuple(sorted(unique_keys, key=lambda k: k.name)),
    )


def _check_columns(clause: str, spelled: Mapping[str, str], columns: tuple[Column, ...]) -> tuple[str, ...]:
    """The columns a CHECK reads: its backquoted names that are columns of the table (MySQL lists no
    column usage for CHECKs), in the table's order."""
    read = {spelled.get(n.replace("``", "`").lower()) for n in _BACKQUOTED.findall(clause)}
    return tuple(c.name for c in columns if c.name in read)


def _foreign_keys(rows: list[Mapping[str, Any]], database: str) -> tuple[ForeignKey, ...]:
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["name"]].append(row)
    keys = []
    for name, parts in grouped.items():
        ref_database = parts[0]["ref_database"]
        # a key into another database (MySQL allows it) names that database: it is outside the copy
        namespace = NAMESPACE if ref_database == database else ref_database
        keys.append(
            ForeignKey(
                name=name,
                columns=tuple(p["column_name"] for p in parts),
                ref_table=names.key(namespace, parts[0]["ref_table"]),
                ref_columns=tuple(p["ref_column"] for p in parts),
            )
        )
    return tuple(sorted(keys, key=lambda f: (f.name, f.columns)))


def _triggers(rows: list[Mapping[str, Any]], columns: list[str]) -> tuple[Trigger, ...]:
    """One Trigger per name: MariaDB 10.11 and MySQL 8 give a trigger one event, later MariaDB several."""
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["name"]].append(row)
    found = []
    for name, parts in grouped.items():
        first = parts[0]
        derives, writes = triggers.analyse(first["body"] or "", columns)
        found.append(
            Trigger(
                name=name,
                language="sql",  # the body is SQL itself: there is no function
                row=first["orientation"] == "ROW",
                timing=first["timing"].lower(),
                events=tuple(sorted({p["event"].lower() for p in parts})),
                derives=derives,
                writes_elsewhere=writes,
            )
        )
    return tuple(sorted(found, key=lambda t: t.name))


def _auto_increment(table: Table) -> Sequence:
    column = next(c for c in table.columns if c.identity)
    return Sequence(
        schema=NAMESPACE,
        name=table.name,
        data_type=column.data_type,
        owned_by=names.column_key(table.qualified, column.name),
        identity=True,
    )


def _sequence(name: str, tables: list[Table]) -> Sequence:
    """A MariaDB SEQUENCE object (a bigint), with the columns whose DEFAULT draws from it."""
    used_by = sorted(
        names.column_key(t.qualified, c.name)
        for t in tables
        for c in t.columns
        if c.default is not None and any(n.replace("``", "`") == name for n in _NEXTVAL.findall(c.default))
    )
    return Sequence(schema=NAMESPACE, name=name, data_type="bigint", used_by=tuple(used_by))
