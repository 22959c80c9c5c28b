"""The Faker dictionaries (deid.transformers.dictionaries) inside the working copy: loaded into
`_deid.dictionary`, and an entry picked by keyed hash in SQL."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from deid.backends.postgresql.forms.support import SCHEMA, dbapi_connection, prf_int_sql
from deid.backends.postgresql.quoting import quote_literal
from deid.transformers.dictionaries import NAMES, SIZES, entries


def load_dictionaries(connection: Any, names: Iterable[str]) -> None:
    """Load the named dictionaries into _deid.dictionary, replacing earlier copies (support_sql() first).

    `connection`: a SQLAlchemy Connection (or DB-API connection); one INSERT of bound arrays per dictionary.
    """
    wanted = sorted(set(names))
    unknown = [n for n in wanted if n not in SIZES]
    if unknown:
        raise KeyError(f"unknown dictionaries: {', '.join(unknown)} (known: {', '.join(NAMES)})")
    with dbapi_connection(connection).cursor() as cursor:
        for name in wanted:
            values = list(entries(name))
            cursor.execute(f"DELETE FROM {SCHEMA}.dictionary WHERE name = %s", (name,))
            cursor.execute(
                f"INSERT INTO {SCHEMA}.dictionary (name, idx, value) "
                "SELECT %s, i - 1, v FROM unnest(%s::text[]) WITH ORDINALITY AS d(v, i)",
                (name, values),
            )


@cache
def slot_width(name: str) -> int:
    """Bytes (UTF-8) of the dictionary's longest entry: every entry gets a slot this wide (see slot)."""
    return max(len(v.encode("utf-8")) for v in entries(name))


def slot(name: str, index_sql: str, entry: str = "value") -> str:
    """SQL for entry `index_sql` (0-based) of dictionary `name`, as the SQL expression `entry` of `value`
    makes it (it must not lengthen an entry nor end it with a space).

    The statement lays the dictionary out once (an uncorrelated subquery, so evaluated once) as one bytea of
    fixed-width slots, entries padded with spaces (none ends with one); an entry is then a substring, about
    a seventh of the cost of an index lookup per row, and `entry` is applied to each entry once, not per row.
    """
    width = slot_width(name)
    utf8 = f"convert_to({entry}, 'UTF8')"
    laid_out = (
        f"(SELECT string_agg({utf8} || convert_to(repeat(' ', {width} - octet_length({utf8})), 'UTF8'), "
        f"''::bytea ORDER BY idx) FROM {SCHEMA}.dictionary WHERE name = {quote_literal(name)})"
    )
    return f"rtrim(convert_from(substr({laid_out}, ({index_sql})::int * {width} + 1, {width}), 'UTF8'), ' ')"


def pick(name: str, message_sql: str, entry: str = "value") -> str:
    """SQL for the entry of dictionary `name` that the keyed hash of `message_sql` selects (NULL for NULL),
    as `entry` makes it (see slot)."""
    return slot(name, f"mod({prf_int_sql(message_sql)}, {SIZES[name]})", entry)
