"""The params of a staging refresh DAG run, and what a run asks for: its logical date, its tables, dry run.

Airflow validates params against their JSON Schema when a run is created (UI, API, CLI, `dag.test`), so a
bad value is refused before any task runs. Keys that are not params at all pass Airflow untouched; the
preflight task refuses them (see `check_conf`), so a typo like `dryrun` never turns into a full refresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Param

from deid.errors import ConfigError
from deid.suggest import did_you_mean

ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


def refresh_params() -> dict[str, Param]:
    return {
        "tables": Param(
            None,
            type=["null", "array"],
            # schema.table as rule files write it ("my.schema".table when a name holds a dot); the run checks
            # each against the schema, so no pattern here could be both exact and complete
            items={"type": "string", "minLength": 1},
            uniqueItems=True,
            title="Tables",
            description=(
                "Refresh only these tables (schema.table); every other table is published empty. They must "
                "include the tables they reference. Empty or null: every table."
            ),
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Plan only: check the rules against production and log the plan; copy nothing.",
        ),
        "publish_older": Param(
            False,
            type="boolean",
            title="Publish an older copy",
            description=(
                "Publish the copy even if the published one was built for a later logical date. Off: such "
                "a copy (a backfill's, or a missed run's) is kept for rollback and not published."
            ),
        ),
        "date": Param(
            None,
            type=["null", "string"],
            pattern=ISO_DATE,
            format="date",
            title="Logical date",
            description=(
                "YYYY-MM-DD: build the copy of this date (sequence offsets, copy names). Empty: the run's "
                "logical date, or the day it was triggered when it has none."
            ),
        ),
    }


def check_conf(conf: Mapping[str, Any] | None, known: Mapping[str, Any]) -> None:
    """ConfigError naming every key of the run's conf that is not a param."""
    unknown = sorted(set(conf or {}) - set(known))
    if unknown:
        hints = "".join(did_you_mean(key, known) for key in unknown)
        raise ConfigError(
            f"the run's conf has unknown key(s) {', '.join(unknown)}.{hints} "
            f"Params of this DAG: {', '.join(sorted(known))}."
        )


def run_date(context: Mapping[str, Any], explicit: str | None = None) -> dt.date:
    """The logical date deid builds for, from the first that is set:

    1. `explicit`, an operator's templated `logical_date` (e.g. "{{ ds }}");
    2. the `date` param;
    3. the DAG run's logical date (scheduled runs, backfills, and manual runs given one);
    4. the DAG run's run_after: a manual run without a logical date builds the copy of the day it was
       triggered for, and every task of that run agrees on it, even past midnight.
    Dates are taken in UTC, as the CLI's default (today, UTC) is.
    """
    for source, text in (("logical_date", explicit), ("date param", context["params"].get("date"))):
        if text:
            try:
                return dt.date.fromisoformat(str(text)[:10])
            except ValueError:
                raise ConfigError(f"{source} {text!r} is not a date: use YYYY-MM-DD") from None
    dag_run = context["dag_run"]
    when = dag_run.logical_date or dag_run.run_after
    return when.astimezone(dt.UTC).date()


def requested_tables(context: Mapping[str, Any]) -> frozenset[str] | None:
    tables = context["params"].get("tables")
    return frozenset(tables) if tables else None


def is_dry_run(context: Mapping[str, Any]) -> bool:
    return bool(context["params"].get("dry_run"))
