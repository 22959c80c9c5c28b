"""Faker-generated dictionaries of fake values, from which fake.* transformers pick by keyed hash.

Each dictionary comes from its own Faker instance with a fixed seed, so it is the same on every machine for
the locked Faker version, and does not depend on which other dictionaries a scrub loads: the same input
value and salt pick the same entry everywhere. The entries are generated once and shipped as text files
beside this module (`dictionary_data/<name>.txt`, one entry per line), so a run reads a few kB instead of
importing Faker (about 40 MB of the process's memory); a test checks that the files are exactly what the
locked Faker generates, and `write_files()` rewrites them after a Faker upgrade:
`.venv/bin/python -c "from deid.transformers.dictionaries import write_files; write_files()"`.

Sizes are constants because the forms embed them (the pick is entry `keyed hash mod size`, in the vector
forms and in an engine's SQL forms alike); `generate()` fails loudly if a Faker upgrade can no longer produce
that many distinct values.
"""

from __future__ import annotations

import zlib
from functools import cache
from pathlib import Path

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


def write_files() -> None:
    """Regenerate every dictionary file from Faker (after a Faker upgrade; the tests say when)."""
    DATA.mkdir(exist_ok=True)
    for name in NAMES:
        (DATA / f"{name}.txt").write_text("\n".join(generate(name)) + "\n", encoding="utf-8")
        print(f"wrote {DATA / name}.txt ({SIZES[name]} entries)")
