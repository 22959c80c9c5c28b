"""The DAG run end to end with `dag.test()` on real PostgreSQL: it publishes a scrubbed copy and records its
summary; each logical date gets its own offsets; an unclassified column stops it at preflight without retry
(and alerts) with the published copy untouched; a dry run copies nothing; `tables` refreshes only those.

One production database and one published history per server, for the whole module: the tests that change
the published copy compare against what they saw before themselves, not against another test's result.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from deid.demo.seed import seed
from tests.airflowrun import fast_retries, states, task_instances, xcom

# Airflow's orchestration of the steps does not depend on PostgreSQL's version (every step is tested on
# every server elsewhere): the first server only, as these runs are the suite's slowest
pytestmark = pytest.mark.one_server

ROOT = Path(__file__).resolve().parent.parent
SALT = "airflow-test-salt-7f3a"
DAG_ID = "staging_refresh__learners"
FIRST, SECOND = dt.date(2026, 11, 27), dt.date(2026, 11, 28)
STEPS = ["preflight", "snapshot", "scrub_prepare", "scrub_finish", "rebase", "migrate", "validate", "publish"]


class Webhook(BaseHTTPRequestHandler):
    """A webhook receiver on 127.0.0.1 that keeps what was POSTed to it."""

    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook():
    server = HTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/alert", received=Webhook.received)
    server.shutdown()


@pytest.fixture(scope="module")
def refresh(postgres, airflow_home, tmp_path_factory, webhook):
    """A seeded production database, deid.yaml naming it and a fresh staging name, Airflow's connections
    and variables for them (as environment variables), and `run(day, **conf)` running the DAG."""
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path_factory.mktemp("airflow_runs")
    prod = postgres.create_database("deid_prod")
    seed(postgres.url(prod), learners=300)
    staging = f"st_{uuid.uuid4().hex[:8]}"
    config = folder / "deid.yaml"
    config.write_text(
        "databases:\n  learners:\n    production: prod\n    staging_server: stg\n"
        f"    staging_name: {staging}\n    salt_secret: salt\n    retention: 3\n"
        # every table streamed, and audit_events (295 rows) split into parts, each a mapped task of its own
        "    stream_from_rows: 0\n    split_from_rows: 250\n    scrub_parts: 2\n"
        f"    rules: {ROOT / 'rules' / 'learners.yaml'}\n"
        f"    migrations: {{sql: {ROOT / 'migrations' / 'learners'}}}\n"
    )
    env = pytest.MonkeyPatch()
    env.setenv("DEID_CONFIG", str(config))
    env.setenv("AIRFLOW_CONN_PROD", postgres.url(prod))
    env.setenv("AIRFLOW_CONN_STG", postgres.admin_url)
    env.setenv("AIRFLOW_VAR_SALT", SALT)
    env.setenv("AIRFLOW_VAR_DEID_RECORDS_DIR", str(folder / "records"))
    env.setenv("AIRFLOW_VAR_DEID_ALERT_WEBHOOK", webhook.url)

    counted: dict[str, Counter] = {}

    def run(day: dt.date, **conf):
        # A DAG parsed for each run: dag.test() runs the tasks in this process, and a run's param values
        # would otherwise stay on the DAG object for the next (a worker parses the DAG for every task).
        dag = fast_retries(DagBag(dag_folder=str(ROOT / "dags")).dags[DAG_ID])
        logical = dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
        with counting() as counts:  # the tasks run in this process: their schema reads and plans, counted
            dag_run = dag.test(logical_date=logical, run_conf=conf or None)
        counted[dag_run.run_id] = counts
        return dag_run

    yield SimpleNamespace(
        run=run,
        counted=counted,
        prod=postgres.url(prod),
        staging=staging,
        staging_url=postgres.url(staging),
        server=postgres.admin_url,
        records=folder / "records" / "learners",
    )
    env.undo()
    from deid.steps.copies import admin, copies_on, drop_database

    with admin(postgres.admin_url) as c:
        for copy in copies_on(c, staging):
            drop_database(c, copy.name)
    postgres.drop_database(prod)


@contextmanager
def counting():
    """Count, while in the block, the reads of a database's schema (the backend's introspection entry point,
    through which every step reads one) and the plans built from a schema (deid.plan.build_plan, through
    which every plan is made): the real calls, counted on their way through."""
    import deid.plan
    from deid.backends import DEFAULT_ENGINE, backend_for

    counts: Counter = Counter()
    backend = type(backend_for(DEFAULT_ENGINE))
    introspect, build_plan = backend.introspect, deid.plan.build_plan

    def counted_introspect(self, connection, name):
        counts["introspections"] += 1
        return introspect(self, connection, name)

    def counted_build_plan(*args, **kwargs):
        counts["plans"] += 1
        return build_plan(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "introspect", counted_introspect)
        patch.setattr(deid.plan, "build_plan", counted_build_plan)
        yield counts


@pytest.fixture(scope="module")
def published(refresh):
    """The runs of two logical dates, like a backfill of two days."""
    return {day: refresh.run(day) for day in (FIRST, SECOND)}


def query(url: str, sql: str):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return c.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def digest(url: str, table: str) -> str:
    return query(url, f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")


def copies(refresh) -> dict:
    from deid.steps.copies import list_copies

    return {c.name: c for c in list_copies(refresh.server, refresh.staging)}


def record(refresh, day: dt.date) -> dict:
    """The newest saved record of `day`'s runs (every run saves its own)."""
    from deid.records.store import read_records

    return next(r for r in read_records(refresh.records.parent, "learners") if r["logical_date"] == str(day))


