"""RDS (not Aurora) working copies: an instance restored from a snapshot of the production instance.

RDS instances have no copy-on-write clone; a restore from a snapshot is the nearest thing (the new volume is
hydrated from S3 lazily, so it is available long before every block is read). `restore_instance` picks the
newest available snapshot of the source, automated or manual, taken at or before the time asked for (the
end of a backfill's logical date; the newest of all otherwise), restores it into an instance tagged as
deid's with the source's network and parameters, and waits for it within a bound. `delete_old_restores`
keeps deid's newest N and the published one; it never touches an instance deid did not tag.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deid.cloud import naming
from deid.cloud.awserrors import CloudError, aws
from deid.cloud.results import CloneResult, Deleted, Endpoint, timed
from deid.cloud.waiting import wait_for

TIMEOUT_SECONDS = 3600.0
POLL_SECONDS = 30.0


def describe_instance(rds: Any, instance_id: str) -> dict:
    with aws("reading instance", f"'{instance_id}'"):
        return rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]


def list_instances(rds: Any) -> list[dict]:
    with aws("listing", "the region's instances"):
        pages = rds.get_paginator("describe_db_instances").paginate()
        return [instance for page in pages for instance in page["DBInstances"]]


def pick_snapshot(rds: Any, source: str, taken_by: dt.datetime | None = None) -> dict:
    """The newest available snapshot (automated or manual) of instance `source` taken at or before
    `taken_by` (any time when None)."""
    with aws("listing snapshots of", f"instance '{source}'"):
        pages = rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=source)
        snapshots = [s for page in pages for s in page["DBSnapshots"]]
    ready = [s for s in snapshots if s.get("Status") == "available" and s.get("SnapshotCreateTime")]
    fitting = [s for s in ready if taken_by is None or s["SnapshotCreateTime"] <= taken_by]
    if fitting:
        return max(fitting, key=lambda s: s["SnapshotCreateTime"])
    if not ready:
        raise CloudError(
            f"instance '{source}' has no available snapshot. Fix: turn on its automated backups, or take a "
            "manual snapshot, then run the snapshot step again."
        )
    oldest = min(ready, key=lambda s: s["SnapshotCreateTime"])
    raise CloudError(
        f"instance '{source}' has no snapshot taken by {naming.iso_utc(taken_by)}: its oldest is "
        f"'{oldest['DBSnapshotIdentifier']}' of {naming.iso_utc(oldest['SnapshotCreateTime'])}. Fix: "
        "backfill a later logical date, or keep snapshots longer (a longer backup retention, or manual "
        "snapshots)."
    )


def restore_instance(
    rds: Any,
    source: str,
    logical_date: dt.date,
    run_id: str,
    *,
    instance_class: str | None = None,
    taken_by: dt.datetime | None = None,
    security_group_ids: Sequence[str] | None = None,
    timeout_seconds: float = TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    database: str | None = None,
) -> CloneResult:
    """Restore instance `source`'s snapshot (see pick_snapshot) into a new instance for the run and wait
    for it. `instance_class` None: the source's; `security_group_ids` None: the source's (see
    aurora.clone_cluster). A retried task finds the instance its first try made and
    only waits for it. `database`: as in aurora.clone_cluster."""
    seconds: dict[str, float] = {}
    clone_id = naming.clone_identifier(source, logical_date, run_id, database=database)
    with timed(seconds, "describe_source"):
        instance = describe_instance(rds, source)
        existing = next((i for i in list_instances(rds) if i["DBInstanceIdentifier"] == clone_id), None)
    if existing is not None and not naming.same_run(existing, source, logical_date, run_id, database):
        raise CloudError(
            f"an instance named '{clone_id}' exists and is not the restore of this run. Fix: delete it, or "
            "run with another run id.",
            "DBInstanceAlreadyExists",
        )
    began = time.monotonic()
    snapshot_id, restore_time = None, None
    if existing is None:
        with timed(seconds, "pick_snapshot"):
            snapshot = pick_snapshot(rds, source, taken_by)
        snapshot_id, restore_time = snapshot["DBSnapshotIdentifier"], snapshot["SnapshotCreateTime"]
        with timed(seconds, "restore"), aws("restoring snapshot", f"'{snapshot_id}' into '{clone_id}'"):
            rds.restore_db_instance_from_db_snapshot(
                **_restore_arguments(instance, clone_id, snapshot_id, instance_class, security_group_ids),
                Tags=naming.clone_tags(source, logical_date, run_id, "snapshot", database),
            )
    with timed(seconds, "wait_instance"):
        wait_for(
            rds,
            "db_instance_available",
            what=f"RDS restore '{clone_id}' of '{source}'",
            timeout_seconds=timeout_seconds,
            poll_seconds=poll_seconds,
            fix=(
                f"run the task again (it waits for the same instance) or raise the timeout above "
                f"{timeout_seconds:g} s; if the restore is stuck, delete it"
            ),
            DBInstanceIdentifier=clone_id,
        )
    available = time.monotonic() - began
    with timed(seconds, "endpoint"):
        endpoint = instance_endpoint(rds, clone_id)
    return CloneResult(
        kind="rds_snapshot",
        clone_id=clone_id,
        instance_id=clone_id,
        source=source,
        logical_date=logical_date,
        run_id=run_id,
        restore_type="snapshot",
        restore_time=restore_time,
        snapshot_id=snapshot_id,
        endpoint=endpoint,
        seconds_to_available=round(available, 3),
        seconds=seconds,
        clone_count=len(restores_of(rds, source)),
        resumed=existing is not None,
    )


def instance_endpoint(rds: Any, instance_id: str) -> Endpoint:
    described = describe_instance(rds, instance_id)
    address = (described.get("Endpoint") or {}).get("Address")
    if not address:
        raise CloudError(f"instance '{instance_id}' has no endpoint yet. Fix: wait until it is available.")
    return Endpoint(host=address, port=int(described["Endpoint"]["Port"]))


def restores_of(rds: Any, source: str) -> list[dict]:
    """deid's restores of `source` (by tag), newest first."""
    return naming.newest_first(
        [i for i in list_instances(rds) if naming.is_deids(i, source)], "InstanceCreateTime"
    )


