"""PostgreSQL types onto deid's Kind, as data.

Keys are the names PostgreSQL gives a *base* type in pg_type.typname (domains are resolved to their base
first, arrays to their element), so `character varying(40)` is "varchar" and `timestamp with time zone` is
"timestamptz". Built-in types are looked up only in pg_catalog, so a user's type that happens to be called
"text" in another schema is not mistaken for the built-in one.
"""

from __future__ import annotations

from deid.schema import Kind

BUILTIN_KINDS: dict[str, Kind] = {
    "text": Kind.TEXT,
    "varchar": Kind.TEXT,
    "bpchar": Kind.TEXT,
    "char": Kind.TEXT,
    "name": Kind.TEXT,
    "int2": Kind.INTEGER,
    "int4": Kind.INTEGER,
    "int8": Kind.INTEGER,
    "numeric": Kind.NUMERIC,
    "float4": Kind.FLOAT,
    "float8": Kind.FLOAT,
    "bool": Kind.BOOLEAN,
    "date": Kind.DATE,
    "timestamp": Kind.TIMESTAMP,
    "timestamptz": Kind.TIMESTAMP,
    "time": Kind.TIME,
    "timetz": Kind.TIME,
    "interval": Kind.INTERVAL,
    "json": Kind.JSON,
    "jsonb": Kind.JSON,
    "bytea": Kind.BYTEA,
    "uuid": Kind.UUID,
    "inet": Kind.INET,
    "cidr": Kind.INET,
}

# Types that extensions install into a schema of the user's choice, so they are matched by name alone.
EXTENSION_KINDS: dict[str, Kind] = {
    "citext": Kind.TEXT,
}

# Types whose typmod is a character length: the declared n is typmod - 4 (VARHDRSZ).
LENGTH_TYPES = frozenset({"varchar", "bpchar"})
_VARHDRSZ = 4


def kind_of(schema: str, name: str, typtype: str) -> Kind:
    """The Kind of a base (non-domain, non-array) type, from its schema, name and pg_type.typtype."""
    if typtype == "e":
        return Kind.ENUM
    if schema == "pg_catalog" and name in BUILTIN_KINDS:
        return BUILTIN_KINDS[name]
    return EXTENSION_KINDS.get(name, Kind.OTHER)


def max_length(schema: str, name: str, typmod: int) -> int | None:
    """The n of varchar(n) / char(n), or None when the type has no declared length."""
    if schema == "pg_catalog" and name in LENGTH_TYPES and typmod >= _VARHDRSZ:
        return typmod - _VARHDRSZ
    return None
