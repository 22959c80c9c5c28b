"""Copies that are servers of their own (`clone: aurora`, `clone: rds_snapshot`): the ServerPlace.

Each night's working copy is a server made by the source (deid.cloud.copies: an Aurora clone, an RDS
restore), tagged with the database and the logical date. Every step reaches it at its endpoint with the
staging connection's user and password (a clone keeps its source's users) and keeps the copy's state in the
copy itself: the note of the source's database inside it (CopyStore.write_note, as on a staging server). A
step in another process (an Airflow task) finds tonight's server by its tags, reads its note, and trusts no
step it did not see finish, exactly as with databases.

A server's role is read, not stored: *published* is the one the staging name (a Route 53 CNAME) leads to;
*kept* a server whose note says it was published or kept for rollback; *work* any other (no note at all: a
snapshot that never finished). A server whose note cannot be read is listed as *unknown* and never deleted
by a run.

Publish runs the same gate (steps/gate.py) on the server, writes its note as published, then points the name
at it: one Route 53 change. A run killed before that change leaves the name where it was; killed after the
note and before the change, the server is merely kept (validated, for rollback). The previous server stays
for sessions still open on it and for rollback; retention deletes kept servers beyond the newest N, never
the one the name leads to. Nothing here connects to production: AWS makes the clone from its storage.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from deid.cloud import naming
from deid.cloud.copies import Pointer, ServerCopy, ServerSource, connect, same_host
from deid.cloud.endpoints import Resolver, clone_url
from deid.cloud.results import CloneResult
from deid.errors import TerminalError, TransientError
from deid.lock import check_holder
from deid.steps.copies import admin, new_metadata, parse_metadata, set_metadata, store
from deid.steps.state import RUN_ONLY, CopyState, Holder, Refused, parse_state

if TYPE_CHECKING:
    from deid.config import DatabaseConfig
    from deid.steps.context import RunContext

ROLE_ORDER = {"work": 3, "published": 2, "kept": 1, "unknown": 0}  # same date: the newest build first


@dataclass(frozen=True)
class View:
    """A server copy with its note and the role read from it and from the staging name."""

    copy: ServerCopy
    role: str  # "published" | "kept" | "work" | "unknown"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> CopyState | None:
        return parse_state(self.metadata)

    def as_dict(self) -> dict[str, Any]:
        """As `deid status` shows a copy: the shape of steps/copies.Copy.as_dict, and the server's facts."""
        metadata = {k: v for k, v in self.metadata.items() if k not in RUN_ONLY}
        return {
            "name": self.copy.id,
            "logical_date": self.copy.logical_date.isoformat() if self.copy.logical_date else None,
            "allow_connections": True,
            "metadata": metadata,
            "status": self.copy.status,
            "endpoint": self.copy.endpoint.host if self.copy.endpoint else None,
            "readable": self.role != "unknown",
        }


