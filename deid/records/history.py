"""What `deid history` and `deid status` print from run records: one line per run, facts per copy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def format_history(records: Iterable[Mapping[str, Any]]) -> str:
    """One line per run, the most recent first: date, outcome, when, how long, via, rules, validation."""
    lines = []
    for record in records:
        outcome = record.get("outcome", "?")
        if outcome == "failed":
            verdict = f"FAILED at {record.get('failed_step') or '?'}"
        elif outcome == "step":
            verdict = f"step {', '.join(record.get('steps') or {}) or '?'}"
        elif outcome == "kept":
            verdict = f"kept {(record.get('kept_instead_of_published') or {}).get('copy') or '?'}"
        else:
            verdict = f"published {record.get('published') or '?'}"
        facts = [
            str(record.get("logical_date", "?")),
            f"{verdict:<32}",
            f"started {record.get('started_at', '?')}",
            _seconds(record.get("seconds")),
            str(record.get("via", "?")),
        ]
        facts += run_facts(record)
        lines.append("  ".join(facts))
        if outcome == "failed" and record.get("error"):
            lines.append(f"    {str(record['error']).splitlines()[0]}")
        report = (record.get("files") or {}).get("report")
        if report:
            lines.append(f"    report: {report}")
    return "\n".join(lines) or "no runs recorded"


def run_facts(record: Mapping[str, Any]) -> list[str]:
    """What a run found, briefly: rules version, rows, validation, subset (shown by history and status)."""
    facts = []
    rules = record.get("rules") or {}
    if rules.get("git_commit"):
        facts.append(
            f"rules commit {rules['git_commit'][:10]}{' (modified)' if rules.get('git_dirty') else ''}"
        )
    counts = record.get("row_counts") or {}
    if counts:
        facts.append(f"{sum(c.get('rows') or 0 for c in counts.values()):,} rows in {len(counts)} tables")
    expectations = (record.get("expectations") or {}).get("expectations") or []
    if expectations:
        passed = sum(1 for e in expectations if e.get("ok"))
        facts.append(f"{passed}/{len(expectations)} expectations passed")
    if record.get("subset"):
        facts.append(f"SUBSET of {len(record['subset'])} tables (the others are empty)")
    upload = record.get("upload")
    if upload and not upload.get("ok"):
        facts.append("upload FAILED")
    return facts


def _seconds(value: Any) -> str:
    return f"{value:.1f}s" if isinstance(value, int | float) else "?s"
