"""deid.cloud.aurora and deid.cloud.dns with the real boto3 clients against moto's server on 127.0.0.1.

moto accepts any RestoreType and keeps no record of it, so what deid asked for is read from the requests
boto3 sent (a `provide-client-params` hook on the real client records them) and from the clone read back
(its tags, source, network and parameters). The clone's endpoint is fake; the last test maps it to a local
PostgreSQL standing in for the clone and runs SQL through the URL deid builds.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
import sqlalchemy as sa

from deid.cloud import aurora, dns, naming
from deid.cloud.awserrors import CloudError, CloudUnavailable, translate
from deid.cloud.endpoints import clone_url
from deid.cloud.results import Endpoint
from deid.cloud.waiting import wait_for, waiter_config
from deid.errors import ConfigError, TerminalError, TransientError
from tests.moto_server import (  # noqa: F401  (aws_env, calls, endpoint, network, rds, route53: fixtures)
    REGION,
    Calls,
    aws_env,
    calls,
    endpoint,
    free_port,
    network,
    rds,
    route53,
)

DATE = dt.date(2026, 12, 3)
FAST = {"timeout_seconds": 10, "poll_seconds": 0.1}  # moto's clusters are available at the second poll


def make_source(rds, network: dict, name: str | None = None) -> str:
    """An Aurora PostgreSQL cluster with its own parameter groups and one writer instance; its id."""
    source = name or f"prod-learners-{uuid.uuid4().hex[:8]}"
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=f"{source}-cluster",
        DBParameterGroupFamily="aurora-postgresql16",
        Description="the source's",
    )
    rds.create_db_parameter_group(
        DBParameterGroupName=f"{source}-instance",
        DBParameterGroupFamily="aurora-postgresql16",
        Description="the source's writer's",
    )
    rds.create_db_cluster(
        DBClusterIdentifier=source,
        Engine="aurora-postgresql",
        EngineVersion="16.4",
        MasterUsername="owner",
        MasterUserPassword=f"pw-{uuid.uuid4().hex}",
        DBSubnetGroupName=network["subnet_group"],
        VpcSecurityGroupIds=[network["security_group"]],
        DBClusterParameterGroupName=f"{source}-cluster",
        BackupRetentionPeriod=7,
        Tags=[{"Key": "team", "Value": "learning"}],
    )
    rds.create_db_instance(
        DBInstanceIdentifier=f"{source}-writer",
        DBClusterIdentifier=source,
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
        DBParameterGroupName=f"{source}-instance",
    )
    return source


@pytest.fixture
def source(rds, network) -> str:
    return make_source(rds, network)


def cluster(rds, cluster_id: str) -> dict:
    return rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]


def cluster_ids(rds) -> set[str]:
    return {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}


# ---- identifiers -------------------------------------------------------------------------------------


def test_clone_identifiers_are_readable_valid_and_fit_with_the_instance_suffix():
    """The id carries the source and the date, is the same for the same run, differs between runs, and
    keeps to RDS's rules however odd or long the source's name (room is left for the instance's suffix)."""
    clone = naming.clone_identifier("prod-learners", DATE, "scheduled__2026-12-03T00:00:00+00:00", room=2)
    assert clone.startswith("prod-learners-deid-20261203-")
    assert clone == naming.clone_identifier("prod-learners", DATE, "scheduled__2026-12-03T00:00:00+00:00", 2)
    assert clone != naming.clone_identifier("prod-learners", DATE, "manual__2026-12-04T09:00:00+00:00", 2)
    for odd in ("A" * 80, "9lives--Prod_DB-", "x" * 60 + "-y", "---"):
        made = naming.clone_identifier(odd, DATE, "r", room=2)
        assert len(naming.instance_identifier(made)) <= naming.MAX_IDENTIFIER
        assert naming.check_identifier(made) == made
        assert "--" not in made and made[0].isalpha() and not made.endswith("-")
    with pytest.raises(ConfigError, match="single hyphens"):
        naming.check_identifier("a--b")
    with pytest.raises(ConfigError, match="64 characters"):
        naming.check_identifier("a" * 64)


def test_the_restore_time_of_a_logical_date_is_the_end_of_its_day_in_utc():
    assert naming.end_of_logical_date(DATE) == dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


# ---- the clone ---------------------------------------------------------------------------------------


def test_a_clone_is_copy_on_write_of_the_source_tagged_as_deids_with_one_instance(rds, source, calls):
    """The request is RestoreType copy-on-write at the latest restorable time; the clone read back carries
    deid's tags and the source's subnet group, security group and parameter groups; its one instance has
    the source's engine, the class asked for and the writer's parameter group; the result says so."""
    result = aurora.clone_cluster(rds, source, DATE, "run-1", instance_class="db.r6g.xlarge", **FAST)

    (asked,) = calls.of("RestoreDBClusterToPointInTime")
    assert asked["RestoreType"] == "copy-on-write"
    assert asked["UseLatestRestorableTime"] is True
    assert "RestoreToTime" not in asked
    assert asked["SourceDBClusterIdentifier"] == source

    clone = cluster(rds, result.clone_id)
    original = cluster(rds, source)
    tags = naming.tags_of(clone)
    assert tags == {
        naming.TAG_MANAGED: "true",
        naming.TAG_SOURCE: source,
        naming.TAG_LOGICAL_DATE: "2026-12-03",
        naming.TAG_RUN_ID: "run-1",
        naming.TAG_RESTORE_TYPE: "copy-on-write",
    }
    assert clone["DBSubnetGroup"] == original["DBSubnetGroup"]
    assert (
        clone["VpcSecurityGroups"][0]["VpcSecurityGroupId"]
        == original["VpcSecurityGroups"][0]["VpcSecurityGroupId"]
    )
    assert clone["DBClusterParameterGroup"] == f"{source}-cluster"
    assert clone["Engine"] == "aurora-postgresql"

    instance = rds.describe_db_instances(DBInstanceIdentifier=result.instance_id)["DBInstances"][0]
    assert instance["DBClusterIdentifier"] == result.clone_id
    assert instance["DBInstanceClass"] == "db.r6g.xlarge"
    assert instance["Engine"] == "aurora-postgresql"
    assert [g["DBParameterGroupName"] for g in instance["DBParameterGroups"]] == [f"{source}-instance"]
    assert naming.tags_of(instance)[naming.TAG_SOURCE] == source

    assert result.clone_id.startswith(f"{source}-deid-20261203-")
    assert result.instance_id == result.clone_id + "-1"
    assert result.restore_type == "copy-on-write"
    assert result.restore_time is not None
    assert result.endpoint == Endpoint(host=clone["Endpoint"], port=clone["Port"])
    assert result.clone_count == 1 and result.clone_limit == 15 and result.warning is None
    assert not result.resumed
    assert set(result.seconds) >= {"restore", "wait_cluster", "create_instance", "wait_instance"}
    assert result.seconds_to_available >= result.seconds["wait_cluster"] > 0
    recorded = result.model_dump(mode="json")
    assert recorded["logical_date"] == "2026-12-03" and recorded["endpoint"]["port"] == clone["Port"]


def test_a_security_group_of_deids_own_replaces_the_sources(rds, source, network, endpoint, calls):
    """Until publish, the unscrubbed clone can sit behind a group only deid's workers reach."""
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=REGION)
    own = ec2.create_security_group(
        GroupName=f"deid-{uuid.uuid4().hex[:8]}", Description="deid's workers only", VpcId=network["vpc"]
    )["GroupId"]

    result = aurora.clone_cluster(rds, source, DATE, "run-sg", security_group_ids=[own], **FAST)

    assert calls.of("RestoreDBClusterToPointInTime")[0]["VpcSecurityGroupIds"] == [own]
    groups = [g["VpcSecurityGroupId"] for g in cluster(rds, result.clone_id)["VpcSecurityGroups"]]
    assert groups == [own] != [network["security_group"]]