def test_a_run_publishes_a_scrubbed_copy_and_its_summary(refresh, published):
    run = published[SECOND]
    assert run.state == "success"
    assert digest(refresh.staging_url, "learners") != digest(refresh.prod, "learners")
    assert query(refresh.staging_url, "SELECT count(*) FROM learners") == query(
        refresh.prod, "SELECT count(*) FROM learners"
    )
    assert query(refresh.staging_url, "SELECT count(*) FROM feature_flags") is not None  # migrated
    assert "work" not in [c.role for c in copies(refresh).values()]  # the working copy was published

    summary = record(refresh, SECOND)
    assert xcom(run, "publish") == [summary]  # the run's summary, in XCom and in the record file
    assert summary["published"] == refresh.staging and summary["logical_date"] == "2026-11-28"
    assert (summary["outcome"], summary["via"], summary["failed_step"]) == ("published", "airflow", None)
    assert summary["rules"]["sha256"] == summary["rules_digest"] and len(summary["schema_hash"]) == 64
    assert (
        summary["row_counts"]["public.learners"]["rows"]
        == summary["row_counts"]["public.learners"]["expected"]
    )
    assert all(Path(summary["files"][kind]).is_file() for kind in ("record", "report", "metrics"))
    learners = summary["tables"]["public.learners"]
    # streamed (stream_from_rows), but updated in place, not split: views depend on it; static rows kept
    assert learners["action"] == "streamed" and 0 < learners["rows"] <= 300
    audit = summary["tables"]["public.audit_events"]  # split in two (split_from_rows), then rebuilt whole
    assert (audit["action"], audit["parts"], audit["rows"]) == ("rebuilt", 2, 295)
    assert set(summary["steps"]) == {*STEPS, "scrub"} and summary["steps"]["scrub"]["tasks"] >= 5
    assert all(step["seconds"] > 0 for step in summary["steps"].values())
    starts = [step["start"] for step in summary["steps"].values()]
    assert list(summary["steps"])[0] == "preflight" and starts == sorted(starts) and starts[0] == 0
    assert sum(c["ok"] for c in summary["checks"]) == len(summary["checks"]) > 0
    assert SALT not in json.dumps(summary)

    tis = task_instances(run)
    labels = {ti.rendered_map_index for key, ti in tis.items() if key.startswith("scrub[")}
    assert labels == set(summary["scrub_tables"])  # each mapped task shows its table, or its part
    assert {"public.audit_events#1/2", "public.audit_events#2/2"} <= labels
    assert all(str(ti.state) == "success" for ti in tis.values())


