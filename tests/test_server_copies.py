"""The nightly job with copies that are servers of their own: `clone: aurora` and `clone: rds_snapshot`.

boto3 is real and talks to moto's server on 127.0.0.1 (AWS_ENDPOINT_URL), as deid's own clients find it;
every SQL step runs on a real local PostgreSQL standing in for the clones (tests/server_standin.py says what
is emulated). Each test drives the job as deid.run does for the CLI, with a RunContext per process: the
steps of one night in separate contexts stand for separate processes (Airflow tasks, or a run killed
between two steps), which find tonight's clone by its tags and trust only its note.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.cloud import dns, naming
from deid.cloud.copies import AuroraSource, DnsName, RdsSnapshotSource
from deid.config import EnvSettings, load_config
from deid.errors import DeidError
from deid.run import run
from deid.steps.context import RunContext
from deid.steps.places import place_for, place_of
from deid.steps.servers import ServerPlace
from deid.steps.state import Refused
from tests.moto_server import (  # noqa: F401  (aws_env, calls, endpoint, network, rds, route53: fixtures)
    REGION,
    aws_env,
    calls,
    endpoint,
    network,
    rds,
    route53,
)
from tests.server_standin import StandIn
from tests.test_cloud_aurora import make_source

# the AWS side and the steps' SQL do not depend on PostgreSQL's version: the first server only
pytestmark = pytest.mark.one_server

# Nights from today on: moto's sources report their latest restorable time as now, and a date whose day
# ended more than backfill_after_hours before it is a backfill (deid.cloud.points), restored to its end
TODAY = dt.datetime.now(dt.UTC).date()
D1, D2, D3 = TODAY, TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=2)
RECORD_NAME = "shop-staging.db.example.internal"
PRODUCTION = """
CREATE TABLE people (id serial PRIMARY KEY, email text NOT NULL);
INSERT INTO people (email) SELECT 'person' || i || '@real-mail.example.org' FROM generate_series(1, 40) i;
"""
RULES = """version: 1
database: shop
tables:
  public.people:
    columns: {id: keep, email: {class: email}}
  public.staging_flags:
    columns: {id: keep, name: keep}
"""
MIGRATION = "CREATE TABLE staging_flags (id serial PRIMARY KEY, name text NOT NULL);\n"


class Job:
    """A production database, its rules and migration, a deid.yaml with `clone: <method>`, and runs."""

    def __init__(self, postgres, folder: Path, method: str, source: str, zone: str, extra: str = ""):
        self.postgres, self.folder, self.method, self.zone = postgres, folder, method, zone
        self.production = postgres.create_database("deid_prod")
        engine = sa.create_engine(postgres.url(self.production))
        with engine.begin() as c:
            c.exec_driver_sql(PRODUCTION)
        engine.dispose()
        self.standin = StandIn(postgres, self.production)
        (folder / "rules.yaml").write_text(RULES)
        (folder / "migrations").mkdir()
        (folder / "migrations" / "V1__flags.sql").write_text(MIGRATION)
        key = "cluster" if method == "aurora" else "instance"
        (folder / "deid.yaml").write_text(
            f"records: {{dir: {folder / 'records'}}}\n"
            "databases:\n"
            "  shop:\n"
            "    production: prod\n"
            "    staging_server: stg\n"
            f"    staging_name: st_{uuid.uuid4().hex[:8]}\n"
            "    salt_secret: salt\n"
            "    retention: 1\n"
            f"    rules: {folder / 'rules.yaml'}\n"
            f"    migrations: {{sql: {folder / 'migrations'}}}\n"
            f"    clone: {method}\n"
            f"    {method}:\n"
            f"      {key}: {source}\n"
            f"      region: {REGION}\n"
            f"      hosted_zone_id: {zone}\n"
            f"      record_name: {RECORD_NAME}\n"
            "      timeout_seconds: 10\n"
            "      poll_seconds: 0.1\n" + extra
        )
        self.settings = EnvSettings(
            {
                "DEID_CONN_PROD": postgres.url(self.production),
                "DEID_CONN_STG": postgres.admin_url,
                "DEID_SECRET_SALT": "server-copies-salt",
            }
        )
        self.config = load_config(folder / "deid.yaml")

    def context(self, day: dt.date) -> RunContext:
        """A new context, as a new process (a CLI command, an Airflow task) builds it."""
        ctx = RunContext.resolve(self.config, "shop", day, self.settings)
        ctx.clone_resolver = self.standin.resolve
        return ctx

    def run(self, day: dt.date, only: str | None = None) -> dict:
        return run(self.context(day), only=only, report=lambda line: None)

    def place(self) -> ServerPlace:
        place = place_for(self.config, "shop", self.settings, self.standin.resolve)
        assert isinstance(place, ServerPlace)
        return place

    def published_host(self, route53) -> str | None:
        return dns.current_target(route53, self.zone, RECORD_NAME)

    def emails(self, url: str) -> list[str]:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as c:
            found = [r[0] for r in c.exec_driver_sql("SELECT email FROM people ORDER BY id")]
        engine.dispose()
        return found


def zone_of(route53) -> str:
    made = route53.create_hosted_zone(Name="db.example.internal.", CallerReference=uuid.uuid4().hex)
    return made["HostedZone"]["Id"]


@pytest.fixture
def aws(monkeypatch, endpoint, aws_env):  # noqa: F811
    """deid's own boto3 clients reach moto's server, as they would reach AWS through AWS_ENDPOINT_URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return endpoint


