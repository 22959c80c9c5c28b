"""1M values through the vector forms of shift_date, truncate_date and noise: wall and CPU seconds, best of 3.

    PYTHONPATH=. .venv/bin/python -m bench.vector_dates [--values 1000000]

No server: the values are generated as PostgreSQL prints them (dates 1915-2024, timestamps 1938-2033 with
microseconds, amounts with 2 decimals, floats), the key is a fixed salt, and `by:` reads 100,000 entities.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.schema import Column, Kind
from deid.transformers import get
from deid.transformers.base import Batch, Target
from deid.vector.prf import Key


def _texts(rng: np.random.Generator, n: int) -> dict[str, pa.Array]:
    stamps = pc.cast(pa.array(rng.integers(-(10**15), 2 * 10**15, n)).cast(pa.timestamp("us")), pa.string())
    return {
        "date": pc.cast(
            pa.array(rng.integers(-20000, 20000, n).astype(np.int32)).cast(pa.date32()), pa.string()
        ),
        "timestamp": stamps,
        "timestamptz": pc.binary_join_element_wise(stamps, "+00", ""),
        "integer": pc.cast(pa.array(rng.integers(-(10**6), 10**6, n)), pa.string()),
        "bigint": pc.cast(pa.array(rng.integers(-(2**62), 2**62, n)), pa.string()),
        "numeric": pc.cast(
            pa.array(rng.integers(-(10**9), 10**9, n) / 100).cast(pa.decimal128(12, 2)), pa.string()
        ),
        "float8": pc.cast(pa.array(rng.standard_normal(n) * 1e4), pa.string()),
        "real": pc.cast(pa.array((rng.standard_normal(n) * 1e4).astype(np.float32)), pa.string()),
        "entity": pc.cast(pa.array(rng.integers(0, 100_000, n)), pa.string()),
    }


CASES = [
    ("shift_date", {}, "date", Kind.DATE, "date"),
    ("shift_date", {"by": "entity"}, "date", Kind.DATE, "date"),
    ("shift_date", {}, "timestamp", Kind.TIMESTAMP, "timestamp"),
    ("shift_date", {}, "timestamptz", Kind.TIMESTAMP, "timestamptz"),
    ("truncate_date", {"unit": "month"}, "date", Kind.DATE, "date"),
    ("truncate_date", {"unit": "week"}, "timestamptz", Kind.TIMESTAMP, "timestamptz"),
    ("noise", {}, "integer", Kind.INTEGER, "integer"),
    ("noise", {"by": "entity"}, "bigint", Kind.INTEGER, "bigint"),
    ("noise", {}, "numeric(12,2)", Kind.NUMERIC, "numeric"),
    ("noise", {"min": 0, "max": 1000000}, "numeric", Kind.NUMERIC, "numeric"),
    ("noise", {}, "float8", Kind.FLOAT, "float8"),
    ("noise", {"by": "entity"}, "float8", Kind.FLOAT, "float8"),
    ("noise", {}, "real", Kind.FLOAT, "real"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--values", type=int, default=1_000_000)
    n = parser.parse_args().values
    texts = _texts(np.random.default_rng(1), n)
    key = Key.for_salt("bench")
    for name, params, sql_type, kind, data in CASES:
        transformer = get(name)
        parsed = transformer.parse_params(params)
        target = Target(column=Column("v", sql_type, kind), value='"v"', kind=kind, sql_type=sql_type)
        transformer.vector(
            Batch(texts[data][:100], key, lambda _: texts["entity"][:100]), target, parsed
        )  # compile
        batch = Batch(texts[data], key, lambda _: texts["entity"])
        walls, cpus = [], []
        for _ in range(3):
            wall, cpu = time.perf_counter(), time.process_time()
            transformer.vector(batch, target, parsed)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        print(f"{name:14} {sql_type:14} {str(params):36} wall {min(walls):6.3f} s   cpu {min(cpus):6.3f} s")


if __name__ == "__main__":
    main()