def test_each_logical_date_gets_its_own_offsets(refresh, published):
    from deid.offsets import INTEGER_RANGES, Bound, offset_for

    by_date = {c.logical_date: c for c in copies(refresh).values()}
    offsets = {}
    for day in (FIRST, SECOND):
        facts = record(refresh, day)["offsets"]["public.learners_id_seq"]  # feeds an integer column
        expected = offset_for(
            day,
            facts["high_water"],
            [Bound(INTEGER_RANGES["integer"][1], "public.learners.id (integer)")],
            sequence="public.learners_id_seq",
        )
        assert facts["offset"] == expected.offset
        assert by_date[day].metadata["offsets"]["public.learners_id_seq"] == expected.offset
        offsets[day] = expected.offset
    assert offsets[FIRST] != offsets[SECOND]


def test_an_unclassified_column_fails_at_preflight_without_retry(refresh, published, webhook):
    before = digest(refresh.staging_url, "learners"), copies(refresh)[refresh.staging].metadata
    engine = sa.create_engine(refresh.prod)
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE learners ADD COLUMN nickname text")
    try:
        webhook.received.clear()
        run = refresh.run(dt.date(2026, 11, 29))
    finally:
        with engine.begin() as c:
            c.exec_driver_sql("ALTER TABLE learners DROP COLUMN nickname")
        engine.dispose()
    assert run.state == "failed"
    task_states = states(run)
    assert task_states["preflight"] == "failed"
    assert task_instances(run)["preflight"].try_number == 1  # terminal: the 2 retries are not used
    assert {task_states[step] for step in STEPS[1:]} == {"upstream_failed"}
    assert (digest(refresh.staging_url, "learners"), copies(refresh)[refresh.staging].metadata) == before
    assert all(c.role != "work" for c in copies(refresh).values())

    (alert,) = webhook.received
    assert (alert["database"], alert["step"], alert["logical_date"]) == (
        "learners",
        "preflight",
        "2026-11-29",
    )
    assert "public.learners.nickname" in alert["reason"] and alert["text"].startswith("deid: ")
    assert SALT not in json.dumps(alert)

    failed = record(refresh, dt.date(2026, 11, 29))  # saved by the failing task
    assert (failed["outcome"], failed["failed_step"]) == ("failed", "preflight")
    assert "public.learners.nickname" in failed["error"] and "published" not in failed
    assert Path(failed["files"]["report"]).read_text().count("Failed at preflight") == 1


def test_a_dry_run_plans_and_copies_nothing(refresh, published):
    published_before = copies(refresh)[refresh.staging].metadata
    run = refresh.run(dt.date(2026, 11, 30), dry_run=True)
    assert run.state == "success"
    task_states = states(run)
    assert task_states["preflight"] == "success"
    assert {task_states[step] for step in STEPS[1:]} == {"skipped"}
    (facts,) = xcom(run, "preflight", key="deid_facts")
    assert facts["plan"]["public.learners"] == "rewritten"
    assert copies(refresh)[refresh.staging].metadata == published_before
    assert all(c.role != "work" for c in copies(refresh).values())


def test_the_tables_param_refreshes_those_and_publishes_the_others_empty(refresh, published):
    run = refresh.run(dt.date(2026, 12, 1), tables=["public.courses", "public.instructors"])
    assert run.state == "success"
    for table in ("courses", "instructors"):
        assert query(refresh.staging_url, f"SELECT count(*) FROM {table}") == query(
            refresh.prod, f"SELECT count(*) FROM {table}"
        )
    assert query(refresh.staging_url, "SELECT count(*) FROM learners") == 0
    assert digest(refresh.staging_url, "instructors") != digest(refresh.prod, "instructors")  # scrubbed
    summary = record(refresh, dt.date(2026, 12, 1))
    assert summary["subset"] == ["public.courses", "public.instructors"]
    assert summary["tables"]["public.learners"]["action"] == "emptied"


def test_the_tables_param_must_include_the_tables_they_reference(refresh, published, webhook):
    webhook.received.clear()
    run = refresh.run(dt.date(2026, 12, 2), tables=["public.courses"])
    assert run.state == "failed" and states(run)["preflight"] == "failed"
    (alert,) = webhook.received
    assert "public.courses references public.instructors" in alert["reason"]