@pytest.fixture
def aurora_job(postgres, tmp_path, aws, rds, route53, network):  # noqa: F811
    job = Job(postgres, tmp_path, "aurora", make_source(rds, network), zone_of(route53))
    yield job
    job.standin.drop_all()
    postgres.drop_database(job.production)


def clusters_of(rds, source: str) -> dict[str, dict]:  # noqa: F811
    """deid's clones of `source` that AWS still has, by id, with their tags."""
    found = rds.describe_db_clusters()["DBClusters"]
    return {c["DBClusterIdentifier"]: naming.tags_of(c) for c in found if naming.is_deids(c, source)}


def test_aurora_the_whole_job_publishes_by_dns_keeps_the_previous_rolls_back_and_retains(
    aurora_job: Job,
    rds,
    route53,  # noqa: F811
):
    """Two nights, a rollback, a third night with retention 1: each night is a copy-on-write clone of the
    source tagged with the database and the date, scrubbed, rebased, migrated and validated through its
    endpoint; publish points the staging CNAME at it; the clone before stays kept; rollback points the name
    back; retention deletes the oldest kept clone, never the published one. Production is unchanged."""
    job = aurora_job
    source = job.config.database("shop").server_copies.source
    before = job.emails(job.postgres.url(job.production))

    first = job.run(D1)
    assert first["outcome"] == "published", first.get("error")
    assert first["clone_method"] == "aurora" and first["clone_restore_type"] == "copy-on-write"
    assert first["clone_count"] == 1 and first["clone_limit"] == 15 and "clone_warning" not in first
    assert first["clone_backfill"] is False and first["clone_point_reason"].startswith("the latest state")
    assert first["clone_available_seconds"] >= 0 and "restore" in first["clone_aws_seconds"]
    assert first["published"] == RECORD_NAME and first["published_clone"] == first["clone_id"]
    clone1 = first["clone_id"]
    tags = clusters_of(rds, source)[clone1]
    assert tags[naming.TAG_DATABASE] == "shop" and tags[naming.TAG_LOGICAL_DATE] == D1.isoformat()
    assert tags[naming.TAG_RESTORE_TYPE] == "copy-on-write"
    host1 = rds.describe_db_clusters(DBClusterIdentifier=clone1)["DBClusters"][0]["Endpoint"]
    assert job.published_host(route53) == host1
    scrubbed = job.emails(job.standin.url(host1))
    assert len(scrubbed) == len(before) and not set(scrubbed) & set(before)
    assert "real-mail.example.org" not in " ".join(scrubbed)

    second = job.run(D2)
    assert second["outcome"] == "published", second.get("error")
    clone2 = second["clone_id"]
    assert clone2 != clone1 and second["kept"] == [clone1]
    assert second["dns_change"]["previous"] == host1
    status = job.place().status()
    assert status["published"]["name"] == clone2 and status["published"]["metadata"]["state"] == "published"
    assert [k["name"] for k in status["kept"]] == [clone1]
    assert status["kept"][0]["metadata"]["state"] == "kept"
    assert [s["step"] for s in status["published"]["metadata"]["ledger"]] == [
        "snapshot", "scrub", "rebase", "migrate", "validate",
    ]  # fmt: skip

    assert job.place().rollback(None) == D1
    assert job.published_host(route53) == host1
    status = job.place().status()
    assert status["published"]["name"] == clone1 and [k["name"] for k in status["kept"]] == [clone2]

    third = job.run(D3)
    assert third["outcome"] == "published", third.get("error")
    # kept after D3: clone1 (left by the name now) and clone2; retention 1 keeps the newer date, clone2
    assert third["kept"] == [clone2] and third["dropped"] == [clone1]
    assert set(clusters_of(rds, source)) == {clone2, third["clone_id"]}
    assert job.emails(job.postgres.url(job.production)) == before  # production never written


