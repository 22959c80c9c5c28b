"""Faker-generated dictionaries of fake values, picked inside the database by keyed hash.

Each dictionary comes from its own Faker instance with a fixed seed, so it is the same on every machine for
the locked Faker version, and does not depend on which other dictionaries a scrub loads: the same input
value and salt pick the same entry everywhere. The entries are generated once and shipped as text files
beside this module (`dictionary_data/<name>.txt`, one entry per line), so a run reads a few kB instead of
importing Faker (about 40 MB of the process's memory); a test checks that the files are exactly what the
locked Faker generates, and `write_files()` rewrites them after a Faker upgrade:
`.venv/bin/python -c "from deid.transformers.dictionaries import write_files; write_files()"`.

Sizes are constants because the SQL forms embed them (the pick is `mod(keyed hash, size)`); `generate()`
fails loudly if a Faker upgrade can no longer produce that many distinct values.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from deid.transformers.base import quote_literal
from deid.transformers.support import SCHEMA, dbapi_connection, prf_int_sql

SEED = 20261128
# en_US has about 690 distinct first names; 600 are reached within a few thousand draws.
SIZES = {"first_name": 600, "last_name": 1000, "street_address": 5000, "company": 3000, "user_name": 3000}
NAMES = tuple(sorted(SIZES))
_MAX_DRAWS = 50  # per wanted entry, before giving up
DATA = Path(__file__).with_name("dictionary_data")


@cache
def entries(name: str) -> tuple[str, ...]:
    """The dictionary's values, in their fixed order: exactly SIZES[name] of them, from the shipped file."""
    if name not in SIZES:
        raise KeyError(f"no dictionary named {name!r}")
    values = tuple((DATA / f"{name}.txt").read_text(encoding="utf-8").splitlines())
    if len(values) != SIZES[name] or len(set(values)) != len(values):
        raise RuntimeError(
            f"{DATA / name}.txt must hold {SIZES[name]} distinct lines: regenerate it with write_files()"
        )
    return values


def generate(name: str) -> tuple[str, ...]:
    """The dictionary as the locked Faker makes it: values de-duplicated, in the order first drawn."""
    from faker import Faker

    if name not in SIZES:
        raise KeyError(f"no dictionary named {name!r}")
    faker = Faker("en_US")
    faker.seed_instance(SEED + zlib.crc32(name.encode()))
    make = getattr(faker, name)
    seen: dict[str, None] = {}
    for _ in range(SIZES[name] * _MAX_DRAWS):
        seen.setdefault(" ".join(make().split()), None)  # no newlines or double spaces
        if len(seen) == SIZES[name]:
            return tuple(seen)
    raise RuntimeError(f"Faker produced only {len(seen)} distinct {name} values; lower SIZES[{name!r}]")


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


def write_files() -> None:
    """Regenerate every dictionary file from Faker (after a Faker upgrade; the tests say when)."""
    DATA.mkdir(exist_ok=True)
    for name in NAMES:
        (DATA / f"{name}.txt").write_text("\n".join(generate(name)) + "\n", encoding="utf-8")
        print(f"wrote {DATA / name}.txt ({SIZES[name]} entries)")
