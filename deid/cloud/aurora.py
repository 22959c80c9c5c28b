"""Aurora cluster clones: tonight's working copy as a copy-on-write clone of the production cluster.

`clone_cluster` restores the source with RestoreType copy-on-write at its latest restorable time (the clone
shares the source's storage pages until either writes), adds one instance, waits for both within a bound,
and returns the clone's endpoint with what each call took. A backfill asks for the state at a past moment:
AWS refuses RestoreToTime with copy-on-write, so that is a full-copy point-in-time restore (slower, its own
storage), and only inside the source's restorable window, which is checked before anything is asked of AWS.

Aurora limits the copy-on-write clones of one source (15 when this was written): `count_clones` counts
deid's (by tag) and the other members of the source's clone group; `clone_cluster` refuses to go past the
limit, naming the clones to delete, and warns from 13. `delete_old_clones` keeps deid's newest N and the
published one; it never touches a cluster deid did not tag.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deid.cloud import naming
from deid.cloud.awserrors import CloudError, aws
from deid.cloud.results import CloneCount, CloneResult, Deleted, Endpoint, timed
from deid.cloud.waiting import wait_for

CLONE_LIMIT = 15  # copy-on-write clones per source cluster (Aurora User Guide, "Limitations of cloning")
WARN_AT = 13
TIMEOUT_SECONDS = 3600.0  # a clone is usually available in minutes; a full copy of a big cluster takes longer
POLL_SECONDS = 30.0


def describe_cluster(rds: Any, cluster_id: str) -> dict:
    with aws("reading cluster", f"'{cluster_id}'"):
        return rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]


def list_clusters(rds: Any) -> list[dict]:
    """Every cluster the client can see in its region (deid's clones are found among them by tag)."""
    with aws("listing", "the region's clusters"):
        pages = rds.get_paginator("describe_db_clusters").paginate()
        return [cluster for page in pages for cluster in page["DBClusters"]]


def _find(rds: Any, cluster_id: str) -> dict | None:
    return next((c for c in list_clusters(rds) if c["DBClusterIdentifier"] == cluster_id), None)


def check_restore_time(cluster: Mapping, when: dt.datetime) -> None:
    """Refuse `when` unless it lies in the cluster's [EarliestRestorableTime, LatestRestorableTime]."""
    if when.tzinfo is None:
        raise ValueError("the restore time must be timezone-aware")
    name = cluster["DBClusterIdentifier"]
    earliest, latest = cluster.get("EarliestRestorableTime"), cluster.get("LatestRestorableTime")
    asked = naming.iso_utc(when)
    if earliest is None or latest is None:
        raise CloudError(
            f"cluster '{name}' reports no restorable window, so deid cannot restore it to {asked}. "
            "Fix: turn on its automated backups (BackupRetentionPeriod of 1 day or more)."
        )
    if not earliest <= when <= latest:
        window = f"{naming.iso_utc(earliest)} .. {naming.iso_utc(latest)}"
        days = cluster.get("BackupRetentionPeriod")
        raise CloudError(
            f"cluster '{name}' can be restored to {window} only (backup retention {days} days), not to "
            f"{asked}. Fix: backfill a logical date inside that window, or raise the cluster's "
            "BackupRetentionPeriod (up to 35 days) before the dates you need."
        )


def clone_count_of(clusters: Iterable[Mapping], source: Mapping, limit: int = CLONE_LIMIT) -> CloneCount:
    """The copy-on-write clones of `source` among `clusters` (describe_db_clusters output): deid's, by
    tag, and the other members of the source's clone group (CloneGroupId), the source itself aside."""
    source_id = source["DBClusterIdentifier"]
    group = source.get("CloneGroupId")
    deids, others = [], []
    for cluster in clusters:
        cluster_id = cluster["DBClusterIdentifier"]
        if cluster_id == source_id:
            continue
        tags = naming.tags_of(cluster)
        if naming.is_deids(cluster, source_id):
            if tags.get(naming.TAG_RESTORE_TYPE) == "copy-on-write":
                deids.append(cluster)
            # deid's full copies belong to no clone group's limit
        elif group and cluster.get("CloneGroupId") == group:
            others.append(cluster_id)
    newest = naming.newest_first(deids, "ClusterCreateTime")
    oldest_first = [c["DBClusterIdentifier"] for c in reversed(newest)]
    return CloneCount(source=source_id, limit=limit, deids=tuple(oldest_first), others=tuple(sorted(others)))


def count_clones(rds: Any, source: str, limit: int = CLONE_LIMIT) -> CloneCount:
    """The copy-on-write clones of cluster `source` that exist now (see clone_count_of)."""
    return clone_count_of(list_clusters(rds), describe_cluster(rds, source), limit)


def check_clone_limit(count: CloneCount) -> None:
    """Refuse one more copy-on-write clone when `count` is at the limit, naming the clones to delete."""
    if count.count < count.limit:
        return
    named = ", ".join(count.deids) or "none"
    text = (
        f"cluster '{count.source}' has {count.count} copy-on-write clones and Aurora allows {count.limit} "
        f"per source, so deid will not ask for another. deid's clones, oldest first: {named}."
    )
    if count.others:
        text += f" Not deid's (same clone group): {', '.join(count.others)}."
    text += (
        " Fix: delete the oldest of deid's clones (instances first, then the cluster) or lower `retention` "
        "in deid.yaml so each run keeps fewer, then run the snapshot again."
    )
    raise CloudError(text, "CloneLimit")


def near_limit(count: int, limit: int, warn_at: int = WARN_AT) -> str | None:
    """A warning for the record once `count` clones (the new one included) reach `warn_at`."""
    if count < warn_at:
        return None
    left = max(limit - count, 0)
    return (
        f"{count} of {limit} copy-on-write clones of this source exist: {left} more before Aurora refuses. "
        "Lower `retention` in deid.yaml or delete clones nobody uses."
    )


def clone_cluster(
    rds: Any,
    source: str,
    logical_date: dt.date,
    run_id: str,
    *,
    instance_class: str | None = None,
    restore_to: dt.datetime | None = None,
    security_group_ids: Sequence[str] | None = None,
    timeout_seconds: float = TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    clone_limit: int = CLONE_LIMIT,
    warn_at: int = WARN_AT,
    database: str | None = None,
) -> CloneResult:
    """Clone cluster `source` for the run (`logical_date`, `run_id`) and put one instance in it.

    `restore_to` None: a copy-on-write clone at the latest restorable time (the nightly run). A time (a
    backfill; see naming.end_of_logical_date): a full-copy restore to it, refused outside the source's
    restorable window. `instance_class` None: the class of the source's writer. `security_group_ids` None:
    the source's; a group only deid's workers reach keeps the unscrubbed clone from everyone else until
    publish. A retried task finds the clone its first try made (same identifier and tags) and only waits
    for it. `database` (deid.yaml's name of the database the clone is for) is tagged on the clone and
    digested into its identifier (see naming.clone_identifier).
    """
    seconds: dict[str, float] = {}
    with timed(seconds, "describe_source"):
        cluster = describe_cluster(rds, source)
        clusters = list_clusters(rds)
    restore_type = "full-copy" if restore_to is not None else "copy-on-write"
    clone_id = naming.clone_identifier(
        source, logical_date, run_id, room=len(naming.INSTANCE_SUFFIX), database=database
    )
    instance_id = naming.instance_identifier(clone_id)
    existing = next((c for c in clusters if c["DBClusterIdentifier"] == clone_id), None)
    if existing is not None and not naming.same_run(existing, source, logical_date, run_id, database):
        raise CloudError(
            f"a cluster named '{clone_id}' exists and is not the clone of this run. Fix: delete it, or "
            "run with another run id.",
            "DBClusterAlreadyExistsFault",
        )
    if existing is not None:  # a retry goes on with what its first try asked for
        restore_type = naming.tags_of(existing).get(naming.TAG_RESTORE_TYPE, restore_type)
    elif restore_type == "copy-on-write" and not cluster.get("DBClusterMembers"):
        raise CloudError(
            f"cluster '{source}' has no instance, and Aurora clones only clusters with at least one. Fix: "
            "add an instance to it, or clone another cluster of the same data."
        )
    if restore_to is not None and existing is None:  # a retry waits for its clone, wherever the window is now
        check_restore_time(cluster, restore_to)
    count = clone_count_of(clusters, cluster, clone_limit)
    if restore_type == "copy-on-write" and existing is None:
        check_clone_limit(count)
    writer = _writer(rds, cluster)
    began = time.monotonic()
    if existing is None:
        restore_time = restore_to or cluster.get("LatestRestorableTime")
        with timed(seconds, "restore"), aws("cloning cluster", f"'{source}' into '{clone_id}'"):
            rds.restore_db_cluster_to_point_in_time(
                **_restore_arguments(cluster, clone_id, restore_to, security_group_ids),
                Tags=naming.clone_tags(source, logical_date, run_id, restore_type, database),
            )
    else:
        restore_time = restore_to if restore_type == "full-copy" else None
    what = f"Aurora clone '{clone_id}' of '{source}'"
    fix = (
        f"run the task again (it waits for the same clone) or raise the timeout above {timeout_seconds:g} s; "
        "if the clone is stuck, delete it"
    )
    with timed(seconds, "wait_cluster"):
        wait_for(
            rds,
            "db_cluster_available",
            what=what,
            timeout_seconds=timeout_seconds,
            poll_seconds=poll_seconds,
            fix=fix,
            DBClusterIdentifier=clone_id,
        )
    if not _instance_exists(rds, instance_id):
        with timed(seconds, "create_instance"), aws("adding instance", f"'{instance_id}' to '{clone_id}'"):
            rds.create_db_instance(
                **_instance_arguments(cluster, writer, clone_id, instance_id, instance_class),
                Tags=naming.clone_tags(source, logical_date, run_id, restore_type, database),
            )
    with timed(seconds, "wait_instance"):
        wait_for(
            rds,
            "db_instance_available",
            what=f"instance '{instance_id}' of {what}",
            timeout_seconds=timeout_seconds,
            poll_seconds=poll_seconds,
            fix=fix,
            DBInstanceIdentifier=instance_id,
        )
    available = time.monotonic() - began
    with timed(seconds, "endpoint"):
        endpoint = cluster_endpoint(rds, clone_id)
    made = 1 if restore_type == "copy-on-write" and existing is None else 0
    total = count.count + made
    return CloneResult(
        kind="aurora_clone",
        clone_id=clone_id,
        instance_id=instance_id,
        source=source,
        logical_date=logical_date,
        run_id=run_id,
        restore_type=restore_type,
        restore_time=restore_time,
        endpoint=endpoint,
        seconds_to_available=round(available, 3),
        seconds=seconds,
        clone_count=total,
        clone_limit=clone_limit,
        warning=near_limit(total, clone_limit, warn_at),
        resumed=existing is not None,
    )


def cluster_endpoint(rds: Any, clone_id: str) -> Endpoint:
    """The writer endpoint of cluster `clone_id`."""
    cluster = describe_cluster(rds, clone_id)
    if not cluster.get("Endpoint"):
        raise CloudError(f"cluster '{clone_id}' has no endpoint yet. Fix: wait until it is available.")
    return Endpoint(host=cluster["Endpoint"], port=int(cluster["Port"]))


def clones_of(rds: Any, source: str) -> list[dict]:
    """deid's clones of `source` (by tag), newest first."""
    return naming.newest_first(
        [c for c in list_clusters(rds) if naming.is_deids(c, source)], "ClusterCreateTime"
    )


def clone_behind(rds: Any, host: str) -> str | None:
    """The cluster whose writer endpoint is `host` (what a published name points at), if any."""
    wanted = host.rstrip(".").lower()
    for cluster in list_clusters(rds):
        if (cluster.get("Endpoint") or "").lower() == wanted:
            return cluster["DBClusterIdentifier"]
    return None


def delete_clone(
    rds: Any, clone_id: str, *, timeout_seconds: float = TIMEOUT_SECONDS, poll_seconds: float = POLL_SECONDS
) -> None:
    """Delete deid's clone `clone_id`: its instances (waiting until they are gone), then the cluster, with
    no final snapshot. Refuses a cluster that does not carry deid's tags."""
    cluster = describe_cluster(rds, clone_id)
    if not naming.is_deids(cluster):
        raise CloudError(
            f"cluster '{clone_id}' does not carry deid's tags ({naming.TAG_MANAGED}), so deid will not "
            "delete it. Fix: delete it yourself if it is not needed."
        )
    members = [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers") or ()]
    for instance_id in members:
        with aws("deleting instance", f"'{instance_id}' of clone '{clone_id}'"):
            rds.delete_db_instance(DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True)
    for instance_id in members:
        wait_for(
            rds,
            "db_instance_deleted",
            what=f"the deletion of instance '{instance_id}' of clone '{clone_id}'",
            timeout_seconds=timeout_seconds,
            poll_seconds=poll_seconds,
            fix="run retention again later (the cluster is deleted once its instances are gone)",
            DBInstanceIdentifier=instance_id,
        )
    with aws("deleting clone", f"'{clone_id}'"):
        rds.delete_db_cluster(DBClusterIdentifier=clone_id, SkipFinalSnapshot=True)


def delete_old_clones(
    rds: Any,
    source: str,
    keep: int,
    *,
    protect: Iterable[str] = (),
    timeout_seconds: float = TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> Deleted:
    """Keep deid's `keep` newest clones of `source` (by logical date, then creation) and those in `protect`
    (the published one); delete the others. Clusters deid did not tag are never looked at."""
    if keep < 1:
        raise ValueError("retention keeps at least the newest clone")
    began = time.monotonic()
    guarded = set(protect)
    ours = [c["DBClusterIdentifier"] for c in clones_of(rds, source)]
    kept, beyond = ours[:keep], ours[keep:]
    deleted = []
    for clone_id in beyond:
        if clone_id in guarded:
            continue
        delete_clone(rds, clone_id, timeout_seconds=timeout_seconds, poll_seconds=poll_seconds)
        deleted.append(clone_id)
    return Deleted(
        source=source,
        deleted=tuple(deleted),
        kept=tuple(kept),
        protected=tuple(c for c in beyond if c in guarded),
        seconds=round(time.monotonic() - began, 3),
    )


def _restore_arguments(
    cluster: Mapping, clone_id: str, restore_to: dt.datetime | None, security_group_ids: Sequence[str] | None
) -> dict[str, Any]:
    """restore_db_cluster_to_point_in_time's arguments: the source's network and parameters, which the
    API would otherwise replace by the defaults (the default security group above all)."""
    arguments: dict[str, Any] = {
        "DBClusterIdentifier": clone_id,
        "SourceDBClusterIdentifier": cluster["DBClusterIdentifier"],
        "DeletionProtection": False,  # retention deletes it
    }
    if restore_to is None:
        arguments |= {"RestoreType": "copy-on-write", "UseLatestRestorableTime": True}
    else:
        arguments |= {"RestoreType": "full-copy", "RestoreToTime": restore_to}
    if cluster.get("DBSubnetGroup"):
        arguments["DBSubnetGroupName"] = cluster["DBSubnetGroup"]
    groups = list(
        security_group_ids or [g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups") or ()]
    )
    if groups:
        arguments["VpcSecurityGroupIds"] = groups
    if cluster.get("DBClusterParameterGroup"):
        arguments["DBClusterParameterGroupName"] = cluster["DBClusterParameterGroup"]
    if cluster.get("Port"):
        arguments["Port"] = int(cluster["Port"])
    if cluster.get("IAMDatabaseAuthenticationEnabled"):
        arguments["EnableIAMDatabaseAuthentication"] = True
    scaling = cluster.get("ServerlessV2ScalingConfiguration") or {}
    if scaling.get("MinCapacity") is not None and scaling.get("MaxCapacity") is not None:
        arguments["ServerlessV2ScalingConfiguration"] = {
            "MinCapacity": scaling["MinCapacity"],
            "MaxCapacity": scaling["MaxCapacity"],
        }
    return arguments


def _writer(rds: Any, cluster: Mapping) -> dict | None:
    """The source's writer instance, described (its class and parameter group are the clone's defaults)."""
    members = cluster.get("DBClusterMembers") or ()
    writer = next((m for m in members if m.get("IsClusterWriter")), members[0] if members else None)
    if writer is None:
        return None
    instance_id = writer["DBInstanceIdentifier"]
    with aws("reading instance", f"'{instance_id}' of cluster '{cluster['DBClusterIdentifier']}'"):
        return rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]


def _instance_arguments(
    cluster: Mapping, writer: Mapping | None, clone_id: str, instance_id: str, instance_class: str | None
) -> dict[str, Any]:
    chosen = instance_class or (writer or {}).get("DBInstanceClass")
    if not chosen:
        raise CloudError(
            f"cluster '{cluster['DBClusterIdentifier']}' has no instance to take a class from. Fix: set the "
            "clone's instance class in deid.yaml."
        )
    arguments: dict[str, Any] = {
        "DBInstanceIdentifier": instance_id,
        "DBClusterIdentifier": clone_id,
        "Engine": cluster["Engine"],
        "DBInstanceClass": chosen,
    }
    groups = [g["DBParameterGroupName"] for g in (writer or {}).get("DBParameterGroups") or ()]
    if groups:
        arguments["DBParameterGroupName"] = groups[0]
    if writer is not None and "PubliclyAccessible" in writer:
        arguments["PubliclyAccessible"] = bool(writer["PubliclyAccessible"])
    return arguments


def _instance_exists(rds: Any, instance_id: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        rds.describe_db_instances(DBInstanceIdentifier=instance_id)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "DBInstanceNotFound":
            return False
        with aws("reading instance", f"'{instance_id}'"):
            raise
    return True