class ServerPlace:
    def __init__(
        self,
        database: DatabaseConfig,
        staging_server_url: str,
        database_name: str,
        source: ServerSource,
        pointer: Pointer,
        resolver: Resolver | None = None,
    ):
        self.database, self.server, self.database_name = database, staging_server_url, database_name
        self.source, self.pointer, self.resolver = source, pointer, resolver
        self.work: ServerCopy | None = None  # tonight's, once made or found

    @classmethod
    def of(cls, ctx: RunContext) -> ServerPlace:
        return cls.build(ctx.database, ctx.staging_server_url, ctx.production_url, ctx.clone_resolver)

    @classmethod
    def build(
        cls, database: DatabaseConfig, server: str, production_url: str, resolver: Resolver | None
    ) -> ServerPlace:
        assert database.server_copies is not None
        source, pointer = connect(database.server_copies)
        # a clone holds the source's databases under their own names: the one deid copies is production's
        name = sa.make_url(production_url).database or ""
        return cls(database, server, name, source, pointer, resolver)

    # --- reaching a server ------------------------------------------------------------------------------

    def url(self, copy: ServerCopy) -> str:
        """The staging connection dialled at `copy`'s endpoint, on the source's database."""
        if copy.endpoint is None:
            raise TransientError(f"{copy.id} has no endpoint yet (status {copy.status}): retry later")
        url = clone_url(self.server, copy.endpoint, database=self.database_name, resolve=self.resolver)
        return url.render_as_string(hide_password=False)

    def note(self, copy: ServerCopy) -> dict[str, Any] | None:
        """deid's facts on `copy` ({} when it has none); None when it cannot be reached."""
        if copy.endpoint is None:
            return None
        url = self.url(copy)
        try:
            with admin(url) as c:
                return parse_metadata(store(c).read_note(c, sa.make_url(url).database or ""))
        except TransientError:
            return None

    def write_note(self, copy: ServerCopy, metadata: dict[str, Any]) -> None:
        url = self.url(copy)
        with admin(url) as c:
            set_metadata(c, sa.make_url(url).database or "", metadata)

    def views(self) -> list[View]:
        """Every server of the database, newest logical date first, with its note and role."""
        target = self.pointer.current()
        found = []
        for copy in self.source.listed(self.database.name):
            metadata = self.note(copy)
            if copy.endpoint is not None and same_host(copy.endpoint.host, target):
                role = "published"
            elif metadata is None:
                role = "unknown"
            elif metadata.get("state") in ("published", "kept"):
                role = "kept"
            else:
                role = "work"
            found.append(View(copy, role, metadata or {}))
        far = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(
            found,
            key=lambda v: (v.copy.logical_date or dt.date.min, ROLE_ORDER[v.role], v.copy.created or far),
            reverse=True,
        )

    # --- the Place protocol -------------------------------------------------------------------------------

    def check_names(self) -> None:
        """Server copies are named by AWS's rules (deid.cloud.naming), checked when the name is made."""

    def find_work(self, ctx: RunContext) -> ServerCopy | None:
        if self.work is None:
            tonight = [
                v for v in self.views() if v.role == "work" and v.copy.logical_date == ctx.logical_date
            ]
            self.work = tonight[0].copy if tonight else None
        return self.work

    def work_url(self, ctx: RunContext) -> str:
        copy = self.find_work(ctx)
        if copy is None:
            raise Refused(
                f"there is no working copy of {ctx.database.name} for {ctx.logical_date} (no server tagged "
                f"{naming.TAG_DATABASE}={ctx.database.name}, {naming.TAG_LOGICAL_DATE}={ctx.logical_date} "
                "that is not published or kept): run the job from its snapshot step"
            )
        return self.url(copy)

    def has_work(self, ctx: RunContext) -> bool:
        return self.find_work(ctx) is not None

    def read_state(self, ctx: RunContext) -> CopyState | None:
        copy = self.find_work(ctx)
        return parse_state(self.note(copy)) if copy is not None else None

    def write_state(self, ctx: RunContext, state: CopyState) -> None:
        copy = self.find_work(ctx)
        if copy is None:
            raise Refused(f"the working copy of {ctx.database.name} for {ctx.logical_date} is gone")
        self.write_note(copy, state.model_dump(by_alias=True, exclude_none=True))

    def clear_leftovers(self, ctx: RunContext) -> list[str]:
        """Delete the working servers killed runs left; a retried snapshot of this very run keeps its own
        (AWS makes it once; the clone call then only waits for it), unless steps after the snapshot already
        worked on it."""
        run_id = ctx.holder.run_id
        mine = naming.clone_identifier(
            self.database.server_copies.source,
            ctx.logical_date,
            run_id,
            room=len(naming.INSTANCE_SUFFIX) if self.source.method == "aurora" else 0,
            database=self.database.name,
        )
        leftovers = [v for v in self.views() if v.role == "work"]
        for view in leftovers:
            state = view.state
            check_holder(state.holder if state else None, ctx.holder, view.copy.id, dropping=True)
            if view.copy.id == mine and state is not None and set(state.done) - {"snapshot"}:
                raise TerminalError(
                    f"{view.copy.id}, made by this run ({run_id}), has been worked on already (steps "
                    f"{', '.join(state.done)}): a snapshot cannot start again on it. Start a new run (a new "
                    "run id), which makes a new clone; the next snapshot deletes this one"
                )
        deleted = []
        for view in leftovers:
            if view.copy.id != mine:
                self.source.delete(view.copy.id)
                deleted.append(view.copy.id)
        self.work = None
        return deleted

    def make(self, ctx: RunContext) -> CloneResult:
        """Tonight's server (the snapshot's cloner calls this): made, waited for, remembered. A source that
        can restore a past moment is told whether the run says it is a backfill (an Airflow backfill: the
        operators note the run type in the record); deid.cloud.points decides the moment."""
        day, run_id, name = ctx.logical_date, ctx.holder.run_id, ctx.database.name
        if getattr(self.source, "restores_a_time", False):
            backfill_run = ctx.record.get("run_type") == "backfill"
            result = self.source.make(day, run_id, name, backfill_run=backfill_run)
        else:
            result = self.source.make(day, run_id, name)
        self.work = ServerCopy(
            id=result.clone_id,
            logical_date=ctx.logical_date,
            created=None,
            endpoint=result.endpoint,
            status="available",
            run_id=ctx.holder.run_id,
        )
        return result

    def cleanup(self, ctx: RunContext) -> bool:
        copy = self.find_work(ctx)
        if copy is None or same_host(copy.endpoint.host if copy.endpoint else None, self.pointer.current()):
            return False
        state = parse_state(self.note(copy))
        check_holder(state.holder if state else None, ctx.holder, copy.id)
        self.source.delete(copy.id)
        self.work = None
        return True

    def publish(self, ctx: RunContext, state: CopyState) -> str:
        from deid.steps.publish import _facts, _now, _published_state

        views = self.views()
        work = next((v for v in views if self.work is not None and v.copy.id == self.work.id), None)
        if work is None or work.role != "work":
            raise TerminalError(
                f"there is no working copy of {ctx.database.name} for {ctx.logical_date} to publish: run "
                "snapshot and the steps after it first"
            )
        published = next((v for v in views if v.role == "published"), None)
        older = published is not None and published.copy.logical_date is not None
        if older and published.copy.logical_date > ctx.logical_date and not ctx.publish_older:
            facts = {**_published_state(work.metadata), **_facts(ctx.record, state), "state": "kept"}
            self.write_note(work.copy, facts)
            ctx.record["kept_instead_of_published"] = {
                "copy": work.copy.id,
                "published_date": str(published.copy.logical_date),
                "reason": "the published copy is of a later logical date (publish it anyway with "
                "--publish-older)",
            }
            self._retain(ctx)
            return "kept"
        metadata = {
            **_published_state(work.metadata),
            **new_metadata(ctx.database.name, ctx.logical_date, "published"),
            **_facts(ctx.record, state),
            "published_at": _now(),
        }
        # the note first: killed before the name moves, this server is kept (validated), never half published
        self.write_note(work.copy, metadata)
        assert work.copy.endpoint is not None  # its note was just read through it
        pointing = self.pointer.point(work.copy.endpoint.host)
        ctx.record["published"] = self.pointer.name
        ctx.record["published_clone"] = work.copy.id
        ctx.record["dns_change"] = {"previous": pointing.previous, "seconds": pointing.seconds}
        if published is not None:
            self._mark_kept(published, ctx.record)
        self._retain(ctx)
        return "published"

    def _mark_kept(self, view: View, record: dict[str, Any]) -> None:
        """The server the name left: noted as kept (its role follows from the name already: a failure here
        changes nothing that matters, and is a warning in the record)."""
        try:
            self.write_note(view.copy, {**view.metadata, "state": "kept"})
        except Exception as error:
            record["publish_warning"] = (
                f"{view.copy.id} is no longer published; its note could not say 'kept' "
                f"({type(error).__name__})"
            )

    def _retain(self, ctx: RunContext) -> None:
        began = time.monotonic()
        views = self.views()
        kept = [v for v in views if v.role == "kept"]  # newest first; never the published one
        surplus = list(reversed(kept[ctx.database.retention :]))
        for view in surplus:
            self.source.delete(view.copy.id)
        ctx.record["kept"] = [v.copy.id for v in kept[: ctx.database.retention]]
        if surplus:
            ctx.record["dropped"] = [v.copy.id for v in surplus]
        ctx.record["retention_seconds"] = round(time.monotonic() - began, 3)

    def rollback(self, to: dt.date | None) -> dt.date:
        from deid.steps.publish import _now, _published_state

        views = self.views()
        kept = [v for v in views if v.role == "kept" and v.copy.logical_date is not None]
        if not kept:
            raise TerminalError(f"{self.pointer.name} has no kept copy to roll back to")
        target = kept[0] if to is None else next((v for v in kept if v.copy.logical_date == to), None)
        if target is None:
            dates = ", ".join(str(v.copy.logical_date) for v in kept)
            raise TerminalError(f"{self.pointer.name} has no kept copy of {to}; kept copies: {dates}")
        metadata = {
            **_published_state(target.metadata),
            "logical_date": target.copy.logical_date.isoformat(),
            "state": "published",
            "published_at": _now(),
        }
        self.write_note(target.copy, metadata)
        assert target.copy.endpoint is not None
        self.pointer.point(target.copy.endpoint.host)
        published = next((v for v in views if v.role == "published"), None)
        if published is not None:
            self._mark_kept(published, {})
        return target.copy.logical_date

    def status(self) -> dict[str, Any]:
        views = self.views()
        published = next((v for v in views if v.role == "published"), None)
        return {
            "staging_name": self.pointer.name,
            "published": published.as_dict() if published else None,
            "kept": [v.as_dict() for v in views if v.role == "kept"],
            "work": [v.as_dict() for v in views if v.role == "work"],
            "unknown": [v.as_dict() for v in views if v.role == "unknown"],
        }

    def drop_work(self, mine: Holder, force: bool) -> list[str]:
        dropped = []
        for view in self.views():
            if view.role == "work" or (force and view.role == "unknown"):
                state = view.state
                if not force:
                    check_holder(state.holder if state else None, mine, view.copy.id)
                self.source.delete(view.copy.id)
                dropped.append(view.copy.id)
        return dropped


def record_clone(record: dict[str, Any], result: CloneResult) -> None:
    """What the run record keeps of a clone: identifiers, how it was made, what it took, the count."""
    record["clone_method_detail"] = {
        "copy-on-write": "Aurora copy-on-write clone",
        "full-copy": "Aurora full-copy restore (a backfill's point in time)",
        "snapshot": f"RDS restore of snapshot {result.snapshot_id}",
    }[result.restore_type]
    record["clone_id"] = result.clone_id
    record["clone_restore_type"] = result.restore_type
    if result.restore_time is not None:
        record["clone_restore_time"] = naming.iso_utc(result.restore_time)
    record["clone_available_seconds"] = result.seconds_to_available
    record["clone_aws_seconds"] = dict(result.seconds)
    record["clone_resumed"] = result.resumed
    if result.clone_count is not None:
        record["clone_count"] = result.clone_count
    if result.clone_limit is not None:
        record["clone_limit"] = result.clone_limit
    if result.warning:
        record["clone_warning"] = result.warning
    record["clone_backfill"] = result.backfill
    if result.point_reason:
        record["clone_point_reason"] = result.point_reason
