"""MySQL and MariaDB column types onto deid's Kind, as data, and what a COLUMN_TYPE text says.

Keys are information_schema.COLUMNS.DATA_TYPE, the type's bare name ("int" for `int(10) unsigned`,
"enum" for `enum('a','b')`); the column keeps COLUMN_TYPE, the full spelling, as its data_type.
"""

from __future__ import annotations

import re

from deid.backends.mysql.quoting import quote_identifier  # the spelling both servers print in expressions
from deid.schema import Kind

KINDS: dict[str, Kind] = {
    "char": Kind.TEXT,
    "varchar": Kind.TEXT,
    "tinytext": Kind.TEXT,
    "text": Kind.TEXT,
    "mediumtext": Kind.TEXT,
    "longtext": Kind.TEXT,
    # tinyint(1) is what BOOLEAN means to MySQL, but the column holds any of -128..127: an integer
    "tinyint": Kind.INTEGER,
    "smallint": Kind.INTEGER,
    "mediumint": Kind.INTEGER,
    "int": Kind.INTEGER,
    "bigint": Kind.INTEGER,
    "year": Kind.INTEGER,
    "decimal": Kind.NUMERIC,
    "float": Kind.FLOAT,
    "double": Kind.FLOAT,
    "date": Kind.DATE,
    "datetime": Kind.TIMESTAMP,
    "timestamp": Kind.TIMESTAMP,
    "time": Kind.TIME,
    "json": Kind.JSON,  # MySQL 8's own type; MariaDB's JSON is a longtext (see is_mariadb_json)
    "binary": Kind.BYTEA,
    "varbinary": Kind.BYTEA,
    "tinyblob": Kind.BYTEA,
    "blob": Kind.BYTEA,
    "mediumblob": Kind.BYTEA,
    "longblob": Kind.BYTEA,
    "enum": Kind.ENUM,
    "uuid": Kind.UUID,  # MariaDB 10.7+
    "inet4": Kind.INET,  # MariaDB 10.10+
    "inet6": Kind.INET,  # MariaDB 10.5+
}
# Not listed, so Kind.OTHER: set (a comma-separated combination of its members, not one label), bit,
# the spatial types, MariaDB's vector.

LENGTH_TYPES = frozenset({"char", "varchar"})  # CHARACTER_MAXIMUM_LENGTH is their declared n, in characters

_LITERAL = re.compile(r"'((?:[^'\\]|''|\\.)*)'", re.S)
_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def kind_of(data_type: str) -> Kind:
    return KINDS.get(data_type.lower(), Kind.OTHER)


def max_length(data_type: str, character_maximum_length: int | None) -> int | None:
    """The n of varchar(n) / char(n), or None when the type has no declared character length."""
    if data_type.lower() in LENGTH_TYPES and character_maximum_length is not None:
        return int(character_maximum_length)
    return None


def labels(column_type: str) -> tuple[str, ...]:
    """The members of `enum('a','it''s')` or `set(...)`, as stored: ("a", "it's")."""
    return tuple(_unquote(body) for body in _LITERAL.findall(column_type))


def _unquote(body: str) -> str:
    """The value of a string literal's body as the server prints it: '' for a quote, backslash escapes."""
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char == "'":  # the first of ''
            out.append("'")
            i += 2
        elif char == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def is_mariadb_json(data_type: str, column: str, check_clause: str | None) -> bool:
    """MariaDB's JSON is an alias: the column is a longtext with a CHECK json_valid(`column`) of its own
    (named after the column). That check is what makes it JSON, so it is what is looked for."""
    return (
        data_type.lower() == "longtext"
        and check_clause is not None
        and (check_clause.strip().lower() == f"json_valid({quote_identifier(column)})".lower())
    )