def test_a_run_killed_between_steps_leaves_the_name_and_the_next_process_finds_the_clone_by_its_tags(
    aurora_job: Job,
    rds,
    route53,  # noqa: F811
):
    """Each step in a process of its own (a new context: nothing remembered) finds tonight's clone by its
    tags and reads its note. A night killed after validate leaves the published name where it was; a step
    out of order is refused by the note; `--only publish` later publishes the validated clone; and the next
    snapshot deletes a working clone a killed run left."""
    job = aurora_job
    source = job.config.database("shop").server_copies.source
    assert job.run(D1)["outcome"] == "published"
    published = job.published_host(route53)

    made = job.run(D2, only="snapshot")
    with pytest.raises(Refused, match="the scrub step has not finished"):
        run(job.context(D2), only="validate", report=lambda line: None)
    for step in ("scrub", "rebase", "migrate", "validate"):
        assert job.run(D2, only=step)["outcome"] == "step"
    # killed here, before publish: the name still leads to the first night's clone
    assert job.published_host(route53) == published
    (work,) = job.place().status()["work"]
    assert work["name"] == made["clone_id"] and work["logical_date"] == D2.isoformat()
    assert [s["step"] for s in work["metadata"]["ledger"]][-1] == "validate"

    assert job.run(D2, only="publish")["outcome"] == "published"
    assert job.published_host(route53) == work["endpoint"]

    left = job.run(D3, only="snapshot")["clone_id"]  # and the process dies here
    assert left in clusters_of(rds, source)
    time.sleep(1.1)  # a CLI run's id is its start to the second: the next run is another run
    night = job.run(D3)
    assert night["outcome"] == "published" and night["dropped_leftovers"] == [left]
    assert left not in clusters_of(rds, source)


def test_a_failed_step_deletes_tonights_clone_and_leaves_the_name(aurora_job: Job, rds, route53):  # noqa: F811
    """A step failing after the snapshot (a broken migration) fails the run: tonight's clone, which may hold
    production rows, is deleted; the published name is untouched."""
    job = aurora_job
    source = job.config.database("shop").server_copies.source
    assert job.run(D1)["outcome"] == "published"
    published = job.published_host(route53)
    (job.folder / "migrations" / "V2__broken.sql").write_text("ALTER TABLE no_such_table ADD COLUMN x int;\n")
    ctx = job.context(D2)
    with pytest.raises(DeidError):
        run(ctx, report=lambda line: None)
    assert ctx.record["failed_step"] == "migrate"
    assert ctx.record["clone_id"] not in clusters_of(rds, source)
    assert job.published_host(route53) == published