def test_a_retried_run_waits_for_its_clone_instead_of_making_another(rds, source, calls):
    """The same run asking again (an Airflow retry after a timeout) finds its clone: no second restore."""
    first = aurora.clone_cluster(rds, source, DATE, "run-retry", **FAST)
    again = aurora.clone_cluster(rds, source, DATE, "run-retry", **FAST)

    assert again.clone_id == first.clone_id
    assert again.resumed and not first.resumed
    assert len(calls.of("RestoreDBClusterToPointInTime")) == 1
    assert len(calls.of("CreateDBInstance")) == 2  # the source's writer, then the clone's one instance
    assert again.instance_id == first.instance_id
    assert first.seconds and "restore" not in again.seconds


def test_the_source_writers_class_is_the_default(rds, source):
    result = aurora.clone_cluster(rds, source, DATE, "run-class", **FAST)
    instance = rds.describe_db_instances(DBInstanceIdentifier=result.instance_id)["DBInstances"][0]
    assert instance["DBInstanceClass"] == "db.r6g.large"


def test_a_backfill_inside_the_window_is_a_full_copy_restore_to_that_time(rds, source, calls):
    """AWS refuses RestoreToTime with copy-on-write, so a backfill's date is a full-copy point-in-time
    restore to it; the tags and the result say so."""
    time.sleep(0.2)  # moto's window runs from the cluster's creation to now
    window = cluster(rds, source)
    when = (
        window["EarliestRestorableTime"]
        + (window["LatestRestorableTime"] - window["EarliestRestorableTime"]) / 2
    )

    result = aurora.clone_cluster(rds, source, DATE, "run-backfill", restore_to=when, **FAST)

    (asked,) = calls.of("RestoreDBClusterToPointInTime")
    assert asked["RestoreType"] == "full-copy"
    assert asked["RestoreToTime"] == when
    assert "UseLatestRestorableTime" not in asked
    assert naming.tags_of(cluster(rds, result.clone_id))[naming.TAG_RESTORE_TYPE] == "full-copy"
    assert result.restore_type == "full-copy" and result.restore_time == when
    assert result.clone_count == 0  # a full copy is no copy-on-write clone


