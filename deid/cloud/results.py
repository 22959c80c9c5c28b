"""What a clone, a deletion or a DNS change did and took, as typed records the run record can take
(`model_dump(mode="json")`). They hold identifiers, times and counts only: never a URL or a credential."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Endpoint(BaseModel):
    """Where a clone answers: the host and port its SQL steps connect to."""

    model_config = ConfigDict(frozen=True)
    host: str
    port: int
    # set by a resolver only (endpoints.clone_url): the name the source's database has where this endpoint
    # is dialled, when it is not the source's own (the tests' stand-in keeps every clone on one server)
    database: str | None = None


class CloneCount(BaseModel):
    """The copy-on-write clones of one source, against the limit AWS sets on them."""

    model_config = ConfigDict(frozen=True)
    source: str
    limit: int
    deids: tuple[str, ...] = ()  # deid's clones (by tag), oldest first: the ones deid may delete
    others: tuple[str, ...] = ()  # other clusters of the source's clone group, not deid's

    @property
    def count(self) -> int:
        return len(self.deids) + len(self.others)


class CloneResult(BaseModel):
    """One clone made for a run (an Aurora cluster clone or an RDS instance restored from a snapshot)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["aurora_clone", "rds_snapshot"]
    clone_id: str  # the cluster (Aurora) or instance (RDS) deid made
    instance_id: str  # the instance the steps connect to (for RDS, the clone itself)
    source: str
    logical_date: dt.date
    run_id: str
    restore_type: Literal["copy-on-write", "full-copy", "snapshot"]
    # the time the clone holds the data of: the one asked for (a backfill), else the source's latest
    # restorable time when the clone was asked for, or the snapshot's creation time
    restore_time: dt.datetime | None
    snapshot_id: str | None = None
    endpoint: Endpoint
    seconds_to_available: float  # from the first call until the instance was available
    seconds: dict[str, float] = Field(default_factory=dict)  # each call or wait, by name
    clone_count: int | None = None  # copy-on-write clones of the source, this one included
    clone_limit: int | None = None
    warning: str | None = None  # set when the count is near the limit
    resumed: bool = False  # a retried task found its clone already made and only waited for it
    # set by the job (deid.cloud.copies): whether the run restored the end of its logical date (a backfill)
    # rather than the latest state, and why (deid.cloud.points)
    backfill: bool = False
    point_reason: str | None = None


class Deleted(BaseModel):
    """What retention deleted, and what it kept and why."""

    model_config = ConfigDict(frozen=True)
    source: str
    deleted: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()  # beyond the newest N, but published (or otherwise asked to be kept)
    seconds: float = 0.0


class Pointing(BaseModel):
    """A DNS name pointed at a clone: what it points at now and pointed at before (for rollback)."""

    model_config = ConfigDict(frozen=True)
    zone_id: str
    name: str
    target: str
    previous: str | None
    ttl: int
    change_id: str | None = None  # None: it already pointed there, nothing was changed
    seconds: float = 0.0


@contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Adds the seconds the block took to seconds[name]."""
    began = time.monotonic()
    try:
        yield
    finally:
        seconds[name] = round(seconds.get(name, 0.0) + time.monotonic() - began, 3)
