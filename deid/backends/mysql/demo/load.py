"""Load the demo's rows (deid.demo.rows) into an empty MariaDB database: schema.sql statement by statement,
then every table by multi-row INSERTs (PyMySQL's executemany folds a batch into one statement), then
statistics. Each table's AUTO_INCREMENT counter moves above the ids inserted by itself.

DDL commits itself on this engine, so a load that fails leaves what it made: drop the database and run it
again (deid.demo seeds a database only when it creates it).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from deid import rawsql
from deid.backends.mysql.quoting import quote_identifier
from deid.db import normalise_url

if TYPE_CHECKING:
    from deid.demo.rows import TableRows

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
BATCH = 2000  # rows per executemany: a few hundred kB of SQL, well under max_allowed_packet
NAMESPACE = "public"  # the schema introspection gives every table of a database (docs/backends/mysql.md)


def statements(script: str) -> list[str]:
    """The statements of schema.sql: each ends with ';' at the end of a line."""
    return [s.strip() for s in re.split(r";[ \t]*$", script, flags=re.MULTILINE) if _has_sql(s)]


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def load(url: str, tables: Iterable[TableRows]) -> dict[str, int]:
    """Create the schema in the empty database at `url` and insert the rows; returns rows per table, keyed
    as introspection names them ("public.<table>")."""
    engine = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements(SCHEMA_SQL.read_text()):
                rawsql.execute(conn, statement)
        counts = {}
        with engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()
            for table in tables:
                name = table.table.rpartition(".")[2]
                counts[f"{NAMESPACE}.{name}"] = _insert(cursor, name, table)
            cursor.execute(
                "ANALYZE TABLE " + ", ".join(quote_identifier(t.rpartition(".")[2]) for t in counts)
            )
            cursor.fetchall()
    finally:
        engine.dispose()
    return counts


def _insert(cursor, name: str, table: TableRows) -> int:
    statement = (
        f"INSERT INTO {quote_identifier(name)} ({', '.join(map(quote_identifier, table.columns))}) "
        f"VALUES ({', '.join(['%s'] * len(table.columns))})"
    )
    count = 0
    rows = _values(table.rows)
    while batch := list(itertools.islice(rows, BATCH)):
        cursor.executemany(statement, batch)
        count += len(batch)
    return count


def _values(rows: Iterable[tuple]) -> Iterator[tuple]:
    """Rows as the server takes them: a dict or a list as JSON text, a time as UTC without a zone."""
    for row in rows:
        yield tuple(_value(v) for v in row)


def _value(value):
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
