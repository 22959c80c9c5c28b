"""The texts information_schema gives for defaults, generation expressions and CHECK clauses, read the same
way on MariaDB and MySQL 8, which print them differently.

- COLUMN_DEFAULT: MariaDB (10.2.7+) prints an SQL expression (`'active'`, `3`, `current_timestamp()`) and
  the word NULL for "no default"; MySQL 8 prints a literal's bare value (`active`) and marks expressions with
  DEFAULT_GENERATED in EXTRA. Both come out here as the SQL expression, None for no default (as PostgreSQL's
  introspection gives pg_get_expr's text, or None).
- Expressions: MySQL 8's data dictionary keeps them with each quote backslash-escaped
  (`concat(`a`,_utf8mb4\\' \\',`b`)`); MariaDB's are plain. Both come out plain.
- A reference to an object of the database itself is printed qualified by the database's name
  (MariaDB's `nextval(`learners`.`invoice_seq`)`). The qualifier is dropped, so a working copy (another
  database) describes the same structure as production, in the same words.
"""

from __future__ import annotations

import re

from deid.backends.mysql.quoting import quote_identifier, quote_literal
from deid.schema import Kind

_BARE_LITERAL_KINDS = (Kind.INTEGER, Kind.NUMERIC, Kind.FLOAT)
_ON_UPDATE = re.compile(r"\bon update (\S+)", re.I)


def is_mariadb(version: str) -> bool:
    """VERSION() of MariaDB says so ("10.11.19-MariaDB-0+deb12u1"); MySQL's does not ("8.0.36")."""
    return "mariadb" in version.lower()


def expression(text: str | None, mariadb: bool, database: str) -> str | None:
    """An expression as the server printed it, unescaped (MySQL 8) and without the database's own name."""
    if text is None:
        return None
    if not mariadb:
        text = text.replace("\\'", "'")
    return text.replace(quote_identifier(database) + ".", "")


def default(raw: str | None, extra: str, kind: Kind, mariadb: bool, database: str) -> str | None:
    """The column's DEFAULT as an SQL expression, or None when it has none (or DEFAULT NULL)."""
    if raw is None:
        return None
    if mariadb:
        return None if raw == "NULL" else expression(raw, mariadb, database)
    if "default_generated" in extra.lower():
        return expression(raw, mariadb, database)
    if kind in _BARE_LITERAL_KINDS or raw.startswith(("b'", "0x")):
        return raw
    return quote_literal(raw)


def on_update(extra: str) -> str | None:
    """What `ON UPDATE ...` writes, from EXTRA: "on update current_timestamp()" (MariaDB), "DEFAULT_GENERATED
    on update CURRENT_TIMESTAMP" (MySQL 8). The expression is a timestamp function, without blanks."""
    found = _ON_UPDATE.search(extra)
    return found[1] if found else None
