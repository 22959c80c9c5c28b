"""How hard validation looks: sample sizes and thresholds, with defaults sized for a nightly run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    # Leak check (a): rows per table matched by primary key between production and the working copy.
    sample_rows: int = 1000
    # Leak check (a): look for the sampled scrubbed values in the whole of production's column (one scan of
    # the production table per table with such columns). Off: only the same-row comparison runs.
    search_production: bool = True
    # PII scan (b): rows per table read from the kept text columns (None: every row).
    pii_scan_rows: int | None = 100_000
    # PII scan (b): a kept column fails when more of its rows than this match one pattern.
    pii_max_hits: int = 0
    # Free text (c): rows per kept text column whose tokens are compared with production's identifiers.
    free_text_rows: int | None = 20_000
    # Free text (c): a kept column fails when more distinct production identifiers than this occur in it.
    free_text_max_hits: int = 0
