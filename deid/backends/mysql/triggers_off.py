"""Triggers kept from firing during the scrub's UPDATE: MySQL has no session setting that skips them (no
session_replication_role), so the table's UPDATE triggers are dropped for the rewrite and created again
after it, from their own definitions (SHOW CREATE TRIGGER: statement, sql_mode, character sets), in their
order. Only UPDATE triggers: the scrub neither inserts nor deletes rows.

The definitions are written to the ledger (scrub_ledger.TRIGGERS) before any trigger is dropped and deleted
once it exists again, so a scrub killed in between leaves them to `restore` (scrub_tables on the retry, or
finish_scrub, which runs before anything is published).
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from deid import rawsql
from deid.backends.mysql.quoting import quote_identifier
from deid.backends.mysql.scrub_ledger import TRIGGERS

_TRIGGERS = sa.text("""
SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS
WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = :t AND EVENT_MANIPULATION IN :events
ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER
""").bindparams(sa.bindparam("events", expanding=True))
_EXISTS = sa.text(
    "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = :n"
)
# created again one after the other in their order, each lands last: an order clause naming a trigger not
# created yet would fail
_ORDER = re.compile(r"\bFOR\s+EACH\s+ROW\s+(?:FOLLOWS|PRECEDES)\s+(?:`(?:[^`]|``)+`|[\w$]+)", re.I)


def set_aside(
    connection: sa.Connection, table_key: str, table: str, keep: tuple[str, ...], every_event: bool = False
) -> list[str]:
    """Drop the UPDATE triggers of `table` (every trigger with `every_event`: a rebuilt table's move with
    it and would be dropped with it), but those in `keep` (the rules say they recompute), their definitions
    committed to the ledger first; returns their names. `connection` autocommits."""
    events = ["INSERT", "UPDATE", "DELETE"] if every_event else ["UPDATE"]
    found = connection.execute(_TRIGGERS, {"t": table, "events": events}).scalars()
    names = [n for n in found if n not in set(keep)]
    for position, name in enumerate(names):
        shown = rawsql.execute(connection, f"SHOW CREATE TRIGGER {quote_identifier(name)}").mappings().one()
        connection.execute(
            sa.text(
                f"INSERT IGNORE INTO `{TRIGGERS}` (table_key, name, position, statement, sql_mode, "
                "character_set_client, collation_connection) VALUES (:k, :n, :p, :s, :m, :cs, :cc)"
            ),
            {
                "k": table_key,
                "n": name,
                "p": position,
                "s": shown["SQL Original Statement"],
                "m": shown["sql_mode"],
                "cs": shown["character_set_client"],
                "cc": shown["collation_connection"],
            },
        )
    for name in names:  # every definition is in the ledger (autocommitted) before the first drop
        rawsql.execute(connection, f"DROP TRIGGER IF EXISTS {quote_identifier(name)}")
    return names


def restore(connection: sa.Connection, table_key: str | None = None) -> list[str]:
    """Create again every trigger the ledger holds (of `table_key`, or of every table), in its order, with
    its own sql_mode and character sets; returns their names. The session's settings are put back after;
    `connection` autocommits."""
    where, params = ("WHERE table_key = :k", {"k": table_key}) if table_key else ("", {})
    saved = connection.execute(
        sa.text(
            "SELECT table_key, name, statement, sql_mode, character_set_client, collation_connection "
            f"FROM `{TRIGGERS}` {where} ORDER BY table_key, position"
        ),
        params,
    ).all()
    if not saved:
        return []
    session = rawsql.execute(
        connection,
        "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client, @@SESSION.collation_connection",
    ).one()
    cursor = connection.connection.dbapi_connection.cursor()  # the body's % signs are not parameters
    try:
        for key, name, statement, sql_mode, charset, collation in saved:
            if not connection.execute(_EXISTS, {"n": name}).scalar():
                cursor.execute("SET SESSION sql_mode = %s", (sql_mode,))
                cursor.execute("SET SESSION character_set_client = %s", (charset,))
                cursor.execute("SET SESSION collation_connection = %s", (collation,))
                cursor.execute(_ORDER.sub("FOR EACH ROW", statement))
            connection.execute(
                sa.text(f"DELETE FROM `{TRIGGERS}` WHERE table_key = :k AND name = :n"),
                {"k": key, "n": name},
            )
    finally:
        cursor.execute("SET SESSION sql_mode = %s", (session[0],))
        cursor.execute("SET SESSION character_set_client = %s", (session[1],))
        cursor.execute("SET SESSION collation_connection = %s", (session[2],))
        cursor.close()
    return [name for _, name, *_ in saved]
