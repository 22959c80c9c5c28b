"""Index handling around a table's scrub on PostgreSQL.

An UPDATE that rewrites every row maintains every index row by row, and checks unique constraints row by row
too: a new value may briefly equal the old value of a row not yet rewritten, so a column that is unique
before and after can still fail mid-statement. So the indexes of the table are set aside before its UPDATE and
built again afterwards (a sorted build is much cheaper than a million index insertions). Only indexes that a
foreign key depends on stay: dropping them would mean dropping and re-validating the keys of other tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql.quoting import quote_ident

_INDEXES = sa.text(
    """
    SELECT i.indexrelid::regclass::text AS index_name,
           c.conname,
           pg_get_indexdef(i.indexrelid) AS index_def,
           CASE WHEN c.oid IS NOT NULL THEN pg_get_constraintdef(c.oid) END AS constraint_def,
           -- what the drop takes along and the build does not give back
           CASE WHEN obj_description(c.oid, 'pg_constraint') IS NOT NULL
                THEN format('COMMENT ON CONSTRAINT %I ON %s IS %L', c.conname, CAST(:table AS regclass),
                            obj_description(c.oid, 'pg_constraint'))
                WHEN c.oid IS NULL AND obj_description(i.indexrelid, 'pg_class') IS NOT NULL
                THEN format('COMMENT ON INDEX %s IS %L', i.indexrelid::regclass,
                            obj_description(i.indexrelid, 'pg_class')) END AS comment,
           CASE WHEN i.indisclustered
                THEN format('ALTER TABLE %s CLUSTER ON %I', CAST(:table AS regclass), x.relname)
           END AS cluster,
           CASE WHEN i.indisreplident
                THEN format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', CAST(:table AS regclass),
                            x.relname) END AS identity
    FROM pg_index i
    JOIN pg_class x ON x.oid = i.indexrelid
    LEFT JOIN pg_constraint c
           ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')
    WHERE i.indrelid = CAST(:table AS regclass)
      AND NOT EXISTS (SELECT 1 FROM pg_constraint fk WHERE fk.contype = 'f' AND fk.conindid = i.indexrelid)
      AND NOT EXISTS (SELECT 1 FROM pg_inherits inh WHERE inh.inhrelid = i.indexrelid)
    ORDER BY 1
    """
)


@dataclass(frozen=True)
class SetAside:
    """An index (or the constraint it backs) dropped for the scrub, with the DDL that builds it again."""

    name: str
    drop: str
    create: str
    after: tuple[str, ...] = ()  # its comment, CLUSTER ON, REPLICA IDENTITY, as they were


def set_aside_indexes(connection: sa.Connection, table_sql: str) -> list[SetAside]:
    """Drop the table's indexes that no foreign key depends on; return how to build them again."""
    aside = []
    for row in connection.execute(_INDEXES, {"table": table_sql}).mappings():
        after = tuple(s for s in (row["comment"], row["cluster"], row["identity"]) if s is not None)
        if row["conname"]:
            quoted = quote_ident(row["conname"])
            item = SetAside(
                name=row["conname"],
                drop=f"ALTER TABLE {table_sql} DROP CONSTRAINT {quoted}",
                create=f"ALTER TABLE {table_sql} ADD CONSTRAINT {quoted} {row['constraint_def']}",
                after=after,
            )
        else:
            item = SetAside(
                name=row["index_name"],
                drop=f"DROP INDEX {row['index_name']}",
                create=row["index_def"],
                after=after,
            )
        aside.append(item)
    for item in aside:
        rawsql.execute(connection, item.drop)
    return aside


def restore_indexes(connection: sa.Connection, aside: list[SetAside]) -> None:
    for item in aside:
        rawsql.execute(connection, item.create)
        for statement in item.after:
            rawsql.execute(connection, statement)
