"""The run record: what a DAG run did, in the shape of the record `deid run` saves (deid.records.record).

Each task pushes its facts (counts, names, offsets, seconds; never a row value) to XCom under FACTS_KEY. The
publish task assembles them into one record, returns it (the run's summary in XCom) and saves it with its
report and metrics (deid.records.store); a task that ends the run by failing (a terminal error, or the last
try of a transient one) saves the record of the failure instead. The records dir is the Airflow
variable `deid_records_dir`, else the one the CLI uses ($DEID_RECORDS_DIR, else deid.yaml's records.dir).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deid.records.record import MERGED_FACTS, add_table_result

FACTS_KEY = "deid_facts"
RECORDS_VARIABLE = "deid_records_dir"
_BOOKKEEPING = ("step", "task_seconds", "task_started")  # every task's facts carry these


def step_facts(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What a step added to the run context's record (`after`) or changed in it since `before`: the facts
    `deid run`'s record gets from that step, whatever their keys."""
    return {k: v for k, v in after.items() if k not in before or before[k] != v}


def run_record(run: Mapping[str, Any], facts: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """`run` (database, logical date, ...) plus every step's facts. Per step: its start (seconds after the
    run's first task began), its wall-clock seconds and, for the mapped scrub, its task count and summed task
    seconds (its tasks run side by side); per scrubbed table its rows, rewrite seconds and action."""
    record: dict[str, Any] = dict(run)
    facts = [f for f in facts if f]
    spans: dict[str, list[tuple[float, float]]] = {}
    for fact in facts:
        began = fact.get("task_started", 0.0)
        spans.setdefault(fact["step"], []).append((began, began + fact.get("task_seconds", 0.0)))
        if "table" in fact:  # one mapped scrub task: {table, rows, seconds, action, part or sessions}
            add_table_result(
                record, fact["table"], {k: v for k, v in fact.items() if k not in (*_BOOKKEEPING, "table")}
            )
        else:
            for key, value in fact.items():
                if key in _BOOKKEEPING:
                    continue
                if key in MERGED_FACTS and isinstance(record.get(key), dict) and isinstance(value, dict):
                    value = {**record[key], **value}  # a later step adds to it, as in `deid run`'s context
                record[key] = value
    # Tables the plan leaves untouched get no scrub task; the CLI's record lists them, so this one does too.
    for table, verdict in record.get("plan", {}).items():
        if verdict == "untouched":
            record.setdefault("tables", {}).setdefault(
                table, {"rows": 0, "seconds": 0.0, "action": "untouched"}
            )
    record["steps"] = {}
    if spans:
        first = min(start for span in spans.values() for start, _ in span)
        record["started_at"] = _iso(first)
        record["steps"] = _steps(spans, first)
    return record


def _steps(spans: Mapping[str, list[tuple[float, float]]], first: float) -> dict[str, dict[str, Any]]:
    """Per step, in the order they began: start (after `first`, the run's start) and wall-clock seconds."""
    steps = {}
    for name, span in sorted(spans.items(), key=lambda item: min(s for s, _ in item[1])):
        start, end = min(s for s, _ in span), max(e for _, e in span)
        steps[name] = {"start": round(start - first, 3), "seconds": round(end - start, 3)}
        if len(span) > 1 or name == "scrub":
            steps[name].update(tasks=len(span), task_seconds=round(sum(e - s for s, e in span), 3))
    return steps


def _iso(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def records_dir(config) -> Path:
    from airflow.sdk import Variable

    configured = Variable.get(RECORDS_VARIABLE, default=None)
    return Path(configured) if configured else config.records_dir


def save_record(
    record: dict[str, Any],
    ctx,
    outcome: str,
    failed_step: str | None = None,
    error: BaseException | None = None,
) -> list[str]:
    """Close and save a DAG run's record; returns warnings for what could not be saved (never raises for
    them: the run's outcome is decided by then)."""
    from deid.records.record import check_clean, finish_record, start_record
    from deid.records.store import save_run
    from deid.run import secrets_of

    opening = start_record(
        ctx.database.name, ctx.logical_date, ctx.rules_path, "airflow", record.get("run_id")
    )
    # the run began when its first task did (run_record); `airflow dags test` gives runs no real start date
    opening["started_at"] = record.get("started_at") or opening["started_at"]
    record.update(opening)
    finish_record(record, outcome, failed_step, error)
    check_clean(record, secrets_of(ctx))
    return save_run(record, ctx.config.records, records_dir(ctx.config))
