"""Helpers for tests that run the DAGs with `dag.test()`: faster retries, task states, XComs.

Import Airflow only inside these functions: it must not be imported before the airflow_home fixture.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def fast_retries(dag):
    """Retry after one second instead of minutes: a task retried by mistake shows in its try number
    instead of holding the test for the retry delay."""
    for task in dag.tasks:
        task.retry_delay = dt.timedelta(seconds=1)
    return dag


def task_instances(run) -> dict[str, Any]:
    """task_id (task_id[map index] for mapped ones) -> its TaskInstance row, detached."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        session.expunge_all()
    return {ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": ti for ti in rows}


def states(run) -> dict[str, str]:
    return {key: str(ti.state) for key, ti in task_instances(run).items()}


def xcom(run, task_id: str, key: str = "return_value") -> list[Any]:
    """The values a task of `run` pushed under `key` (one per map index)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        ).all()
        return [XComModel.deserialize_value(row) for row in rows]
