"""'Did you mean ...?' for every name a user types: keys, transformers, classes, tables, columns."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' (with a leading space) or '' when nothing is close."""
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        close = [lowered[name.lower()]] if name.lower() in lowered else []
    return f" Did you mean '{close[0]}'?" if close else ""
