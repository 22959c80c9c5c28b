"""The run record: what a DAG run did, in the shape of the record `deid run` saves (deid.records.record).

Each task pushes its facts (counts, names, offsets, seconds; never a row value) to XCom under FACTS_KEY. The
publish task assembles them into one record, returns it (the run's summary in XCom) and saves it with its
report and metrics (deid.records.store); a task that ends the run by failing (a terminal error, or the last
try of a transient one) saves the record of the failure instead. The records dir is the Airflow
variable `deid_records_dir`, else the one the CLI uses ($DEID_RECORDS_DIR, else deid.yaml's records.dir).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FACTS_KEY = "deid_facts"
RECORDS_VARIABLE = "deid_records_dir"
_BOOKKEEPING = ("step", "task_seconds")  # every task's facts carry these two


def run_record(run: Mapping[str, Any], facts: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """`run` (database, logical date, ...) plus every step's facts; per step its task seconds (summed over
    the mapped scrub tasks, with their count), per scrubbed table its rows, rewrite seconds and action."""
    record: dict[str, Any] = dict(run)
    steps: dict[str, dict[str, Any]] = {}
    for fact in filter(None, facts):
        step = steps.setdefault(fact["step"], {"seconds": 0.0})
        step["seconds"] = round(step["seconds"] + fact.get("task_seconds", 0.0), 3)
        if "table" in fact:  # one mapped scrub task: {table, rows, seconds, action}
            step["tasks"] = step.get("tasks", 0) + 1
            record.setdefault("tables", {})[fact["table"]] = {
                k: v for k, v in fact.items() if k not in (*_BOOKKEEPING, "table")
            }
        else:
            record.update({k: v for k, v in fact.items() if k not in _BOOKKEEPING})
    # Tables the plan leaves untouched get no scrub task; the CLI's record lists them, so this one does too.
    for table, verdict in record.get("plan", {}).items():
        if verdict == "untouched":
            record.setdefault("tables", {}).setdefault(
                table, {"rows": 0, "seconds": 0.0, "action": "untouched"}
            )
    record["steps"] = steps
    return record


def records_dir(config) -> Path:
    from airflow.sdk import Variable

    configured = Variable.get(RECORDS_VARIABLE, default=None)
    return Path(configured) if configured else config.records_dir


def save_record(
    record: dict[str, Any],
    ctx,
    dag_run,
    outcome: str,
    failed_step: str | None = None,
    error: str | None = None,
) -> list[str]:
    """Close and save a DAG run's record; returns warnings for what could not be saved (never raises for
    them: the run's outcome is decided by then)."""
    from deid.records.record import check_clean, finish_record, start_record
    from deid.records.store import save_run
    from deid.run import secrets_of

    opening = start_record(
        ctx.database.name, ctx.logical_date, ctx.rules_path, "airflow", record.get("run_id")
    )
    started = getattr(dag_run, "start_date", None)
    if started is not None:  # the run's start, not this task's
        opening["started_at"] = started.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record.update(opening)
    finish_record(record, outcome, failed_step, error)
    check_clean(record, secrets_of(ctx))
    return save_run(record, ctx.config.records, records_dir(ctx.config))
