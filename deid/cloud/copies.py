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


class _AwsSource:
    """Copies of `settings.source` that AWS makes as servers, found by deid's tags. The two kinds differ in
    which call makes one (`_restore`), how it is described (`_described`, the keys below) and how it goes."""

    method: str
    restores_a_time = True
    _status_key: str
    _created_key: str

    def __init__(self, rds: Any, settings: ServerCopies):
        self.rds, self.settings = rds, settings

    def make(
        self, logical_date: dt.date, run_id: str, database: str, *, backfill_run: bool = False
    ) -> CloneResult:
        s = self.settings
        point = _point(s, logical_date, self._latest_restorable(), backfill_run)
        result = self._restore(
            logical_date,
            run_id,
            point.time,
            instance_class=s.instance_class,
            security_group_ids=list(s.security_group_ids) or None,
            timeout_seconds=s.timeout_seconds,
            poll_seconds=s.poll_seconds,
            database=database,
        )
        return _with_point(result, point)

    def listed(self, database: str) -> list[ServerCopy]:
        found = []
        for described in self._described():
            status = str(described.get(self._status_key, ""))
            if not _for(described, database) or status in _GONE:
                continue
            found.append(_copy(described, self._created_key, self._endpoint(described), status))
        return found

    def _latest_restorable(self) -> dt.datetime | None:
        raise NotImplementedError

    def _restore(self, logical_date: dt.date, run_id: str, when: dt.datetime | None, **options: Any):
        raise NotImplementedError

    def _described(self) -> list[dict]:
        raise NotImplementedError

    def _endpoint(self, described: Mapping) -> Endpoint | None:
        raise NotImplementedError


class AuroraSource(_AwsSource):
    """Aurora cluster clones of `settings.source` (deid.cloud.aurora)."""

    method = "aurora"
    _status_key, _created_key = "Status", "ClusterCreateTime"

    def _latest_restorable(self) -> dt.datetime | None:
        return aurora.describe_cluster(self.rds, self.settings.source).get("LatestRestorableTime")

    def _restore(self, logical_date: dt.date, run_id: str, when: dt.datetime | None, **options: Any):
        s = self.settings
        return aurora.clone_cluster(
            self.rds,
            s.source,
            logical_date,
            run_id,
            restore_to=when,
            clone_limit=s.clone_limit,
            warn_at=s.warn_at,
            **options,
        )

    def _described(self) -> list[dict]:
        return aurora.clones_of(self.rds, self.settings.source)

    def _endpoint(self, described: Mapping) -> Endpoint | None:
        if described.get("Endpoint") and described.get("Port"):
            return Endpoint(host=described["Endpoint"], port=int(described["Port"]))
        return None

    def delete(self, copy_id: str) -> None:
        s = self.settings
        aurora.delete_clone(self.rds, copy_id, timeout_seconds=s.timeout_seconds, poll_seconds=s.poll_seconds)


class RdsSnapshotSource(_AwsSource):
    """RDS instances restored from snapshots of `settings.source` (deid.cloud.rds)."""

    method = "rds_snapshot"
    _status_key, _created_key = "DBInstanceStatus", "InstanceCreateTime"

    def _latest_restorable(self) -> dt.datetime | None:
        return restores.describe_instance(self.rds, self.settings.source).get("LatestRestorableTime")

    def _restore(self, logical_date: dt.date, run_id: str, when: dt.datetime | None, **options: Any):
        return restores.restore_instance(
            self.rds, self.settings.source, logical_date, run_id, taken_by=when, **options
        )

    def _described(self) -> list[dict]:
        return restores.restores_of(self.rds, self.settings.source)

    def _endpoint(self, described: Mapping) -> Endpoint | None:
        address = described.get("Endpoint") or {}
        if address.get("Address") and address.get("Port"):
            return Endpoint(host=address["Address"], port=int(address["Port"]))
        return None

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