def test_the_clone_limit_is_counted_warned_at_13_and_the_16th_refused_before_asking_aws(
    aurora_job: Job,
    rds,
    route53,
    calls,  # noqa: F811
):
    """Clones of the source made for another database count against the same limit: with 12 of them,
    tonight's is the 13th and the record carries the warning; with 15, the snapshot is refused before any
    clone is asked of AWS, naming the limit, and the name stays where it was."""
    job = aurora_job
    settings = job.config.database("shop").server_copies
    others = AuroraSource(rds, settings)
    for night in range(12):  # nights to come: tonight's kind of clone, copy-on-write
        others.make(D3 + dt.timedelta(days=night + 1), f"other-{night}", "other")
    first = job.run(D1)
    assert first["outcome"] == "published", first.get("error")
    assert first["clone_count"] == 13 and first["clone_warning"].startswith("13 of 15 copy-on-write clones")
    saved = json.loads(Path(first["files"]["record"]).read_text())  # the record on file says it too
    assert saved["clone_count"] == 13 and saved["clone_limit"] == 15 and "13 of 15" in saved["clone_warning"]
    for night in range(12, 14):
        others.make(D3 + dt.timedelta(days=night + 1), f"other-{night}", "other")
    published = job.published_host(route53)

    ctx = job.context(D2)  # this process's clients record what they ask
    ctx.server_place = ServerPlace(
        ctx.database, ctx.staging_server_url, job.production, AuroraSource(rds, settings),
        DnsName(route53, settings), job.standin.resolve,
    )  # fmt: skip
    asked = len(calls.of("RestoreDBClusterToPointInTime"))
    with pytest.raises(DeidError, match="has 15 copy-on-write clones and Aurora allows 15"):
        run(ctx, report=lambda line: None)
    assert len(calls.of("RestoreDBClusterToPointInTime")) == asked  # no clone asked for
    assert ctx.record["outcome"] == "failed" and ctx.record["failed_step"] == "snapshot"
    assert job.published_host(route53) == published
    assert not [
        t for t in clusters_of(rds, settings.source).values() if t[naming.TAG_LOGICAL_DATE] == str(D2)
    ]


@pytest.fixture
def rds_job(postgres, tmp_path, aws, rds, route53, network):  # noqa: F811
    from tests.test_cloud_rds import make_source as make_instance

    source = make_instance(rds, network)
    rds.create_db_snapshot(DBSnapshotIdentifier=f"{source}-manual-1", DBInstanceIdentifier=source)
    job = Job(postgres, tmp_path, "rds_snapshot", source, zone_of(route53))
    yield job
    job.standin.drop_all()
    postgres.drop_database(job.production)


def test_rds_snapshot_the_whole_job_publishes_the_restored_instance(rds_job: Job, rds, route53):  # noqa: F811
    """clone: rds_snapshot: each night is an instance restored from the source's newest snapshot, worked on
    through its endpoint and published by the same CNAME; the night before stays kept."""
    job = rds_job
    first = job.run(D1)
    assert first["outcome"] == "published", first.get("error")
    assert first["clone_method"] == "rds_snapshot" and first["clone_restore_type"] == "snapshot"
    assert first["clone_method_detail"].startswith("RDS restore of snapshot")
    instance = rds.describe_db_instances(DBInstanceIdentifier=first["clone_id"])["DBInstances"][0]
    assert naming.tags_of(instance)[naming.TAG_DATABASE] == "shop"
    assert job.published_host(route53) == instance["Endpoint"]["Address"]
    assert "real-mail.example.org" not in " ".join(
        job.emails(job.standin.url(instance["Endpoint"]["Address"]))
    )
    second = job.run(D2)
    assert second["outcome"] == "published" and second["kept"] == [first["clone_id"]]
    assert place_of(job.context(D2)).status()["published"]["name"] == second["clone_id"]