def test_a_database_with_nothing_to_rewrite_is_still_published(postgres, airflow_home, tmp_path, monkeypatch):
    """The scrub is mapped over no table at all (every column kept): it is skipped, the run goes on."""
    from airflow.dag_processing.dagbag import DagBag

    prod = postgres.create_database("deid_prod")
    staging = f"st_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres.url(prod))
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE colours (id serial PRIMARY KEY, hue text NOT NULL)")
        c.exec_driver_sql("INSERT INTO colours (hue) VALUES ('red'), ('green')")
    engine.dispose()
    (tmp_path / "rules.yaml").write_text(
        "version: 1\ndatabase: colours\npolicy: hipaa_limited_data_set\ntables:\n"
        "  public.colours:\n    columns:\n      id: keep\n      hue: keep\n"
    )
    (tmp_path / "deid.yaml").write_text(
        f"databases:\n  colours:\n    production: colours_prod\n    staging_server: stg\n"
        f"    staging_name: {staging}\n    salt_secret: salt\n    rules: rules.yaml\n"
    )
    monkeypatch.setenv("DEID_CONFIG", str(tmp_path / "deid.yaml"))
    monkeypatch.setenv("AIRFLOW_CONN_COLOURS_PROD", postgres.url(prod))
    monkeypatch.setenv("AIRFLOW_CONN_STG", postgres.admin_url)
    monkeypatch.setenv("AIRFLOW_VAR_SALT", SALT)
    monkeypatch.setenv("AIRFLOW_VAR_DEID_RECORDS_DIR", str(tmp_path / "records"))
    try:
        dag = fast_retries(DagBag(dag_folder=str(ROOT / "dags")).dags["staging_refresh__colours"])
        run = dag.test(logical_date=dt.datetime(2026, 11, 28, 3, tzinfo=dt.UTC))
        assert run.state == "success"
        task_states = states(run)
        assert task_states["scrub"] == "skipped" and task_states["publish"] == "success"
        assert query(postgres.url(staging), "SELECT count(*) FROM colours") == 2
        from deid.records.store import read_records

        (summary,) = read_records(tmp_path / "records", "colours")
        assert summary["tables"] == {"public.colours": {"rows": 0, "seconds": 0.0, "action": "untouched"}}
    finally:
        from deid.steps.copies import admin, copies_on, drop_database

        with admin(postgres.admin_url) as c:
            for copy in copies_on(c, staging):
                drop_database(c, copy.name)
        postgres.drop_database(prod)


def test_the_airflow_record_holds_every_fact_the_steps_note(refresh, published):
    """Each task passes on every key its step added to the run context's record (no list of keys to fall
    behind the steps): the DAG run's record holds every fact `deid run`'s record holds for the same
    database. Runs last in this module: it publishes a later date from the CLI."""
    import os

    from deid.config import EnvSettings, load_config
    from deid.run import run
    from deid.steps.context import RunContext

    settings = EnvSettings(
        {"DEID_CONN_PROD": refresh.prod, "DEID_CONN_STG": refresh.server, "DEID_SECRET_SALT": SALT}
    )
    ctx = RunContext.resolve(load_config(os.environ["DEID_CONFIG"]), "learners", THIRD, settings)
    ctx.publish_older = True  # whatever date the tests before published last
    cli = run(ctx, report=lambda line: None)
    assert cli["outcome"] == "published", cli.get("error")
    airflow = record(refresh, SECOND)
    # noted by every step from the scrub's tables to the publish's retention, none lost on the way
    assert {"clone_seconds", "kept", "offsets", "row_counts"} <= set(cli)
    assert sorted(set(cli) - set(airflow)) == []
    assert airflow["run_type"] == "manual"  # dag.test() makes a manual run; the CLI's record has none


THIRD = dt.date(2026, 11, 29)


# --- Airflow's view of a run: its duration, the staging copy's asset ------------------------------------

CONSUMER = "reset_test_accounts"
# Every run reads a schema this many times, whatever its number of tables (each scrub task reads none): the
# preflight reads production's, the snapshot, the rebase, the migrate step (after its migrations) and the
# publish gate the copy's, and validate both (the copy's against production's)
INTROSPECTIONS = 7
# and builds this many plans: production's at preflight (an early warning, a dry run's), the copy's at the
# snapshot, which every later task reads from the copy (state.CopyState.plan)
PLANS = 2


def dag_runs(dag_id: str) -> list:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id).all()
        session.expunge_all()
    return rows


