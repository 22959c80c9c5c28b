"""Names of tables, sequences and columns as deid writes them: one spelling per object, never ambiguous.

A rule file keys its tables `schema.table`, and deid's records, plans and messages name columns
`schema.table.column`. A plain dot-join is ambiguous as soon as a name holds a dot: schema `dot.schema` with
table `t` and schema `dot` with table `schema.t` would both read `dot.schema.t`, and one table would get the
other's rules. So a part that cannot be written bare is double-quoted, SQL style (`""` for a quote inside):

    public.learners            schema public, table learners
    "dot.schema".t             schema dot.schema, table t
    dot."schema.t"             schema dot, table schema.t
    public."Learners 2"."e.mail"   a column e.mail of table "Learners 2"

A key is deid's spelling, not SQL: a backend writes the names in its engine's SQL (Backend.quote_table,
deid.backends.quoting).

Matching is exact (case, blanks and unicode as written): `public.Learners` is table `Learners`, never
`learners`. A key with more parts than its kind has (`dot.schema.t` for a table) is refused as ambiguous,
with the spellings it could mean.
"""

from __future__ import annotations

import re

DEFAULT_SCHEMA = "public"
_BARE = re.compile(r'[^."\s](?:[^."]*[^."\s])?')  # no dot or quote, no blank at either end


class BadName(ValueError):
    """A key that does not name one object; the message says why and how to write it."""


def part(name: str) -> str:
    """One name as it appears in a key: bare when that is unambiguous, else double-quoted."""
    if _BARE.fullmatch(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def key(*names: str) -> str:
    """The key of an object from its names: key("public", "t") == "public.t", key("a.b", "t") == '"a.b".t'."""
    return ".".join(part(n) for n in names)


def split(text: str) -> list[str]:
    """The names in a key, quotes resolved. Raises BadName for a key that cannot be read."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            j, name = i + 1, []
            while True:
                end = text.find('"', j)
                if end < 0:
                    raise BadName(f"'{text}': a quote is not closed")
                name.append(text[j:end])
                if text.startswith('"', end + 1):  # "" is a quote inside the name
                    name.append('"')
                    j = end + 2
                    continue
                i = end + 1
                break
            parts.append("".join(name))
        else:
            end = text.find(".", i)
            bare = text[i:] if end < 0 else text[i:end]
            if not _BARE.fullmatch(bare):
                raise BadName(
                    f"'{text}': '{bare}' must be written in double quotes (it is empty, holds a quote, or "
                    "starts or ends with a blank)"
                )
            parts.append(bare)
            i = n if end < 0 else end
        if i == n:
            return parts
        if text[i] != ".":
            raise BadName(f"'{text}': a quoted name must be followed by '.' or end the key")
        i += 1
        if i == n:
            raise BadName(f"'{text}': ends with '.'")


def table_key(text: str) -> str:
    """The canonical key of a table written `table`, `schema.table` or with quoted parts.

    `learners` means `public.learners`: deid's default namespace (the engine's default schema, or the
    one namespace of an engine without schemas). Raises BadName when the text has more
    than two parts (a dot inside a name must be quoted, or the key is ambiguous)."""
    names = split(text)
    if len(names) == 1:
        return key(DEFAULT_SCHEMA, names[0])
    if len(names) == 2:
        return key(*names)
    readings = [key(".".join(names[:i]), ".".join(names[i:])) for i in range(1, len(names))]
    raise BadName(
        f"'{text}' is ambiguous: a dot inside a schema or table name must be in double quotes, e.g. "
        + " or ".join(readings)
    )


def table_names(table: str) -> tuple[str, str]:
    """(schema, table) of a canonical table key."""
    names = split(table)
    if len(names) != 2:
        raise BadName(f"'{table}' is not schema.table")
    return names[0], names[1]


def column_key(table: str, column: str) -> str:
    """`schema.table.column` for a column of a table given by its key."""
    return f"{table}.{part(column)}"


def column_names(text: str) -> tuple[str, str, str]:
    """(schema, table, column) of a canonical column key."""
    names = split(text)
    if len(names) != 3:
        raise BadName(f"'{text}' is not schema.table.column")
    return names[0], names[1], names[2]
