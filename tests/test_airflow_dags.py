"""The Airflow DAGs without a database server: they import, one per database, from the config alone; their
tasks, order, mapping and params; bad params and unknown conf keys refused before any work is done.

Airflow is imported inside the tests, after the airflow_home fixture has configured it (see conftest.py).
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest

from tests.airflowrun import fast_retries, states, task_instances

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    "preflight",
    "snapshot",
    "scrub_prepare",
    "scrub",
    "scrub_finish",
    "rebase",
    "migrate",
    "validate",
    "publish",
]
CONFIG = """\
databases:
  learners:
    production: learners_prod
    staging_server: staging
    salt_secret: deid_salt
    rules: {rules}
  billing:
    production: billing_prod
    staging_server: staging
    salt_secret: deid_salt
    rules: {rules}
    schedule: "30 1 * * 1-5"
"""


@pytest.fixture
def config(tmp_path, monkeypatch, airflow_home) -> Path:
    """Two databases in deid.yaml; no connection, variable or server anywhere."""
    path = tmp_path / "deid.yaml"
    path.write_text(CONFIG.format(rules=ROOT / "rules" / "learners.yaml"))
    monkeypatch.setenv("DEID_CONFIG", str(path))
    return path


@pytest.fixture
def dags(config, monkeypatch):
    """The DagBag of dags/, parsed while every network connection attempt fails."""
    from airflow.dag_processing.dagbag import DagBag

    attempts = []

    def refuse(sock, address):
        attempts.append(address)
        raise OSError(f"no network at parse time (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    monkeypatch.undo()
    assert attempts == []
    return bag


def test_one_dag_per_database_from_the_config_alone(dags):
    assert dags.import_errors == {}
    assert sorted(dags.dag_ids) == ["staging_refresh__billing", "staging_refresh__learners"]
    learners, billing = dags.dags["staging_refresh__learners"], dags.dags["staging_refresh__billing"]
    assert learners.timetable.expression == "0 3 * * *"  # deid.yaml's default: daily
    assert billing.timetable.expression == "30 1 * * 1-5"
    for dag in (learners, billing):
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        assert str(dag.timetable.timezone) == "UTC"


def test_each_dags_publish_updates_its_own_staging_copys_asset(dags):
    """deid://<staging server>/<staging name>: the connection's name, never its URL, and percent-encoded
    where a staging name holds what a URI cannot."""
    from deid_airflow.assets import staging_asset

    outlets = {
        dag_id: [a.uri for a in dags.dags[dag_id].get_task("publish").outlets]
        for dag_id in ("staging_refresh__learners", "staging_refresh__billing")
    }
    assert outlets == {
        "staging_refresh__learners": ["deid://staging/learners_staging"],
        "staging_refresh__billing": ["deid://staging/billing_staging"],
    }
    odd = staging_asset("stg east", "Sales Data/2026 50%")
    assert odd.uri == "deid://stg%20east/Sales%20Data%2F2026%2050%25" and odd.name == odd.uri


def test_a_broken_config_is_an_import_error_naming_the_file(config, airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    config.write_text(
        "databases:\n  learners:\n    production: p\n    staging_server: s\n    salt_secret: x\n"
        "    clone: copy\n"
    )
    errors = DagBag(dag_folder=str(ROOT / "dags")).import_errors
    (message,) = errors.values()
    assert str(config) in message and "unknown clone method 'copy'" in message


def test_tasks_order_mapping_and_teardown(dags):
    dag = dags.dags["staging_refresh__learners"]
    assert sorted(dag.task_ids) == sorted([*STEPS, "cleanup"])
    for earlier, later in zip(STEPS, STEPS[1:], strict=False):
        assert earlier in dag.get_task(later).upstream_task_ids, f"{earlier} >> {later}"

    scrub = dag.get_task("scrub")
    assert scrub.is_mapped
    assert scrub.map_index_template == "{{ task.table }}"
    (mapped_over,) = scrub.expand_input.value.values()  # expand(table=scrub_prepare's return value)
    assert mapped_over.operator.task_id == "scrub_prepare" and mapped_over.key == "return_value"
    assert dag.get_task("scrub_finish").trigger_rule == "none_failed"  # also after a scrub of no table

    # every step finds what it needs on the working copy itself: only scrub_prepare's tables go by XCom
    assert not {"offsets"} & set(dag.get_task("validate").template_fields)

    cleanup = dag.get_task("cleanup")
    assert cleanup.is_teardown and dag.get_task("preflight").is_setup
    assert cleanup.trigger_rule == "all_done_setup_success"
    assert cleanup.upstream_task_ids == set(STEPS)  # waits for every step, each mapped scrub too

    for task in dag.tasks:
        assert task.retries == 2
        assert task.on_failure_callback, task.task_id
        assert {"database", "config_path", "logical_date"} <= set(task.template_fields)
        database = task.partial_kwargs["database"] if task.is_mapped else task.database
        assert database == "learners"


def test_params_and_their_schemas(dags):
    params = dags.dags["staging_refresh__learners"].params
    assert set(params) == {"tables", "dry_run", "date", "publish_older"}
    assert params["tables"] is None and params["dry_run"] is False and params["date"] is None
    assert params["publish_older"] is False
    schema = params.get_param("tables").schema
    assert schema["type"] == ["null", "array"] and schema["uniqueItems"]
    assert params.get_param("date").schema["format"] == "date"


BAD_PARAMS = [
    {"date": "2026-02-30"},  # the pattern matches, the calendar does not
    {"date": "28/11/2026"},
    {"dry_run": "yes"},
    {"tables": "public.learners"},
    {"tables": [""]},
    {"tables": ["public.learners", "public.learners"]},
    {"publish_older": "yes"},
]


@pytest.mark.parametrize("conf", BAD_PARAMS, ids=[str(c) for c in BAD_PARAMS])
def test_a_bad_param_is_refused_before_any_task_runs(dags, conf):
    from airflow.models.dagrun import DagRun
    from airflow.sdk.exceptions import ParamValidationError

    dag = dags.dags["staging_refresh__learners"]
    before = len(DagRun.find(dag_id=dag.dag_id))
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {next(iter(conf))}"):
        dag.test(logical_date=dt.datetime(2026, 11, 28, tzinfo=dt.UTC), run_conf=conf)
    assert len(DagRun.find(dag_id=dag.dag_id)) == before  # no run was created, so no task ran


def test_an_unknown_conf_key_fails_preflight_without_retry(dags, monkeypatch, caplog):
    """Airflow lets keys that are not params through; preflight refuses them before it reads production."""
    # Names resolve, to a server nobody listens on: the run must stop before connecting to it.
    monkeypatch.setenv("AIRFLOW_CONN_LEARNERS_PROD", "postgresql://deid@127.0.0.1:9/learners")
    monkeypatch.setenv("AIRFLOW_CONN_STAGING", "postgresql://deid@127.0.0.1:9/postgres")
    monkeypatch.setenv("AIRFLOW_VAR_DEID_SALT", "not-a-secret")
    dag = fast_retries(dags.dags["staging_refresh__learners"])
    run = dag.test(logical_date=dt.datetime(2026, 11, 29, tzinfo=dt.UTC), run_conf={"dryrun": True})
    assert run.state == "failed"
    assert states(run)["preflight"] == "failed" and states(run)["snapshot"] == "upstream_failed"
    assert task_instances(run)["preflight"].try_number == 1  # retries=2, none used
    (alert,) = [r.getMessage() for r in caplog.records if r.name == "deid.airflow.alerts"]
    assert alert.startswith("deid: staging refresh of learners failed at preflight (logical date 2026-11-29)")
    assert "unknown key(s) dryrun. Did you mean 'dry_run'?" in alert


def test_a_missing_connection_fails_without_retry_naming_where_it_looked(dags, monkeypatch, caplog, capfd):
    monkeypatch.delenv("AIRFLOW_CONN_LEARNERS_PROD", raising=False)
    dag = fast_retries(dags.dags["staging_refresh__learners"])
    run = dag.test(logical_date=None)  # as a manual run triggered without a logical date
    assert run.logical_date is None
    assert run.state == "failed" and task_instances(run)["preflight"].try_number == 1
    (alert,) = [r.getMessage() for r in caplog.records if r.name == "deid.airflow.alerts"]
    assert "connection 'learners_prod' is not set" in alert
    assert f"(logical date {run.run_after.date()})" in alert  # the day it was triggered for
    task_log = capfd.readouterr().out  # dag.test() prints the task logs
    assert "Airflow connection 'learners_prod'" in task_log and "AIRFLOW_CONN_LEARNERS_PROD" in task_log
