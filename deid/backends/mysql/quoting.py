"""MySQL's and MariaDB's names and string literals: deid.backends.quoting with SQLAlchemy's MySQL dialect."""

from __future__ import annotations

from sqlalchemy.dialects import mysql

from deid.backends.quoting import Quoting, named

QUOTING = Quoting(named(mysql.dialect), schemas=False)

quote_identifier = QUOTING.identifier  # `name`
quote_table = QUOTING.table  # `table` from the key public.table: the connection's database is the namespace
qualified = QUOTING.qualified  # names joined by dots, each quoted
quote_literal = QUOTING.literal  # 'text', a backslash doubled (sql_mode without NO_BACKSLASH_ESCAPES)
