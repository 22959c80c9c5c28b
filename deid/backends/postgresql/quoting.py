"""PostgreSQL's names and string literals: deid.backends.quoting with SQLAlchemy's PostgreSQL dialect."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql

from deid.backends.quoting import Quoting, named

QUOTING = Quoting(named(postgresql.dialect), schemas=True)

quote_ident = QUOTING.identifier  # "name"
quote_table = QUOTING.table  # "schema"."table" from the key schema.table
qualified = QUOTING.qualified  # names joined by dots, each quoted
quote_literal = QUOTING.literal  # 'text' (standard_conforming_strings on: a backslash is itself)
