"""Validation in the same pass: while the rows stream through the vector forms, every input and output value
of every scrubbed column is counted, so validation needs no sample and reads no row again for it.

Per column (static rows apart, which pass through unchanged): rows, NULLs in, NULLs made or lost, values left
unchanged (output equal to the same row's input), and how many output values occur anywhere among the
column's input values (production's values, as cloned). The last needs every input seen before any output
can be judged, so both sides are kept as 64-bit digests (a seeded hash, new random seed per table, never
stored beyond the run's temporary folder: no value, and no digest that could be checked against a guess
later) spilled to a temporary folder in hash partitions, and compared partition by partition at the end:
memory stays a few batches and one partition, whatever the table's size. The parts of a split table, each
in its own task, share one seed and keep their digests in the copy until the scrub's finish compares them
(the backend's scrub), which drops them. A digest collision can only
count a value as found that is not, never the reverse.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# digests are compared one hash partition (the top bits) at a time, sorted in place and searched: at 10M rows
# the comparison peaked 8 MB above the stream with 32 partitions (np.isin of 16: 78 MB, and 6x the time)
PARTITION_BITS = 5
PARTITIONS = 1 << PARTITION_BITS
# digests held per column and side before they are spilled: one sort and PARTITIONS appends per 512 kB, not
# per batch (per-batch spills cost more than the digests themselves); held for every searched column and
# both sides at once, so 2 MB each held 20 MB for the benchmark's users
SPILL_VALUES = 1 << 16


@dataclass
class ColumnTally:
    """What the stream saw of one column (rows it scrubbed; static rows counted apart)."""

    rows: int = 0
    nulls_in: int = 0
    nulls_made: int = 0  # NULL out where the input was not (only `null` should)
    nulls_lost: int = 0  # a value out where the input was NULL (never)
    unchanged: int = 0  # non-NULL and equal to the same row's input
    static: int = 0
    # non-NULL outputs that break the transformer's promised shape, for the columns with a vector predicate
    # (deid.vector.shapes); None for the others, whose shape validation checks in SQL
    out_of_shape: int | None = None
    # output values occurring among the inputs, set by close() for the columns searched
    found_in_production: int | None = None

    def as_counts(self) -> dict[str, int]:
        counts = {k: v for k, v in vars(self).items() if v is not None}
        return counts


@dataclass
class Tally:
    """The tallies of one table's stream: `add` each batch (from any thread), then `close`."""

    columns: tuple[str, ...]
    # the columns whose outputs are looked up among production's values: those whose outputs are built
    # unlike any real value (validation judges only those; names picked from a dictionary occur in real
    # data by design), so the others cost no digests
    searched: frozenset[str] = frozenset()
    seed: int = field(default_factory=lambda: secrets.randbits(64))
    # column -> the predicate of its transformer's shape over a batch of outputs (deid.vector.shapes)
    shapes: Mapping[str, Callable[[pa.Array], pa.Array]] = field(default_factory=dict)
    tallies: dict[str, ColumnTally] = field(init=False)
    _folder: tempfile.TemporaryDirectory = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _held: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.tallies = {c: ColumnTally(out_of_shape=0 if c in self.shapes else None) for c in self.columns}
        self._folder = tempfile.TemporaryDirectory(prefix="deid-tally-")  # 0700; removed by close()

    def add(self, column: str, inputs: pa.Array, outputs: pa.Array, static: pa.Array | None = None) -> None:
        """One batch of a column: its inputs and outputs, row by row, and which rows are static (kept)."""
        if static is not None:
            scrubbed = pc.invert(pc.fill_null(static, False))
            kept = int(pc.sum(pc.fill_null(static, False)).as_py() or 0)
            everything = inputs  # production's values, static rows included
            inputs, outputs = inputs.filter(scrubbed), outputs.filter(scrubbed)
        else:
            kept, everything = 0, inputs
        given, made = inputs.is_valid(), outputs.is_valid()
        counts = {
            "rows": len(inputs),
            "nulls_in": len(inputs) - _true(given),
            "nulls_made": _true(pc.and_(given, pc.invert(made))),
            "nulls_lost": _true(pc.and_(pc.invert(given), made)),
            "unchanged": _true(pc.fill_null(pc.equal(inputs, outputs), False)),
            "static": kept,
        }
        if column in self.shapes:
            produced = outputs.filter(made) if outputs.null_count else outputs
            if not (pa.types.is_string(produced.type) or pa.types.is_large_string(produced.type)):
                produced = pc.cast(produced, pa.string())
            counts["out_of_shape"] = len(produced) - _true(pc.fill_null(self.shapes[column](produced), False))
        searched = column in self.searched
        if searched:
            from deid.vector.digest64 import digests  # numba on first use: see digest64

            seen, produced = digests(everything, self.seed), digests(outputs, self.seed)
        with self._lock:
            tally = self.tallies[column]
            for name, value in counts.items():
                setattr(tally, name, getattr(tally, name) + value)
            if searched:
                self._spill(column, "in", seen)
                self._spill(column, "out", produced)

    def close(self) -> dict[str, dict[str, int]]:
        """Compare each column's outputs with its inputs, partition by partition; the counts per column."""
        try:
            self._flush_all()
            for column in self.searched:
                self.tallies[column].found_in_production = found_in_inputs(
                    lambda side, p, column=column: self._read(column, side, p)
                )
            return self.counts()
        finally:
            self._folder.cleanup()

    def counts(self) -> dict[str, dict[str, int]]:
        """The counts per column so far (found_in_production once close has set it)."""
        return {column: tally.as_counts() for column, tally in self.tallies.items()}

    def spilled(self) -> Iterator[tuple[str, str, int, np.ndarray]]:
        """Every digest taken so far, as (column, side, partition, sorted runs of digests): for a table
        split into parts, whose outputs can be judged only once every part's inputs are in."""
        self._flush_all()
        for column in sorted(self.searched):
            for side in ("in", "out"):
                for p in range(PARTITIONS):
                    values = self._read(column, side, p)
                    if len(values):
                        yield column, side, p, values

    def discard(self) -> None:
        self._folder.cleanup()

    def __enter__(self) -> Tally:
        return self

    def __exit__(self, *exc) -> None:
        self._folder.cleanup()  # close() may have done it already: cleanup is idempotent

    def _path(self, column: str, side: str, partition: int) -> Path:
        return Path(self._folder.name) / f"{self.columns.index(column)}-{side}-{partition}"

    def _spill(self, column: str, side: str, values: np.ndarray) -> None:
        held = self._held.setdefault((column, side), [])
        held.append(values)
        if sum(len(h) for h in held) >= SPILL_VALUES:
            self._flush(column, side)

    def _flush_all(self) -> None:
        for column, side in list(self._held):
            self._flush(column, side)

    def _flush(self, column: str, side: str) -> None:
        """The held digests, sorted, appended to their partitions' files (partition = the top bits)."""
        values = np.sort(np.concatenate(self._held.pop((column, side), [np.zeros(0, np.uint64)])))
        shift = np.uint64(64 - PARTITION_BITS)
        bounds = np.searchsorted(values, np.arange(PARTITIONS + 1, dtype=np.uint64) << shift)
        bounds[-1] = len(values)  # PARTITIONS << shift wraps to 0 in 64 bits: the last one ends at the end
        for p in range(PARTITIONS):
            chunk = values[bounds[p] : bounds[p + 1]]
            if len(chunk):
                with open(self._path(column, side, p), "ab") as f:
                    chunk.tofile(f)

    def _read(self, column: str, side: str, partition: int) -> np.ndarray:
        path = self._path(column, side, partition)
        return np.fromfile(path, np.uint64) if path.exists() else np.zeros(0, np.uint64)


def found_in_inputs(read: Callable[[str, int], np.ndarray]) -> int:
    """How many output digests of one column occur among its input digests; `read(side, partition)` gives a
    partition's digests ("in" or "out"), so memory holds one partition at a time."""
    found = 0
    for p in range(PARTITIONS):
        outputs = read("out", p)
        inputs = read("in", p)
        if len(outputs) and len(inputs):
            # sorted in place and searched: np.isin with np.unique held several copies of the partition
            # (78 MB above the stream at 10M rows)
            inputs.sort()
            at = np.searchsorted(inputs, outputs)
            np.minimum(at, len(inputs) - 1, out=at)
            found += int(np.count_nonzero(inputs[at] == outputs))
    return found


def _true(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)
