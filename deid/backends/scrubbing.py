"""What a scrub is asked and what it answers, whatever the engine: the contract between the scrub step and a
backend's scrub (Backend.prepare_scrub, scrub_tables, finish_scrub)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# A table is split over sessions from this many (estimated) rows: below it, setting sessions up costs more
# than it saves.
SPLIT_MIN_ROWS = 200_000
# A table is streamed through the vector forms from this many (estimated) rows: below it the stream's set-up
# (a second session, the swap's catalog reads, the kernels' first load) costs more than keying the values in
# SQL (the demo's ten small tables: 1.5 s streamed, 0.8 s by the SQL forms). config: stream_from_rows.
STREAM_MIN_ROWS = 10_000


@dataclass(frozen=True)
class TableResult:
    table: str
    rows: int
    seconds: float
    # "streamed" (vector forms), "rewritten" (SQL forms), "emptied", "untouched" or "already scrubbed" (by an
    # earlier attempt)
    action: str
    sessions: int = 1  # sessions that shared the rewrite
    part: str | None = None  # "i/n": part i of the n a big table was split into
    # what the stream counted of each column (deid.vector.tally), for streamed tables
    tallies: dict | None = field(default=None, compare=False)


Progress = Callable[[TableResult], None]


@dataclass(frozen=True)
class Scrubbing:
    """How tables are scrubbed: tables of `stream_from_rows` rows or more stream through the vector forms
    (unless `stream` is False), and one of `split_from_rows` rows or more is split into `parts` (Airflow
    tasks; the CLI runs them side by side) when it streams, or shared by `sessions` sessions when the SQL
    forms rewrite it. `sessions` also validate the foreign keys the scrub left unchecked."""

    sessions: int = 1
    parts: int = 1
    split_from_rows: int = SPLIT_MIN_ROWS
    stream: bool = True
    stream_from_rows: int = STREAM_MIN_ROWS

    def parts_of(self, row_estimate: int) -> int:
        return self.parts if row_estimate >= self.split_from_rows else 1
