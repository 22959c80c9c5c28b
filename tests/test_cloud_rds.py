"""deid.cloud.rds (an RDS instance restored from a snapshot) with the real boto3 clients against moto's
server on 127.0.0.1; the last test runs SQL through the URL deid builds against a local MariaDB standing in
for the restored instance (DEID_TEST_MYSQL_URL, which CI sets)."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid

import pytest
import sqlalchemy as sa

from deid.cloud import dns, naming
from deid.cloud import rds as restores
from deid.cloud.awserrors import CloudError
from deid.cloud.endpoints import clone_url
from deid.cloud.results import Endpoint
from tests.moto_server import (  # noqa: F401  (aws_env, calls, endpoint, network, rds, route53: fixtures)
    Calls,
    aws_env,
    calls,
    endpoint,
    network,
    rds,
    route53,
)

DATE = dt.date(2026, 12, 3)
FAST = {"timeout_seconds": 10, "poll_seconds": 0.1}


def make_source(rds, network: dict, engine: str = "postgres") -> str:
    """An RDS instance with its own parameter group in the test's network; its id. moto takes an automated
    snapshot of it as it is created."""
    source = f"prod-orders-{uuid.uuid4().hex[:8]}"
    family, version = {"postgres": ("postgres16", "16.4"), "mariadb": ("mariadb10.11", "10.11.9")}[engine]
    rds.create_db_parameter_group(
        DBParameterGroupName=f"{source}-params", DBParameterGroupFamily=family, Description="the source's"
    )
    rds.create_db_instance(
        DBInstanceIdentifier=source,
        Engine=engine,
        EngineVersion=version,
        DBInstanceClass="db.m6g.large",
        AllocatedStorage=100,
        MasterUsername="owner",
        MasterUserPassword=f"pw-{uuid.uuid4().hex}",
        DBSubnetGroupName=network["subnet_group"],
        VpcSecurityGroupIds=[network["security_group"]],
        DBParameterGroupName=f"{source}-params",
        BackupRetentionPeriod=7,
    )
    return source


@pytest.fixture
def source(rds, network) -> str:
    return make_source(rds, network)


def snapshot(rds, source: str, name: str) -> dict:
    time.sleep(0.05)  # distinct creation times
    return rds.create_db_snapshot(DBInstanceIdentifier=source, DBSnapshotIdentifier=name)["DBSnapshot"]


def instance_ids(rds) -> set[str]:
    return {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}


def test_a_restore_takes_the_newest_snapshot_and_the_sources_class_network_and_parameters(
    rds, source, network, calls: Calls
):
    manual = snapshot(rds, source, f"{source}-manual")

    result = restores.restore_instance(rds, source, DATE, "run-1", **FAST)

    (asked,) = calls.of("RestoreDBInstanceFromDBSnapshot")
    assert asked["DBSnapshotIdentifier"] == manual["DBSnapshotIdentifier"]
    assert asked["DBInstanceIdentifier"] == result.clone_id
    assert asked["DBSubnetGroupName"] == network["subnet_group"]
    assert asked["VpcSecurityGroupIds"] == [network["security_group"]]
    assert asked["DBParameterGroupName"] == f"{source}-params"
    assert asked["DBInstanceClass"] == "db.m6g.large"
    assert asked["DeletionProtection"] is False and asked["MultiAZ"] is False

    restored = rds.describe_db_instances(DBInstanceIdentifier=result.clone_id)["DBInstances"][0]
    assert naming.tags_of(restored) == {
        naming.TAG_MANAGED: "true",
        naming.TAG_SOURCE: source,
        naming.TAG_LOGICAL_DATE: "2026-12-03",
        naming.TAG_RUN_ID: "run-1",
        naming.TAG_RESTORE_TYPE: "snapshot",
    }
    assert restored["VpcSecurityGroups"][0]["VpcSecurityGroupId"] == network["security_group"]
    assert result.kind == "rds_snapshot" and result.restore_type == "snapshot"
    assert result.clone_id.startswith(f"{source}-deid-20261203-") and result.instance_id == result.clone_id
    assert result.snapshot_id == manual["DBSnapshotIdentifier"]
    assert result.restore_time == manual["SnapshotCreateTime"]
    assert result.endpoint == Endpoint(
        host=restored["Endpoint"]["Address"], port=restored["Endpoint"]["Port"]
    )
    assert result.clone_count == 1
    assert result.seconds_to_available >= result.seconds["wait_instance"] > 0


def test_a_retried_run_waits_for_its_restore_instead_of_making_another(rds, source, calls: Calls):
    first = restores.restore_instance(rds, source, DATE, "run-retry", **FAST)
    again = restores.restore_instance(rds, source, DATE, "run-retry", **FAST)
    assert again.clone_id == first.clone_id and again.resumed
    assert len(calls.of("RestoreDBInstanceFromDBSnapshot")) == 1


def test_a_backfill_takes_the_newest_snapshot_taken_by_its_time(rds, source, calls: Calls):
    """Of three snapshots, a time between the second and the third picks the second."""
    second = snapshot(rds, source, f"{source}-second")
    third = snapshot(rds, source, f"{source}-third")
    between = second["SnapshotCreateTime"] + (third["SnapshotCreateTime"] - second["SnapshotCreateTime"]) / 2

    result = restores.restore_instance(rds, source, DATE, "run-backfill", taken_by=between, **FAST)

    assert result.snapshot_id == second["DBSnapshotIdentifier"]
    (asked,) = calls.of("RestoreDBInstanceFromDBSnapshot")
    assert asked["DBSnapshotIdentifier"] == second["DBSnapshotIdentifier"]


def test_no_snapshot_by_the_time_asked_is_refused_naming_the_oldest(rds, source, calls: Calls):
    oldest = min(
        rds.describe_db_snapshots(DBInstanceIdentifier=source)["DBSnapshots"],
        key=lambda s: s["SnapshotCreateTime"],
    )
    asked = naming.end_of_logical_date(dt.date(2020, 1, 1))

    with pytest.raises(CloudError) as refused:
        restores.restore_instance(rds, source, dt.date(2020, 1, 1), "run-old", taken_by=asked, **FAST)

    text = str(refused.value)
    assert f"instance '{source}' has no snapshot taken by 2020-01-02T00:00:00Z" in text
    assert f"its oldest is '{oldest['DBSnapshotIdentifier']}'" in text
    assert "keep snapshots longer" in text
    assert calls.of("RestoreDBInstanceFromDBSnapshot") == []


def test_retention_deletes_only_deids_old_restores_never_the_published_one_nor_untagged_instances(
    rds, source, network
):
    made = [
        restores.restore_instance(rds, source, DATE + dt.timedelta(days=n), f"r{n}", **FAST) for n in range(3)
    ]
    lookalike = naming.clone_identifier(source, DATE - dt.timedelta(days=9), "by-hand")
    rds.create_db_instance(
        DBInstanceIdentifier=lookalike,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="x",
        MasterUserPassword="p" * 12,
    )

    outcome = restores.delete_old_restores(rds, source, keep=1, protect=[made[1].clone_id])

    assert outcome.deleted == (made[0].clone_id,)
    assert outcome.kept == (made[2].clone_id,)
    assert outcome.protected == (made[1].clone_id,)
    remaining = instance_ids(rds)
    assert made[0].clone_id not in remaining
    assert {source, made[1].clone_id, made[2].clone_id, lookalike} <= remaining
    with pytest.raises(CloudError, match="does not carry deid's tags"):
        restores.delete_restore(rds, lookalike)


def test_publish_points_the_staging_name_at_the_restore_and_finds_it_back(rds, route53, source):
    zone = route53.create_hosted_zone(Name="db.example.internal.", CallerReference=uuid.uuid4().hex)[
        "HostedZone"
    ]["Id"]
    name = "orders-staging.db.example.internal"
    result = restores.restore_instance(rds, source, DATE, "night-1", **FAST)

    pointed = dns.point_name(route53, zone, name, result.endpoint.host, ttl=30, poll_seconds=0.1)

    assert pointed.previous is None and pointed.ttl == 30
    assert dns.read_record(route53, zone, name)["TTL"] == 30
    assert restores.restore_behind(rds, dns.current_target(route53, zone, name)) == result.clone_id


def test_the_steps_reach_the_restore_through_the_url_deid_builds(rds, network):
    """moto's endpoint host is fake: the resolver maps it to a local MariaDB standing in for the restored
    instance. Through the URL clone_url builds, SELECT 1 answers and a table is written and read back."""
    admin = os.environ.get("DEID_TEST_MYSQL_URL")
    if not admin:
        pytest.skip("DEID_TEST_MYSQL_URL is not set: no MariaDB/MySQL server to stand in for the restore")
    source = make_source(rds, network, engine="mariadb")
    result = restores.restore_instance(rds, source, DATE, "run-sql", **FAST)
    assert rds.describe_db_instances(DBInstanceIdentifier=result.clone_id)["DBInstances"][0]["Engine"] == (
        "mariadb"
    )
    stand_in = sa.make_url(admin)
    database = f"deid_clone_{uuid.uuid4().hex[:10]}"
    server = sa.create_engine(admin)
    with server.begin() as c:
        c.execute(sa.text(f"CREATE DATABASE {database}"))
    resolve = lambda endpoint: Endpoint(host=stand_in.host, port=stand_in.port or 3306)  # noqa: E731
    url = clone_url(admin, result.endpoint, database=database, resolve=resolve)
    assert url.database == database and url.host == stand_in.host
    engine = sa.create_engine(url)
    try:
        with engine.begin() as c:
            assert c.execute(sa.text("SELECT 1")).scalar() == 1
            c.execute(sa.text("CREATE TABLE clone_probe (id int PRIMARY KEY, clone varchar(63))"))
            c.execute(sa.text("INSERT INTO clone_probe VALUES (1, :clone)"), {"clone": result.clone_id})
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT clone FROM clone_probe")).scalar() == result.clone_id
    finally:
        engine.dispose()
        with server.begin() as c:
            c.execute(sa.text(f"DROP DATABASE {database}"))
        server.dispose()