def _place_with_clients(job: Job, ctx: RunContext, rds, route53) -> ServerPlace:  # noqa: F811
    """ctx's place on the test's own clients, so `calls` sees what deid asks of AWS."""
    settings = job.config.database("shop").server_copies
    source = AuroraSource(rds, settings) if job.method == "aurora" else RdsSnapshotSource(rds, settings)
    ctx.server_place = ServerPlace(
        ctx.database, ctx.staging_server_url, job.production, source, DnsName(route53, settings),
        job.standin.resolve,
    )  # fmt: skip
    return ctx.server_place


def test_a_late_run_of_yesterday_takes_the_latest_state_and_a_past_date_restores_its_days_end(
    aurora_job: Job,
    rds,
    route53,
    calls,  # noqa: F811
):
    """Yesterday's day ended less than backfill_after_hours (24) before the source's latest restorable
    time: a late run of that night, a copy-on-write clone of the latest state, and the record says why. Three
    days ago is a backfill: a full-copy restore to the end of that day, which moto's source (its window
    begins when it was made) cannot give, so it is refused before anything is restored, naming the window
    and the fix. An Airflow backfill run of yesterday restores yesterday's end whatever the margin."""
    job = aurora_job
    yesterday = TODAY - dt.timedelta(days=1)
    late = job.run(yesterday)
    assert late["outcome"] == "published", late.get("error")
    assert late["clone_restore_type"] == "copy-on-write" and late["clone_backfill"] is False
    assert "within backfill_after_hours (24)" in late["clone_point_reason"]

    ctx = job.context(TODAY - dt.timedelta(days=3))
    _place_with_clients(job, ctx, rds, route53)
    with pytest.raises(DeidError, match="can be restored to .* only .*Fix: backfill a logical date inside"):
        run(ctx, report=lambda line: None)
    assert ctx.record["failed_step"] == "snapshot"
    assert not calls.of("RestoreDBClusterToPointInTime")  # refused before AWS was asked

    ctx = job.context(yesterday)
    ctx.record["run_type"] = "backfill"  # as the operators note an Airflow backfill run
    _place_with_clients(job, ctx, rds, route53)
    with pytest.raises(DeidError, match=f"not to {TODAY.isoformat()}T00:00:00Z"):
        run(ctx, report=lambda line: None)
    assert not calls.of("RestoreDBClusterToPointInTime")


def test_a_backfill_margin_of_0_restores_every_past_day(
    postgres, tmp_path, aws, rds, route53, network, calls
):  # noqa: F811
    """backfill_after_hours: 0: yesterday too is restored to its end (refused on moto: before its window)."""
    job = Job(
        postgres, tmp_path, "aurora", make_source(rds, network), zone_of(route53),
        extra="      backfill_after_hours: 0\n",
    )  # fmt: skip
    try:
        assert job.config.database("shop").server_copies.backfill_after_hours == 0
        ctx = job.context(TODAY - dt.timedelta(days=1))
        _place_with_clients(job, ctx, rds, route53)
        with pytest.raises(DeidError, match=f"not to {TODAY.isoformat()}T00:00:00Z"):
            run(ctx, report=lambda line: None)
        assert not calls.of("RestoreDBClusterToPointInTime")
    finally:
        job.standin.drop_all()
        postgres.drop_database(job.production)


def test_rds_snapshot_a_past_date_takes_the_newest_snapshot_of_that_day(rds_job: Job, rds, route53, calls):  # noqa: F811
    """clone: rds_snapshot: tonight takes the newest snapshot; a backfill takes the newest taken by the end
    of its day, and with none that old it is refused naming the oldest, before any restore is asked."""
    job = rds_job
    tonight = job.run(D1)
    assert tonight["outcome"] == "published", tonight.get("error")
    assert tonight["clone_backfill"] is False and tonight["clone_restore_type"] == "snapshot"
    ctx = job.context(TODAY - dt.timedelta(days=3))
    _place_with_clients(job, ctx, rds, route53)
    with pytest.raises(DeidError, match="has no snapshot taken by .*: its oldest is"):
        run(ctx, report=lambda line: None)
    assert not calls.of("RestoreDBInstanceFromDBSnapshot")
