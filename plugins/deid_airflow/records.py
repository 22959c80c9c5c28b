"""The run record: what a DAG run did, in the shape of the record `deid run` returns.

Each task pushes its facts (counts, names, offsets, seconds; never a row value) to XCom under FACTS_KEY. The
publish task assembles them into one record, returns it (the run's summary in XCom) and writes it as JSON to
<records dir>/<database>/<logical date>.json: a rerun of a date replaces its record, as its copy is replaced.
The records dir is the Airflow variable `deid_records_dir`, by default $AIRFLOW_HOME/deid_records.
"""

from __future__ import annotations

import json
import os
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


def records_dir() -> Path:
    from airflow.sdk import Variable

    configured = Variable.get(RECORDS_VARIABLE, default=None)
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return Path(configured or Path(home) / "deid_records")


def write_record(record: Mapping[str, Any], directory: Path) -> Path:
    """Write `record` to directory/<database>/<logical date>.json (atomically: a reader sees old or new)."""
    path = directory / record["database"] / f"{record['logical_date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    partial.replace(path)
    return path
