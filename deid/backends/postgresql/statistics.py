"""Planner statistics of a scrubbed copy: made from the scrubbed rows, never production's.

A clone carries production's statistics (pg_statistic: most common values and histogram bounds, that is
sample values of every column; pg_statistic_ext_data for extended statistics), and any staging user may read
those of a table they can select from, through the pg_stats view. So after the scrub:

- every table the scrub rewrote, and every materialized view it refreshed, is ANALYZEd: its statistics are
  taken again, from the scrubbed rows;
- every table it emptied loses its statistics altogether (ANALYZE of an empty table keeps the old ones):
  deleted from the catalog when deid's role is a superuser, else cleared with pg_clear_attribute_stats()
  (PostgreSQL 18+). When neither is possible the scrub fails, naming the tables: production's statistics
  must not be published.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql.quoting import quote_table
from deid.errors import TerminalError
from deid.names import table_names

_LEFT = sa.text(
    "SELECT DISTINCT format('%I.%I', schemaname, tablename) FROM pg_stats "
    "WHERE (schemaname, tablename) IN (SELECT * FROM unnest(CAST(:s AS text[]), CAST(:t AS text[])))"
)


def renew(connection: sa.Connection, rewritten: Sequence[str], emptied: Sequence[str]) -> None:
    """ANALYZE `rewritten` (tables and materialized views, by key); remove the statistics of `emptied`."""
    for table in rewritten:
        rawsql.execute(connection, f"ANALYZE {quote_table(table)}")
    if not emptied:
        return
    oids = [connection.execute(sa.text("SELECT CAST(:t AS regclass)::oid"), {"t": quote_table(t)}).scalar()
            for t in emptied]  # fmt: skip
    superuser = connection.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    if superuser.scalar():
        connection.execute(sa.text("DELETE FROM pg_statistic WHERE starelid = ANY(:o)"), {"o": oids})
        connection.execute(
            sa.text(
                "DELETE FROM pg_statistic_ext_data WHERE stxoid IN "
                "(SELECT oid FROM pg_statistic_ext WHERE stxrelid = ANY(:o))"
            ),
            {"o": oids},
        )
    elif connection.dialect.server_version_info >= (18,):
        for table in emptied:
            schema, name = table_names(table)
            connection.execute(
                sa.text(
                    "SELECT pg_clear_attribute_stats(:s, :t, a.attname::text, i) FROM pg_attribute a, "
                    "unnest(ARRAY[false, true]) AS i WHERE a.attrelid = CAST(:q AS regclass) "
                    "AND a.attnum > 0 AND NOT a.attisdropped"
                ),
                {"s": schema, "t": name, "q": quote_table(table)},
            )
    names = [table_names(t) for t in emptied]
    left = connection.execute(_LEFT, {"s": [n[0] for n in names], "t": [n[1] for n in names]}).scalars()
    left = sorted(left)
    if left:
        raise TerminalError(
            f"the statistics of {', '.join(left)} still hold production's values after the table was "
            "emptied, and deid's role cannot remove them (it needs to be a superuser, or PostgreSQL 18+)"
        )