def restore_behind(rds: Any, host: str) -> str | None:
    """The instance whose endpoint is `host` (what a published name points at), if any."""
    wanted = host.rstrip(".").lower()
    for instance in list_instances(rds):
        if ((instance.get("Endpoint") or {}).get("Address") or "").lower() == wanted:
            return instance["DBInstanceIdentifier"]
    return None


def delete_restore(rds: Any, instance_id: str) -> None:
    """Delete deid's restore `instance_id` with no final snapshot and its automated backups. Refuses an
    instance that does not carry deid's tags. Does not wait: nothing else depends on it being gone."""
    if not naming.is_deids(describe_instance(rds, instance_id)):
        raise CloudError(
            f"instance '{instance_id}' does not carry deid's tags ({naming.TAG_MANAGED}), so deid will not "
            "delete it. Fix: delete it yourself if it is not needed."
        )
    with aws("deleting restore", f"'{instance_id}'"):
        rds.delete_db_instance(
            DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
        )


def delete_old_restores(rds: Any, source: str, keep: int, *, protect: Iterable[str] = ()) -> Deleted:
    """Keep deid's `keep` newest restores of `source` and those in `protect` (the published one); delete
    the others. Instances deid did not tag are never looked at."""
    if keep < 1:
        raise ValueError("retention keeps at least the newest restore")
    began = time.monotonic()
    guarded = set(protect)
    ours = [i["DBInstanceIdentifier"] for i in restores_of(rds, source)]
    kept, beyond = ours[:keep], ours[keep:]
    deleted = []
    for instance_id in beyond:
        if instance_id not in guarded:
            delete_restore(rds, instance_id)
            deleted.append(instance_id)
    return Deleted(
        source=source,
        deleted=tuple(deleted),
        kept=tuple(kept),
        protected=tuple(i for i in beyond if i in guarded),
        seconds=round(time.monotonic() - began, 3),
    )


def _restore_arguments(
    instance: Mapping,
    clone_id: str,
    snapshot_id: str,
    instance_class: str | None,
    security_group_ids: Sequence[str] | None,
) -> dict[str, Any]:
    """restore_db_instance_from_db_snapshot's arguments: the source's class, network and parameters,
    which the API would otherwise replace by defaults (the default security group above all)."""
    arguments: dict[str, Any] = {
        "DBInstanceIdentifier": clone_id,
        "DBSnapshotIdentifier": snapshot_id,
        "DBInstanceClass": instance_class or instance["DBInstanceClass"],
        "DeletionProtection": False,  # retention deletes it
        "MultiAZ": False,  # a working copy needs no standby
    }
    subnet_group = (instance.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    if subnet_group:
        arguments["DBSubnetGroupName"] = subnet_group
    groups = list(
        security_group_ids or [g["VpcSecurityGroupId"] for g in instance.get("VpcSecurityGroups") or ()]
    )
    if groups:
        arguments["VpcSecurityGroupIds"] = groups
    parameters = [g["DBParameterGroupName"] for g in instance.get("DBParameterGroups") or ()]
    if parameters:
        arguments["DBParameterGroupName"] = parameters[0]
    if "PubliclyAccessible" in instance:
        arguments["PubliclyAccessible"] = bool(instance["PubliclyAccessible"])
    if (instance.get("Endpoint") or {}).get("Port"):
        arguments["Port"] = int(instance["Endpoint"]["Port"])
    return arguments