def test_a_date_outside_the_window_is_refused_before_anything_is_restored(rds, source, calls):
    """A backfill before the earliest restorable time fails naming the cluster, the window, the time asked
    for and the fix, and no restore is asked of AWS."""
    before = cluster_ids(rds)
    asked = naming.end_of_logical_date(dt.date(2020, 1, 1))

    with pytest.raises(TerminalError) as refused:
        aurora.clone_cluster(rds, source, dt.date(2020, 1, 1), "run-old", restore_to=asked, **FAST)

    text = str(refused.value)
    assert f"cluster '{source}' can be restored to" in text
    assert "not to 2020-01-02T00:00:00Z" in text
    assert "BackupRetentionPeriod" in text and "backup retention 7 days" in text
    assert calls.of("RestoreDBClusterToPointInTime") == []
    assert cluster_ids(rds) == before


def test_a_future_restore_time_is_refused_too(rds, source, calls):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with pytest.raises(CloudError, match="can be restored to .* only"):
        aurora.clone_cluster(rds, source, DATE, "run-future", restore_to=later, **FAST)
    assert calls.of("RestoreDBClusterToPointInTime") == []


def test_a_source_without_an_instance_is_refused_as_aws_would(rds, network, calls):
    empty = f"prod-empty-{uuid.uuid4().hex[:8]}"
    rds.create_db_cluster(
        DBClusterIdentifier=empty, Engine="aurora-postgresql", MasterUsername="x", MasterUserPassword="p" * 12
    )
    with pytest.raises(CloudError, match=f"cluster '{empty}' has no instance, and Aurora clones only"):
        aurora.clone_cluster(rds, empty, DATE, "run-empty", **FAST)
    assert calls.of("RestoreDBClusterToPointInTime") == []


