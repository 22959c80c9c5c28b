"""A MySQL/MariaDB value as the text PostgreSQL's `(value)::text` gives for the same value, and back.

The vector forms key on a value's text (deid.transformers.base.Batch) and were written against PostgreSQL's
text output under the stream's pinned settings (UTC, ISO dates, shortest floats, hex bytea). A value equal on
both engines must read as the same text here, so that the same salt gives the same output: the conversion
is SQL in the query that streams the rows out, never a Python call per value.

- integers, decimals, dates, text, ENUM labels, SET members: the server's own text is PostgreSQL's;
- DATETIME / TIMESTAMP / TIME with fractional seconds: MySQL prints every declared digit (`05.120000`),
  PostgreSQL trims trailing zeros (`05.12`); TIMESTAMP is read in UTC (the session's time_zone);
- FLOAT: MySQL prints a float with 6 significant digits (123456789 as 123457000, not the value held), so it
  is widened to DOUBLE first, whose text is the shortest that reads back exactly, as PostgreSQL's;
- BLOB / BINARY: `\\x` and lower-case hex, as bytea_output hex;
- a vector form's output is text too, turned back into the column's type by the server in the UPDATE
  (write_sql), under a strict sql_mode, so a value the column refuses fails the scrub naming the column.

`vector_type` spells the column's type as the vector forms expect it (PostgreSQL's names: `real` or `double
precision` decides how a float is parsed, `numeric(p,s)` how a noised decimal is printed).
"""

from __future__ import annotations

import re

from deid.backends.mysql.quoting import quote_identifier
from deid.schema import Column, Kind

# Every session of the scrub: values read and written in UTC and as UTF-8; a value a column cannot hold is
# an error, not a warning and a clipped value (STRICT_ALL_TABLES: also for non-transactional tables). The
# default backslash escapes are kept: the static rows' condition is rendered for them (scrub.condition_sql).
SESSION = (
    "SET NAMES utf8mb4",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
)

_BASE = re.compile(r"\s*([a-z0-9]+)")
_FRACTION = re.compile(r"\((\d)\)")
_SPATIAL = frozenset(
    {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
     "geometrycollection"}
)  # fmt: skip


def base_type(column: Column) -> str:
    """The bare type name of COLUMN_TYPE: "int" of `int(10) unsigned`, "enum" of `enum('a')`."""
    found = _BASE.match(column.data_type.lower())
    return found[1] if found else ""


def _fraction_digits(column: Column) -> int:
    found = _FRACTION.search(column.data_type)
    return int(found[1]) if found else 0


def read_sql(column: Column) -> str:
    """The column's value as `(value)::text` gives it on PostgreSQL (NULL for NULL)."""
    q = quote_identifier(column.name)
    base = base_type(column)
    if column.kind is Kind.FLOAT:
        return f"CAST({q} AS DOUBLE)"
    if column.kind in (Kind.TIMESTAMP, Kind.TIME) and _fraction_digits(column):
        # every declared digit is printed: trailing zeros go, then a bare point (PostgreSQL's text)
        return f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST({q} AS CHAR)))"
    if column.kind is Kind.BYTEA:
        return f"CONCAT('\\\\x', LOWER(HEX({q})))"
    if base == "bit":
        return f"BIN({q})"
    if base in _SPATIAL:
        return f"ST_AsText({q})"
    return q


def key_sql(column: Column) -> str:
    """A key column's text, from which the server makes the same value again (write_key)."""
    q = quote_identifier(column.name)
    if column.kind is Kind.BYTEA:
        return f"HEX({q})"
    if column.kind is Kind.FLOAT:
        return f"CAST({q} AS DOUBLE)"
    return q


def key_refused(column: Column) -> str | None:
    """Why a key column cannot carry rows back to their place, or None."""
    base = base_type(column)
    if base == "bit" or base in _SPATIAL:
        return f"its type {column.data_type} has no text that the server reads back as the same key"
    return None


def carry_sql(column: Column) -> str:
    """A column's value as text from which carry_write makes the very same value (a rebuilt table's columns
    that are not rewritten): bytes and geometries (SRID and WKB, as a dump writes them) in hex, BIT in
    binary digits, FLOAT widened to DOUBLE (its shortest exact text reads back as the same float); the rest
    is the server's own text, which it reads back as it was (dates with every declared digit, TIMESTAMP in
    the session's UTC)."""
    q = quote_identifier(column.name)
    base = base_type(column)
    if column.kind is Kind.BYTEA or base in _SPATIAL:
        return f"HEX({q})"
    if base == "bit":
        return f"BIN({q})"
    if column.kind is Kind.FLOAT:
        return f"CAST({q} AS DOUBLE)"
    return q


def carry_write(column: Column, staged: str) -> str:
    """The value again from carry_sql's text `staged`."""
    base = base_type(column)
    if column.kind is Kind.BYTEA or base in _SPATIAL:
        return f"UNHEX({staged})"
    if base == "bit":
        return f"CAST(CONV({staged}, 2, 10) AS UNSIGNED)"
    return staged


def write_sql(column: Column, staged: str) -> str:
    """The column's new value from `staged`, the SQL of a vector form's output text."""
    base = base_type(column)
    if column.kind is Kind.BYTEA:  # '\x0aff' (PostgreSQL's bytea text, as a constant is written)
        return f"UNHEX(SUBSTRING({staged}, 3))"
    if column.kind is Kind.INET:  # MariaDB's inet4/inet6 take an address without a mask length
        return f"SUBSTRING_INDEX({staged}, '/', 1)"
    if base == "bit":
        return f"CAST(CONV({staged}, 2, 10) AS UNSIGNED)"
    if base in _SPATIAL:
        return f"ST_GeomFromText({staged})"
    return staged


_INTEGERS = {"tinyint": "smallint", "smallint": "smallint", "mediumint": "integer", "int": "integer"}


def vector_type(column: Column) -> str:
    """The column's type in the spelling the vector forms read (PostgreSQL's), for its Target."""
    base, spelled = base_type(column), column.data_type.lower()
    unsigned = "unsigned" in spelled
    if column.kind is Kind.TEXT:
        if base in ("char", "varchar") and column.max_length is not None:
            return f"{'character' if base == 'char' else 'character varying'}({column.max_length})"
        return "text"
    if column.kind is Kind.INTEGER:
        if base == "year":
            return "smallint"
        if base == "bigint":
            return "numeric(20,0)" if unsigned else "bigint"
        wide = _INTEGERS.get(base, "bigint")
        return {"smallint": "integer", "integer": "bigint"}.get(wide, wide) if unsigned else wide
    if column.kind is Kind.NUMERIC:
        found = re.search(r"\((\d+)(?:,\s*(\d+))?\)", spelled)
        return f"numeric({found[1]},{found[2] or 0})" if found else "numeric"
    if column.kind is Kind.FLOAT:
        return "real" if base == "float" else "double precision"
    if column.kind is Kind.TIMESTAMP:
        return "timestamp without time zone"  # TIMESTAMP too: read and written in UTC
    if column.kind is Kind.TIME:
        return "time without time zone"
    return {
        Kind.DATE: "date",
        Kind.JSON: "json",
        Kind.BYTEA: "bytea",
        Kind.UUID: "uuid",
        Kind.INET: "inet",
    }.get(column.kind, column.data_type)
