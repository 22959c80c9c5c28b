"""What `deid history`, `deid status` and the end of `deid run` print from run records: one line per run,
facts per copy, a run's summary. Counts and words come from deid.records.counts, as the report's do."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from deid.records.counts import run_counts


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
    counts = run_counts(record)
    if counts.checks:
        facts.append(counts.checks_text())
    if record.get("subset"):
        facts.append(f"SUBSET of {len(record['subset'])} tables (the others are empty)")
    upload = record.get("upload")
    if upload and not upload.get("ok"):
        facts.append("upload FAILED")
    return facts


def summary_lines(record: Mapping[str, Any]) -> list[str]:
    """What a run did, in a few lines: tables scrubbed, sequences rebased, migrations, checks, copies."""
    counts, lines = run_counts(record), []
    if record.get("tables"):  # the scrub ran
        lines.append(counts.tables_text())
    if counts.sequences:
        lines.append(f"rebased {counts.sequences} sequences")
    if record.get("migrations") is not None:
        lines.append(f"migrations applied: {', '.join(record['migrations']) or 'none'}")
    if counts.checks:
        lines.append(f"validation: {counts.checks_text()}")
    for w in (record.get("expectations") or {}).get("waivers") or []:
        lines.append(
            f"waived by the rule file: {w['check']} on {w['place']} ({w['matched']} matched of "
            f"{w['checked']} checked): {w['reason']}"
        )
    if record.get("published"):
        lines.append(f"published {record['published']}; kept: {', '.join(record.get('kept', [])) or 'none'}")
    for key, says in (("replaced", "replaced an older build of the same date"), ("dropped", "dropped")):
        if record.get(key):
            lines.append(f"{says}: {', '.join(record[key])}")
    return lines


def _seconds(value: Any) -> str:
    return f"{value:.1f}s" if isinstance(value, int | float) else "?s"