def test_an_unknown_source_is_a_terminal_error_naming_it_and_the_fix(rds, aws_env):
    with pytest.raises(CloudError) as missing:
        aurora.clone_cluster(rds, "no-such-cluster", DATE, "run-x", **FAST)
    text = str(missing.value)
    assert "'no-such-cluster'" in text and "DBClusterNotFoundFault" in text
    assert "check the identifier in deid.yaml and the region" in text
    assert aws_env not in text


# ---- the clone limit -------------------------------------------------------------------------------


def test_the_sixteenth_clone_is_refused_naming_the_limit_the_count_and_the_clones(rds, source, calls):
    """Clones 13 and 14 carry a warning with their count; the 15th is made; the 16th is refused before any
    restore with the limit, the count and deid's clones oldest first."""
    made = []
    for n in range(1, 16):
        result = aurora.clone_cluster(rds, source, DATE + dt.timedelta(days=n), f"run-{n}", **FAST)
        made.append(result)
        assert result.clone_count == n
    assert [r.warning is not None for r in made] == [False] * 12 + [True] * 3
    assert "13 of 15 copy-on-write clones" in made[12].warning
    assert "14 of 15" in made[13].warning and "1 more before Aurora refuses" in made[13].warning
    restores = len(calls.of("RestoreDBClusterToPointInTime"))

    with pytest.raises(CloudError) as refused:
        aurora.clone_cluster(rds, source, DATE + dt.timedelta(days=16), "run-16", **FAST)

    text = str(refused.value)
    assert "has 15 copy-on-write clones and Aurora allows 15" in text
    assert f"oldest first: {made[0].clone_id}, {made[1].clone_id}," in text
    assert "lower `retention`" in text
    assert refused.value.code == "CloneLimit"
    assert len(calls.of("RestoreDBClusterToPointInTime")) == restores
    assert aurora.count_clones(rds, source).count == 15


def test_the_count_takes_the_clone_group_and_leaves_full_copies_and_other_sources_out(rds, network):
    """Members of the source's clone group that are not deid's count (AWS's CloneGroupId, which moto does
    not set: added to the described clusters here); deid's full copies and clones of another source do
    not."""
    source = make_source(rds, network)
    other = make_source(rds, network)
    aurora.clone_cluster(rds, source, DATE, "cow", **FAST)
    time.sleep(0.2)
    window = cluster(rds, source)
    aurora.clone_cluster(rds, source, DATE, "full", restore_to=window["LatestRestorableTime"], **FAST)
    aurora.clone_cluster(rds, other, DATE, "cow", **FAST)

    clusters = rds.describe_db_clusters()["DBClusters"]
    count = aurora.clone_count_of(clusters, cluster(rds, source))
    assert count.count == 1 and count.others == ()

    grouped = [
        {**c, "CloneGroupId": "group-1"} if c["DBClusterIdentifier"] in (source, other) else c
        for c in clusters
    ]
    count = aurora.clone_count_of(grouped, {**cluster(rds, source), "CloneGroupId": "group-1"}, limit=2)
    assert count.others == (other,)
    assert count.count == 2
    with pytest.raises(CloudError, match=f"Not deid's \\(same clone group\\): {other}"):
        aurora.check_clone_limit(count)


# ---- retention -------------------------------------------------------------------------------------


