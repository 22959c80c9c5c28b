"""One DAG per database in deid.yaml, `staging_refresh__<database>`: the refresh of its staging copy.

Wiring only (the operators are in plugins/deid_airflow). At parse time this file reads deid.yaml and nothing
else: no database, no network, no Airflow connection or variable. deid.yaml is $DEID_CONFIG, else the one at
the root of this repository.

    preflight >> snapshot >> scrub_prepare >> scrub (one task per table) >> scrub_finish
              >> rebase >> migrate >> validate >> publish                 ... >> cleanup (teardown)

- Schedule: the database's `schedule` in deid.yaml (cron, UTC; default 03:00 daily), without catch-up. The
  logical date of a run is its trigger time, so the run at 03:00 on 2026-11-28 builds the copy of
  2026-11-28, as `deid run` does by default that day.
- One run at a time: max_active_runs=1, and every task holds deid's run lock (see the operators).
- publish updates the Asset `deid://<staging server>/<staging name>` when it swaps a copy in (not when it
  keeps an older one): other teams' DAGs schedule on it (`schedule=[Asset("deid://staging/learners_staging")]`).
- Retries: RETRIES for transient errors only; terminal ones fail the task at once.
- cleanup is the run's teardown: it runs once every step is done, whatever their outcome, and drops the
  working copy a failed run leaves (it may hold production values); it does not decide the run's state.
  Its setup is preflight, which only reads: a run stopped there has copied nothing, and clearing any step
  in the UI runs preflight's checks again before it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.sdk import DAG, CronTriggerTimetable, TriggerRule, chain
from deid_airflow.alerts import FailureAlert
from deid_airflow.assets import staging_asset
from deid_airflow.operators import (
    CleanupOperator,
    MigrateOperator,
    PreflightOperator,
    PublishOperator,
    RebaseOperator,
    ScrubFinishOperator,
    ScrubPrepareOperator,
    ScrubTableOperator,
    SnapshotOperator,
    ValidateOperator,
)
from deid_airflow.params import refresh_params

from deid.config import DatabaseConfig, load_config

CONFIG = Path(os.environ.get("DEID_CONFIG") or Path(__file__).resolve().parents[1] / "deid.yaml").resolve()
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # the earliest logical date a backfill can build
RETRIES = 2
RETRY_DELAY = dt.timedelta(minutes=5)


def staging_refresh(database: DatabaseConfig, config_path: Path) -> DAG:
    common = {"database": database.name, "config_path": str(config_path)}
    with DAG(
        dag_id=f"staging_refresh__{database.name}",
        description=f"De-identified staging copy {database.staging_name} of the database {database.name}",
        schedule=CronTriggerTimetable(database.schedule, timezone="UTC"),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        params=refresh_params(),
        default_args={
            "retries": RETRIES,
            "retry_delay": RETRY_DELAY,
            "on_failure_callback": FailureAlert(database.name),
        },
        tags=["deid", database.name],
        doc_md=__doc__,
    ) as dag:
        preflight = PreflightOperator(task_id="preflight", **common)
        snapshot = SnapshotOperator(task_id="snapshot", **common)
        prepare = ScrubPrepareOperator(task_id="scrub_prepare", **common)
        scrub = ScrubTableOperator.partial(
            task_id="scrub", map_index_template="{{ task.table }}", **common
        ).expand(table=prepare.output)
        # none_failed: a scrub mapped over no table at all is skipped, and the copy must still be finished
        finish = ScrubFinishOperator(task_id="scrub_finish", trigger_rule=TriggerRule.NONE_FAILED, **common)
        rebase = RebaseOperator(task_id="rebase", **common)
        migrate = MigrateOperator(task_id="migrate", **common)
        validate = ValidateOperator(task_id="validate", **common)
        # "staging refreshed": other teams' DAGs schedule on this asset (deid_airflow/assets.py)
        publish = PublishOperator(
            task_id="publish",
            outlets=[staging_asset(database.staging_server, database.staging_name)],
            **common,
        )
        steps = [preflight, snapshot, prepare, scrub, finish, rebase, migrate, validate, publish]
        chain(*steps)
        prepare >> finish

        cleanup = CleanupOperator(task_id="cleanup", **common)
        steps[1:] >> cleanup  # after every step, each mapped scrub included, not just after publish
        cleanup.as_teardown(setups=preflight)
    return dag


for _database in load_config(CONFIG).databases.values():
    _dag = staging_refresh(_database, CONFIG)
    globals()[_dag.dag_id] = _dag
