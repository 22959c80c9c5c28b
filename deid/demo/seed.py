"""Seed the demo "production" database: make its rows (deid.demo.rows, the same for every engine and a given
seed) and have the engine of `url` create its schema and load them (deid.backends.<engine>.demo).

    python -m deid.demo.seed URL [--learners 100000] [--seed N]

URL names an empty database, of any engine that has a demo (its SQLAlchemy URL, or the engine's own URL).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from deid.backends import DEFAULT_ENGINE
from deid.db import backend_of
from deid.demo.engines import demo_support
from deid.demo.rows import (  # what tests read about the rows, under the names they always had
    DEFAULT_SEED,
    ID_TABLES,
    LEARNER_COLUMNS,
    TEST_ACCOUNTS,
    TEST_CARD_PAN,
    TEST_COURSES,
    tables,
)

__all__ = ["ID_TABLES", "LEARNER_COLUMNS", "TEST_ACCOUNTS", "TEST_CARD_PAN", "TEST_COURSES", "seed"]


def seed(url: str, learners: int = 2000, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Create the schema in the empty database at `url` and fill it; returns rows per "schema.table".

    `learners` counts all learners, the five static test accounts included.
    """
    rows = tables(learners, seed)  # refuses too few learners before anything connects
    return demo_support(backend_of(url).name).load(url, rows)


def schema_file(engine: str = DEFAULT_ENGINE) -> Path:
    """The learners production schema in the engine's SQL."""
    return demo_support(engine).SCHEMA_SQL


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Seed the demo 'learners' production database.")
    parser.add_argument("url", help="URL of an empty database (SQLAlchemy's, or the engine's own)")
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = seed(args.url, learners=args.learners, seed=args.seed)
    for table, count in counts.items():
        print(f"{table:28} {count:>10,}")
    print(f"seeded {sum(counts.values()):,} rows in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