def asset_events(staging: str) -> list:
    """The events of the staging copy's asset, oldest first, detached."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from deid_airflow.assets import staging_asset

    asset = staging_asset("stg", staging)
    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == asset.uri, AssetModel.name == asset.name)
            .order_by(AssetEvent.id)
            .all()
        )
        session.expunge_all()
    return rows


def register_consumer(folder: Path, staging: str) -> None:
    """Another team's DAG, scheduled on the staging copy's asset as dags/README.md shows, parsed into the
    metadata database as a DAG processor would (a bundle of its own), unpaused."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    (folder / "consumer.py").write_text(
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "from airflow.sdk import DAG, Asset\n\n"
        f'with DAG("{CONSUMER}", schedule=[Asset("deid://stg/{staging}")], is_paused_upon_creation=False):\n'
        '    EmptyOperator(task_id="reset")\n'
    )
    with create_session() as session:
        session.merge(DagBundleModel(name="consumers"))
    bag = DagBag(dag_folder=str(folder), bundle_path=folder, bundle_name="consumers")
    assert not bag.import_errors and CONSUMER in bag.dags
    sync_bag_to_db(bag, "consumers", None)


def queued_for(dag_id: str) -> int:
    """Asset events waiting to trigger `dag_id` (the scheduler's AssetDagRunQueue)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetDagRunQueue).filter_by(target_dag_id=dag_id).count()


def test_every_run_reads_schemas_and_plans_as_often_whatever_its_tables(refresh, published):
    full = published[SECOND]
    subset = refresh.run(dt.date(2026, 12, 2), tables=["public.courses", "public.instructors"])
    assert (full.state, subset.state) == ("success", "success")
    tasks = {run.run_id: sum(key.startswith("scrub[") for key in states(run)) for run in (full, subset)}
    assert tasks[full.run_id] != tasks[subset.run_id]  # another number of scrub tasks, as many reads
    for run in (full, subset):
        counts = refresh.counted[run.run_id]
        assert (counts["introspections"], counts["plans"]) == (INTROSPECTIONS, PLANS), (run.run_id, counts)


def test_the_demos_run_lasts_its_wall_time_and_publish_updates_the_staging_asset(
    refresh, published, tmp_path
):
    """The demo's own command (`airflow dags test` with the date as a param), as a subprocess on this module's
    Airflow: the DAG run's start and end, and the duration the UI shows (DagRun.duration, the API's), are
    the run's wall time, not days since a logical date; publish updated the staging copy's asset and queued
    a DAG scheduled on it. A later run that keeps an older copy (not published) adds no event."""
    import subprocess

    from deid.demo.local_airflow import dags_test

    register_consumer(tmp_path, refresh.staging)
    before = len(asset_events(refresh.staging))
    assert before >= 2  # the module's published runs (dag.test) updated it already
    day = dt.date(2026, 12, 3)  # later than every date this module published before: published
    began = dt.datetime.now(dt.UTC)
    result = subprocess.run(dags_test(DAG_ID, day), capture_output=True, text=True, timeout=900)
    ended = dt.datetime.now(dt.UTC)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    run = dag_runs(DAG_ID)[-1]
    assert (run.state, run.conf) == ("success", {"date": "2026-12-03"})
    assert began <= run.start_date <= run.end_date <= ended
    assert run.duration == (run.end_date - run.start_date).total_seconds() < 600
    assert record(refresh, day)["run_id"] == run.run_id  # the copy of the param's date, by this run
    # the task logs count the checks as deid run, status, history and the report do (deid.records.counts)
    done = record(refresh, day)
    checks = len(done["checks"]) + len(done["expectations"]["expectations"])
    assert f"validation: {checks} of {checks} checks passed" in result.stdout + result.stderr

    events = asset_events(refresh.staging)
    assert len(events) == before + 1
    event = events[-1]
    assert (event.source_dag_id, event.source_task_id, event.source_run_id) == (DAG_ID, "publish", run.run_id)
    assert event.extra["logical_date"] == "2026-12-03" and event.extra["staging_name"] == refresh.staging
    assert queued_for(CONSUMER) == 1  # the scheduler would now trigger the consumer

    older = refresh.run(dt.date(2026, 11, 26))  # a backfill of a past date: kept for rollback
    assert older.state == "success" and states(older)["publish"] == "skipped"
    assert record(refresh, dt.date(2026, 11, 26))["outcome"] == "kept"
    assert len(asset_events(refresh.staging)) == before + 1