def test_retention_deletes_only_deids_old_clones_never_the_published_one_nor_untagged_clusters(rds, network):
    """Four clones of one source, keep 2, the oldest-but-one published: only the oldest goes, instances
    first; a cluster named like deid's but untagged, and deid's clone of another source, stay."""
    source = make_source(rds, network)
    other = make_source(rds, network)
    clones = [
        aurora.clone_cluster(rds, source, DATE + dt.timedelta(days=n), f"r{n}", **FAST) for n in range(4)
    ]
    elsewhere = aurora.clone_cluster(rds, other, DATE, "r0", **FAST)
    lookalike = naming.clone_identifier(source, DATE - dt.timedelta(days=9), "by-hand", room=2)
    rds.create_db_cluster(
        DBClusterIdentifier=lookalike,
        Engine="aurora-postgresql",
        MasterUsername="x",
        MasterUserPassword="p" * 12,
    )

    outcome = aurora.delete_old_clones(rds, source, keep=2, protect=[clones[1].clone_id], **FAST)

    assert outcome.deleted == (clones[0].clone_id,)
    assert outcome.kept == (clones[3].clone_id, clones[2].clone_id)
    assert outcome.protected == (clones[1].clone_id,)
    remaining = cluster_ids(rds)
    assert clones[0].clone_id not in remaining
    assert {
        clones[1].clone_id,
        clones[2].clone_id,
        clones[3].clone_id,
        lookalike,
        elsewhere.clone_id,
    } <= remaining
    with pytest.raises(Exception, match="DBInstanceNotFound"):
        rds.describe_db_instances(DBInstanceIdentifier=clones[0].instance_id)
    assert aurora.count_clones(rds, source).count == 3

    with pytest.raises(CloudError, match="does not carry deid's tags"):
        aurora.delete_clone(rds, lookalike, **FAST)
    assert lookalike in cluster_ids(rds)


# ---- waiting and errors ----------------------------------------------------------------------------


def test_waiter_config_bounds_the_wait_by_seconds():
    assert waiter_config(3600, 30) == {"Delay": 30, "MaxAttempts": 121}
    assert waiter_config(5, 30) == {"Delay": 30, "MaxAttempts": 1}


def test_a_wait_that_runs_out_is_transient_and_names_the_cluster_the_timeout_and_the_fix(rds, source):
    """A stopped cluster never becomes available: the wait ends after its bound with a transient error."""
    rds.stop_db_cluster(DBClusterIdentifier=source)
    began = time.monotonic()
    with pytest.raises(TransientError) as late:
        wait_for(
            rds,
            "db_cluster_available",
            what=f"Aurora clone '{source}'",
            timeout_seconds=0.6,
            poll_seconds=0.2,
            fix="run the task again",
            DBClusterIdentifier=source,
        )
    assert time.monotonic() - began < 5
    text = str(late.value)
    assert f"Aurora clone '{source}' was not ready within 0.6 s (status stopped)" in text
    assert "Fix: run the task again" in text


