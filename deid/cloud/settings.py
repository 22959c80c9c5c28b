"""deid.yaml's settings of a copy that is a server of its own: `clone: aurora` or `clone: rds_snapshot`,
each with a section of the same name.

    clone: aurora
    aurora:
      cluster: prod-learners                      # the source (AWS clones it; deid never connects to it)
      region: eu-west-1                           # default: boto3's own (AWS_REGION, the profile)
      hosted_zone_id: Z0123456789ABCDEFGHIJ       # the Route 53 zone of the staging name
      record_name: learners-staging.db.example.internal   # the CNAME staging users connect to
      ttl: 60                                     # of that CNAME, in seconds
      instance_class: db.r6g.large                # default: the source writer's
      security_group_ids: [sg-0123456789abcdef0]  # default: the source's
      timeout_seconds: 3600                       # bound on each wait for AWS
      poll_seconds: 30
      clone_limit: 15                             # copy-on-write clones per source (Aurora's limit)
      warn_at: 13                                 # the run record warns from this many
      backfill_after_hours: 24                    # a past date restores its day's end (deid.cloud.points)

`rds_snapshot:` takes the same keys, `instance:` instead of `cluster:`, and no clone_limit or warn_at (a
restore from a snapshot counts against no clone limit). The staging connection's user, password and options
are dialled at each clone's endpoint (a clone keeps its source's users); `retention` counts kept clones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator

from deid.cloud import aurora, dns, naming, points
from deid.errors import ConfigError
from deid.yamlmodel import STRICT, problem

METHODS = {"aurora": "cluster", "rds_snapshot": "instance"}  # clone method -> the key naming its source
COMMON_KEYS = (
    "region",
    "hosted_zone_id",
    "record_name",
    "ttl",
    "instance_class",
    "security_group_ids",
    "timeout_seconds",
    "poll_seconds",
    "backfill_after_hours",
)
AURORA_KEYS = ("clone_limit", "warn_at")


@dataclass(frozen=True)
class ServerCopies:
    """Where the copies of one database live when each is a server of its own, and how it is published."""

    method: str  # "aurora" | "rds_snapshot"
    source: str  # the cluster (aurora) or instance (rds_snapshot) identifier
    hosted_zone_id: str
    record_name: str
    region: str | None = None
    ttl: int = dns.TTL_SECONDS
    instance_class: str | None = None
    security_group_ids: tuple[str, ...] = ()
    timeout_seconds: float = aurora.TIMEOUT_SECONDS
    poll_seconds: float = aurora.POLL_SECONDS
    clone_limit: int = aurora.CLONE_LIMIT
    warn_at: int = aurora.WARN_AT
    backfill_after_hours: float = points.BACKFILL_AFTER_HOURS

    def keys(self) -> tuple[str, ...]:
        return (METHODS[self.method], *COMMON_KEYS, *(AURORA_KEYS if self.method == "aurora" else ()))


Text = Annotated[str, Field(min_length=1)]
Seconds = Annotated[float, Field(gt=0)]


def _identifier(value: str, what: str) -> str:
    try:
        return naming.check_identifier(value, what)
    except ConfigError as error:
        raise problem(str(error), "use the identifier AWS shows") from None


class _Section(BaseModel):
    """What `aurora:` and `rds_snapshot:` share."""

    model_config = STRICT

    region: Text | None = Field(
        None, description="The AWS region (default: boto3's own: AWS_REGION, the profile)"
    )
    hosted_zone_id: Text = Field(
        description="The Route 53 zone of the staging name, e.g. Z0123456789ABCDEFGHIJ"
    )
    record_name: Text = Field(
        description="The CNAME staging users connect to, e.g. learners-staging.db.example.internal"
    )
    ttl: Annotated[int, Field(ge=1, le=86400)] = Field(
        dns.TTL_SECONDS, description=f"Of that CNAME, in seconds, e.g. ttl: {dns.TTL_SECONDS}"
    )
    instance_class: Text | None = Field(None, description="Default: the source writer's, e.g. db.r6g.large")
    security_group_ids: Annotated[tuple[Text, ...], Field(strict=False)] = Field(
        (), description="Default: the source's, e.g. [sg-0123456789abcdef0]"
    )
    timeout_seconds: Seconds = Field(
        aurora.TIMEOUT_SECONDS, description=f"Bound on each wait for AWS, e.g. {aurora.TIMEOUT_SECONDS:g}"
    )
    poll_seconds: Seconds = Field(
        aurora.POLL_SECONDS, description=f"Seconds between two looks at AWS, e.g. {aurora.POLL_SECONDS:g}"
    )
    backfill_after_hours: Annotated[float, Field(ge=0)] = Field(
        points.BACKFILL_AFTER_HOURS,
        description="A past date restores its day's end once it ended this many hours before the latest "
        f"restorable time (deid.cloud.points), e.g. {points.BACKFILL_AFTER_HOURS:g}",
    )

    def copies(self, method: str, source: str) -> ServerCopies:
        given: dict[str, Any] = self.model_dump(exclude={"cluster", "instance"})
        return ServerCopies(method=method, source=source, **given)


class AuroraSection(_Section):
    """clone: aurora: each copy is a copy-on-write clone of an Aurora cluster, a server of its own."""

    cluster: Text = Field(description="The source cluster's identifier (AWS clones it; deid never connects)")
    clone_limit: Annotated[int, Field(ge=1)] = Field(
        aurora.CLONE_LIMIT,
        description=f"Copy-on-write clones per source (Aurora's limit: {aurora.CLONE_LIMIT})",
    )
    warn_at: Annotated[int, Field(ge=1)] = Field(
        aurora.WARN_AT, description=f"The run record warns from this many clones, e.g. {aurora.WARN_AT}"
    )

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str) -> str:
        return _identifier(value, "aurora.cluster")

    @model_validator(mode="after")
    def _warns(self) -> AuroraSection:
        if self.warn_at > self.clone_limit:
            raise problem(
                f"warn_at ({self.warn_at}) is above clone_limit ({self.clone_limit}): it never warns",
                "set warn_at to at most clone_limit, e.g. two below it",
                at="warn_at",
            )
        return self

    def server_copies(self) -> ServerCopies:
        return self.copies("aurora", self.cluster)


class RdsSnapshotSection(_Section):
    """clone: rds_snapshot: each copy is an RDS instance restored from the source's newest snapshot (no
    clone limit applies)."""

    instance: Text = Field(description="The source instance's identifier")

    @field_validator("instance")
    @classmethod
    def _instance(cls, value: str) -> str:
        return _identifier(value, "rds_snapshot.instance")

    def server_copies(self) -> ServerCopies:
        return self.copies("rds_snapshot", self.instance)
