"""What every engine's rebase shares: the marker line that makes a rerun idempotent, and the facts recorded
per id source (a sequence, an AUTO_INCREMENT counter). The engines differ in where ids come from and where
the marker is kept (a sequence's comment, a table's comment); the line and the facts are the same.

A rerun on the same copy must not add the offset twice, and by then the source no longer shows production's
high water, so the rebase writes it down in one line, keeping any comment production had above it:

    deid rebase: production high water 12345 (logical date 2026-11-28, offset 536870911, next value ...)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MARKER = re.compile(
    r"^deid rebase: production high water (-?\d+) \(logical date (\d{4}-\d{2}-\d{2}), "
    r"offset (\d+), next value (-?\d+)\)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Marker:
    high_water: int
    logical_date: str
    offset: int
    next_value: int


def read_marker(comment: str | None) -> Marker | None:
    """The last marker line of a comment; None when it has none."""
    matches = list(MARKER.finditer(comment or ""))
    if not matches:
        return None
    last = matches[-1]
    return Marker(int(last[1]), last[2], int(last[3]), int(last[4]))


def with_marker(comment: str | None, marker: Marker) -> str:
    """The comment with its marker line replaced by `marker`; the rest of production's comment is kept."""
    kept = MARKER.sub("", comment or "").rstrip()
    line = (
        f"deid rebase: production high water {marker.high_water} (logical date {marker.logical_date}, "
        f"offset {marker.offset}, next value {marker.next_value})"
    )
    return f"{kept}\n\n{line}" if kept else line


@dataclass(frozen=True)
class Facts:
    """What the run record keeps of one id source's rebase (names and id numbers, never row data)."""

    sequence: str
    columns: tuple[str, ...]
    high_water: int
    offset: int
    next_value: int
    limit: int
    limited_by: tuple[str, ...]
    clamped: bool
    rerun: bool

    def record(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "columns": list(self.columns),
            "high_water": self.high_water,
            "offset": self.offset,
            "next_value": self.next_value,
            "limit": self.limit,
            "limited_by": list(self.limited_by),
            "clamped": self.clamped,
            "rerun": self.rerun,
        }