def test_throttling_and_unreachable_aws_are_transient_a_denial_is_terminal(aws_env):
    """The classification of AWS errors, on botocore's own exception types; and a closed port."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    def client_error(code: str, status: int) -> ClientError:
        response = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, "RestoreDBClusterToPointInTime")

    assert isinstance(translate(client_error("Throttling", 400), "cloning", "'c'"), CloudUnavailable)
    assert isinstance(translate(client_error("InternalFailure", 500), "cloning", "'c'"), TransientError)
    denied = translate(client_error("AccessDenied", 403), "cloning cluster", "'prod' into 'x'")
    assert isinstance(denied, TerminalError) and not denied.transient
    assert "IAM action rds:RestoreDBClusterToPointInTime" in str(denied)
    quota = translate(client_error("DBClusterQuotaExceededFault", 400), "cloning", "'c'")
    assert "Service Quotas" in str(quota) and not quota.transient

    closed = boto3.client(
        "rds",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name=REGION,
        config=Config(connect_timeout=1, retries={"max_attempts": 1}),
    )
    with pytest.raises(CloudUnavailable, match="could not be reached") as unreachable:
        aurora.count_clones(closed, "prod")
    assert aws_env not in str(unreachable.value)


# ---- publish by Route 53 ---------------------------------------------------------------------------


def test_publish_points_the_staging_name_at_the_clone_and_rollback_points_it_back(rds, route53, source):
    """UPSERT of a CNAME with a short TTL; read back; the second publish returns the first clone's endpoint,
    which names the clone to protect from retention, and pointing back at it is the rollback."""
    zone = route53.create_hosted_zone(Name="db.example.internal.", CallerReference=uuid.uuid4().hex)[
        "HostedZone"
    ]["Id"]
    name = "learners-staging.db.example.internal"
    first = aurora.clone_cluster(rds, source, DATE, "night-1", **FAST)
    second = aurora.clone_cluster(rds, source, DATE + dt.timedelta(days=1), "night-2", **FAST)
    assert dns.current_target(route53, zone, name) is None

    published = dns.point_name(route53, zone, name, first.endpoint.host, poll_seconds=0.1)
    assert published.previous is None and published.change_id
    assert dns.current_target(route53, zone, name) == first.endpoint.host
    record = dns.read_record(route53, zone, name)
    assert record["Type"] == "CNAME" and record["TTL"] == 60

    swapped = dns.point_name(route53, zone, name, second.endpoint.host, poll_seconds=0.1)
    assert swapped.previous == first.endpoint.host
    assert dns.current_target(route53, zone, name) == second.endpoint.host
    assert aurora.clone_behind(rds, dns.current_target(route53, zone, name)) == second.clone_id
    assert aurora.clone_behind(rds, swapped.previous) == first.clone_id

    rolled_back = dns.point_name(route53, zone, name, swapped.previous, poll_seconds=0.1)
    assert rolled_back.previous == second.endpoint.host
    assert dns.current_target(route53, zone, name) == first.endpoint.host
    unchanged = dns.point_name(route53, zone, name, first.endpoint.host)
    assert unchanged.change_id is None


def test_publish_refuses_a_name_that_is_not_a_cname(route53):
    zone = route53.create_hosted_zone(Name="db.example.internal.", CallerReference=uuid.uuid4().hex)[
        "HostedZone"
    ]["Id"]
    name = "reports.db.example.internal"
    a_record = {"Name": name, "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "10.0.0.5"}]}
    route53.change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": a_record}]}
    )
    with pytest.raises(CloudError, match="is a A record, not the CNAME deid publishes with"):
        dns.point_name(route53, zone, name, "clone.example.com")
    assert dns.read_record(route53, zone, name)["Type"] == "A"


# ---- SQL against a stand-in for the clone ----------------------------------------------------------


@pytest.mark.one_server
def test_the_steps_reach_the_clone_through_the_url_deid_builds(rds, source, pg_url: str):
    """moto's endpoint host is fake: the resolver maps it to a local PostgreSQL standing in for the clone.
    Through the URL clone_url builds, SELECT 1 answers and a table is written and read back."""
    result = aurora.clone_cluster(rds, source, DATE, "run-sql", **FAST)
    stand_in = sa.make_url(pg_url)
    seen: list[Endpoint] = []

    def resolve(endpoint: Endpoint) -> Endpoint:
        seen.append(endpoint)
        return Endpoint(host=stand_in.host, port=stand_in.port or 5432)

    unresolved = clone_url(pg_url, result.endpoint)
    assert unresolved.host == result.endpoint.host and unresolved.port == result.endpoint.port
    url = clone_url(pg_url, result.endpoint, resolve=resolve)
    assert seen == [result.endpoint]
    assert url.database == stand_in.database and url.username == stand_in.username

    engine = sa.create_engine(url)
    try:
        with engine.begin() as c:
            assert c.execute(sa.text("SELECT 1")).scalar() == 1
            c.execute(sa.text("CREATE TABLE clone_probe (id int PRIMARY KEY, clone text)"))
            c.execute(sa.text("INSERT INTO clone_probe VALUES (1, :clone)"), {"clone": result.clone_id})
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT clone FROM clone_probe")).scalar() == result.clone_id
    finally:
        engine.dispose()
