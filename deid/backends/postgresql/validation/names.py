"""Names, literals and the session of PostgreSQL's validation queries (all for SQLAlchemy's text())."""

from __future__ import annotations

from typing import Any

from deid.backends.postgresql.quoting import QUOTING
from deid.expect.sql import for_text

# Text forms of dates and numbers follow session settings; both databases must render them alike for digests
# of the same value to match, whatever each server's defaults.
SESSION = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 1",
)


def session() -> tuple[str, ...]:
    return SESSION


def gx_engine_options() -> dict[str, Any]:
    return {}  # GX's sessions read counts only; no query of the suite depends on text forms of the session


def quote_ident(name: str) -> str:
    """A quoted identifier, for text()."""
    return for_text(QUOTING.identifier(name))


def quote_table(table: str) -> str:
    """A quoted schema.table, for text()."""
    return for_text(QUOTING.table(table))


def literal(text: str) -> str:
    """An SQL string literal of text we wrote (patterns, names), never of row data, for text()."""
    return for_text(QUOTING.literal(text))


regex_literal = literal  # a regular expression's colons (`[:alpha:]`, `2001:db8`) are escaped like any other


def regclass(table: str) -> str:
    """The table's oid, from its quoted name as a literal (quoted once: literal() escapes the colons)."""
    return f"{literal(QUOTING.table(table))}::regclass"


def keyed(value_sql: str) -> str:
    """SQL for the keyed digest of a value (as text); NULL stays NULL (deid.expect.digests)."""
    from deid.expect.digests import KEY_PARAM

    return f"sha256(CAST(:{KEY_PARAM} AS bytea) || convert_to(({value_sql})::text, 'UTF8'))"
