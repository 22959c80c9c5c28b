"""The AWS side of copies that are servers of their own: where they come from (an Aurora clone, an RDS
restore), which exist for a database, how one is deleted, and the DNS name that publishes one.

Two small protocols keep deid.steps.servers free of AWS: a `ServerSource` makes, lists and deletes the
servers (another source, such as a server started on a reflinked data directory, fits the same three
calls), and a `Pointer` says which server the staging name leads to and moves it. Nothing here speaks SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from deid.cloud import aurora, dns, naming, points
from deid.cloud import rds as restores
from deid.cloud.awserrors import aws
from deid.cloud.results import CloneResult, Endpoint, Pointing
from deid.cloud.settings import ServerCopies


@dataclass(frozen=True)
class ServerCopy:
    """One server deid made for a database, as its source describes it (its tags, its endpoint)."""

    id: str
    logical_date: dt.date | None
    created: dt.datetime | None
    endpoint: Endpoint | None  # None while it has none (being created or deleted)
    status: str
    run_id: str = ""


class ServerSource(Protocol):
    """Where the servers come from."""

    method: str

    def make(self, logical_date: dt.date, run_id: str, database: str) -> CloneResult:
        """A new server holding the source's data (or the one this run made already: a retried task).

        A source that can restore a past moment (`restores_a_time = True`: AWS's) also takes
        `backfill_run=`, the run's own word that it is a backfill (deid.cloud.points decides the moment)."""

    def listed(self, database: str) -> list[ServerCopy]:
        """deid's servers for `database` (found by tag, never by name), newest first."""

    def delete(self, copy_id: str) -> None: ...


class Pointer(Protocol):
    """The name staging users connect to, and the server it leads to."""

    name: str

    def current(self) -> str | None:
        """The endpoint host the name leads to now; None when it leads nowhere yet."""

    def point(self, host: str) -> Pointing: ...


def _copy(described: Mapping, created_key: str, endpoint: Endpoint | None, status: str) -> ServerCopy:
    tags = naming.tags_of(described)
    try:
        day = dt.date.fromisoformat(tags.get(naming.TAG_LOGICAL_DATE, ""))
    except ValueError:
        day = None
    identifier = described.get("DBClusterIdentifier") or described["DBInstanceIdentifier"]
    return ServerCopy(
        id=identifier,
        logical_date=day,
        created=described.get(created_key),
        endpoint=endpoint,
        status=status,
        run_id=tags.get(naming.TAG_RUN_ID, ""),
    )


def _for(described: Mapping, database: str) -> bool:
    return naming.tags_of(described).get(naming.TAG_DATABASE) == naming.tag_value(database)


_GONE = ("deleting", "deleted")


class AuroraSource:
    """Aurora cluster clones of `settings.source` (deid.cloud.aurora)."""

    method = "aurora"
    restores_a_time = True

    def __init__(self, rds: Any, settings: ServerCopies):
        self.rds, self.settings = rds, settings

    def make(
        self, logical_date: dt.date, run_id: str, database: str, *, backfill_run: bool = False
    ) -> CloneResult:
        s = self.settings
        latest = aurora.describe_cluster(self.rds, s.source).get("LatestRestorableTime")
        point = _point(s, logical_date, latest, backfill_run)
        result = aurora.clone_cluster(
            self.rds,
            s.source,
            logical_date,
            run_id,
            restore_to=point.time,
            instance_class=s.instance_class,
            security_group_ids=list(s.security_group_ids) or None,
            timeout_seconds=s.timeout_seconds,
            poll_seconds=s.poll_seconds,
            clone_limit=s.clone_limit,
            warn_at=s.warn_at,
            database=database,
        )
        return _with_point(result, point)

    def listed(self, database: str) -> list[ServerCopy]:
        found = []
        for cluster in aurora.clones_of(self.rds, self.settings.source):
            status = str(cluster.get("Status", ""))
            if not _for(cluster, database) or status in _GONE:
                continue
            endpoint = None
            if cluster.get("Endpoint") and cluster.get("Port"):
                endpoint = Endpoint(host=cluster["Endpoint"], port=int(cluster["Port"]))
            found.append(_copy(cluster, "ClusterCreateTime", endpoint, status))
        return found

    def delete(self, copy_id: str) -> None:
        s = self.settings
        aurora.delete_clone(self.rds, copy_id, timeout_seconds=s.timeout_seconds, poll_seconds=s.poll_seconds)


class RdsSnapshotSource:
    """RDS instances restored from snapshots of `settings.source` (deid.cloud.rds)."""

    method = "rds_snapshot"
    restores_a_time = True

    def __init__(self, rds: Any, settings: ServerCopies):
        self.rds, self.settings = rds, settings

    def make(
        self, logical_date: dt.date, run_id: str, database: str, *, backfill_run: bool = False
    ) -> CloneResult:
        s = self.settings
        latest = restores.describe_instance(self.rds, s.source).get("LatestRestorableTime")
        point = _point(s, logical_date, latest, backfill_run)
        result = restores.restore_instance(
            self.rds,
            s.source,
            logical_date,
            run_id,
            taken_by=point.time,
            instance_class=s.instance_class,
            security_group_ids=list(s.security_group_ids) or None,
            timeout_seconds=s.timeout_seconds,
            poll_seconds=s.poll_seconds,
            database=database,
        )
        return _with_point(result, point)

    def listed(self, database: str) -> list[ServerCopy]:
        found = []
        for instance in restores.restores_of(self.rds, self.settings.source):
            status = str(instance.get("DBInstanceStatus", ""))
            if not _for(instance, database) or status in _GONE:
                continue
            address = instance.get("Endpoint") or {}
            endpoint = None
            if address.get("Address") and address.get("Port"):
                endpoint = Endpoint(host=address["Address"], port=int(address["Port"]))
            found.append(_copy(instance, "InstanceCreateTime", endpoint, status))
        return found

    def delete(self, copy_id: str) -> None:
        restores.delete_restore(self.rds, copy_id)


def _point(
    settings: ServerCopies, logical_date: dt.date, latest: dt.datetime | None, backfill_run: bool
) -> points.RestorePoint:
    return points.restore_point(
        logical_date, latest, after_hours=settings.backfill_after_hours, backfill_run=backfill_run
    )


def _with_point(result: CloneResult, point: points.RestorePoint) -> CloneResult:
    """`result` saying whether its run restored the end of its date, and why. A retried task's clone was
    made by its first try, whose choice its restore type and time keep (deid:restore-type)."""
    if result.resumed and result.kind == "aurora_clone":
        made = result.restore_type == "full-copy"
        reason = f"the clone the task's first try made ({result.restore_type})"
        return result.model_copy(update={"backfill": made, "point_reason": reason})
    return result.model_copy(update={"backfill": point.backfill, "point_reason": point.reason})


class DnsName:
    """The staging name as a Route 53 CNAME (deid.cloud.dns)."""

    def __init__(self, route53: Any, settings: ServerCopies):
        self.route53, self.settings = route53, settings
        self.name = settings.record_name

    def current(self) -> str | None:
        return dns.current_target(self.route53, self.settings.hosted_zone_id, self.name)

    def point(self, host: str) -> Pointing:
        s = self.settings
        return dns.point_name(
            self.route53,
            s.hosted_zone_id,
            self.name,
            host,
            ttl=s.ttl,
            poll_seconds=min(s.poll_seconds, dns.POLL_SECONDS),
        )


SOURCES = {"aurora": AuroraSource, "rds_snapshot": RdsSnapshotSource}


def connect(settings: ServerCopies) -> tuple[ServerSource, Pointer]:
    """The source and pointer of `settings`, on boto3 clients of its region (credentials and the endpoint
    URL as boto3 finds them: the worker's role, AWS_ENDPOINT_URL). Settings of copies that are not AWS's (a
    data directory copied on this host: `clone: reflink`) make their own source and pointer."""
    own = getattr(settings, "connect", None)
    if own is not None:
        return own()
    import boto3

    with aws("connecting to", f"AWS in region {settings.region or '(boto3 default)'}"):
        rds = boto3.client("rds", region_name=settings.region)
        route53 = boto3.client("route53", region_name=settings.region)
    return SOURCES[settings.method](rds, settings), DnsName(route53, settings)


def same_host(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.rstrip(".").lower() == b.rstrip(".").lower()
