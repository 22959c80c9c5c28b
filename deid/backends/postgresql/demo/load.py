"""Load the demo's rows (deid.demo.rows) into an empty PostgreSQL database: schema.sql, every table by COPY,
then each id sequence moved above the loaded ids, the materialized view filled and statistics gathered; one
transaction, so a failed load leaves the database empty."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from psycopg import sql
from psycopg.types.json import Jsonb

from deid.db import normalise_url

if TYPE_CHECKING:
    from deid.demo.rows import TableRows

SCHEMA_SQL = Path(__file__).with_name("schema.sql")


def load(url: str, tables: Iterable[TableRows]) -> dict[str, int]:
    """Run schema.sql in the empty database at `url` and COPY the rows in; returns rows per "schema.table"."""
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.begin() as conn, conn.connection.driver_connection.cursor() as cursor:
            cursor.execute(SCHEMA_SQL.read_text())
            counts, with_ids = {}, []
            for table in tables:
                counts[table.table] = _copy(cursor, table)
                if table.columns[0] == "id":
                    with_ids.append(table.table)
            for name in with_ids:  # the rows brought their ids: new rows must get higher ones
                cursor.execute(
                    sql.SQL("SELECT setval(pg_get_serial_sequence({t}, 'id'), max(id)) FROM {i}").format(
                        t=sql.Literal(name), i=sql.Identifier(*name.split("."))
                    )
                )
            cursor.execute("REFRESH MATERIALIZED VIEW course_revenue")
            cursor.execute("ANALYZE")
    finally:
        engine.dispose()
    return counts


def _copy(cursor, table: TableRows) -> int:
    """COPY one table's rows; a dict is a jsonb document, a list a text[] array."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*table.table.split(".")), sql.SQL(", ").join(map(sql.Identifier, table.columns))
    )
    count = 0
    with cursor.copy(statement) as copy:
        for row in table.rows:
            copy.write_row(tuple(Jsonb(v) if type(v) is dict else v for v in row))
            count += 1
    return count
