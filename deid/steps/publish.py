"""Publish and rollback: swap a copy in under the staging name, atomically, keeping the previous one.

Both are the same dance. Connections to the two databases involved are blocked and their sessions ended
(a database with sessions cannot be renamed); then ONE transaction renames the published copy to
<staging>__<its logical date> and the incoming copy to <staging>, grants CONNECT and updates the metadata.
Where the engine renames databases inside a transaction (Capabilities.database_rename), staging users
see either the old copy or the new one, never a missing or half-renamed one; and if anything fails before
COMMIT, connections are re-allowed on the untouched published copy. If deid is killed (or loses its
connection) in between, a `reopen` note left on each closed copy lets the next deid command for the
database open it again (`repair`), so staging users are never shut out of their copy for longer than that.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from deid.backends import backend_for
from deid.errors import TerminalError
from deid.steps.context import RunContext, kept_name
from deid.steps.copies import (
    Copy,
    admin,
    check_owned,
    check_staging_name,
    copies_on,
    drop_database,
    exists,
    new_metadata,
    set_allow_connections,
    set_metadata,
    status,
    store,
    terminate_sessions,
    transaction,
)
from deid.steps.snapshot import cleanup
from deid.steps.state import RUN_ONLY

__all__ = ["cleanup", "publish", "rollback", "status"]  # status and cleanup: where the CLI and run look

SWAP_MARK = "__swap"  # transient name inside the swap transaction, when a copy takes the place of another


def publish(ctx: RunContext) -> str:
    """Swap tonight's working copy in under the staging name; keep the previous copy; apply retention.

    Only a copy that every step finished on, for the plan its scrub applied, whose schema is still the one
    validation saw, and whose every column a rule accounts for, is published (steps/gate.py). A copy built
    for a logical date older than the published copy's is kept for rollback instead, unless
    ctx.publish_older. Returns "published" or "kept".
    """
    from deid.steps.gate import check_publishable
    from deid.steps.ledger import begin
    from deid.steps.places import place_of

    place = place_of(ctx)  # databases on the staging server, or servers of their own (steps/places.py)
    place.check_names()
    state = check_publishable(ctx, begin(ctx, "publish"))
    return place.publish(ctx, state)


def publish_databases(ctx: RunContext, state) -> str:
    """publish, where every copy is a database on the staging server: the swap (see the module docstring)."""
    staging = ctx.staging_name
    roles = tuple(getattr(ctx.database, "staging_roles", ()) or ())
    with admin(ctx.staging_server_url) as c:
        copies = copies_on(c, staging)
        check_owned(copies, ctx.database.name, staging)
        work = next((x for x in copies if x.name == ctx.work_name), None)
        if work is None:
            raise TerminalError(
                f"there is no working copy {ctx.work_name} to publish: run snapshot and the steps after it "
                f"for {ctx.logical_date} first"
            )
        published = _published(copies)
        newer = published is not None and published.logical_date is not None
        if newer and published.logical_date > ctx.logical_date and not ctx.publish_older:
            return _keep_older(ctx, c, work, published, state)
        metadata = {
            **_published_state(work.metadata),
            **new_metadata(ctx.database.name, ctx.logical_date, "published"),
            **_facts(ctx.record, state),
            "published_at": _now(),
        }
        _, dropped = swap(c, staging, work, published, metadata, roles)
        dropped += _retain(c, staging, ctx.database.retention)
        kept = [x.name for x in copies_on(c, staging) if x.role == "kept"]
    ctx.record["published"] = staging
    note_copies(ctx.record, kept, dropped)
    return "published"


def _keep_older(ctx: RunContext, c: sa.Connection, work: Copy, published: Copy, state) -> str:
    """Keep a copy older than the published one for rollback, under its date, instead of publishing it:
    unpausing a DAG or a backfill must not replace a newer staging copy with an older one."""
    kept = kept_name(ctx.staging_name, ctx.logical_date)
    dropped = [kept] if drop_database(c, kept) else []  # one kept copy per date: a rebuild replaces it
    set_allow_connections(c, work.name, False)
    terminate_sessions(c, work.name)
    with transaction(c):
        store(c).rename(c, [(work.name, kept)])
        facts = {**_published_state(work.metadata), **_facts(ctx.record, state), "state": "kept"}
        set_metadata(c, kept, facts)
    dropped += _retain(c, ctx.staging_name, ctx.database.retention)
    ctx.record["kept_instead_of_published"] = {
        "copy": kept,
        "published_date": str(published.logical_date),
        "reason": "the published copy is of a later logical date (publish it anyway with --publish-older)",
    }
    note_copies(ctx.record, [x.name for x in copies_on(c, ctx.staging_name) if x.role == "kept"], dropped)
    return "kept"


def note_copies(record: dict[str, Any], kept: list[str], dropped: list[str]) -> None:
    """The record's `kept` (the kept copies there now), `dropped` (copies gone) and `replaced` (an older
    build of a date, dropped to keep a newer build of that date under the same name): a replaced name is
    kept, so listing it as dropped too would say one copy is both."""
    record["kept"] = kept
    for key, names in (
        ("replaced", [d for d in dropped if d in kept]),
        ("dropped", [d for d in dropped if d not in kept]),
    ):
        if names:
            record[key] = names


def _published_state(metadata) -> dict[str, Any]:
    """A copy's state as it goes live: its stamps and counts stay with it (which rules and plan scrubbed
    it, which checks passed, for which run); the cloned schema, the holder and run-time marks do not."""
    return {k: v for k, v in metadata.items() if k not in (*RUN_ONLY, "holder", "reopen", "poisoned")}


def repair(c: sa.Connection, staging: str) -> list[str]:
    """Open again the copies an interrupted publish or rollback left closed to connections (killed, or its
    connection lost, between closing them and the swap's commit); returns their names.

    The swap notes `reopen` on each copy it closes, in a committed statement, before closing it; the swap
    itself removes the note. A note found here is one no swap finished: the caller holds the run lock, so no
    swap is under way."""
    repaired = []
    for copy in copies_on(c, staging):
        reopen = copy.metadata.get("reopen")
        if not isinstance(reopen, dict):
            continue
        set_allow_connections(c, copy.name, bool(reopen.get("allow_connections", True)))
        set_metadata(c, copy.name, {k: v for k, v in copy.metadata.items() if k != "reopen"})
        repaired.append(copy.name)
    return repaired


def rollback(
    staging_server_url: str, staging_name: str, to: dt.date | None = None, database: str | None = None
) -> dt.date:
    """Swap a kept copy back in (default: the newest kept one); the published one is kept under its date.
    `database`: whose copies they must be (None: not checked).

    Returns the logical date of the copy now published. The caller holds the run lock (steps/guard.py).
    """
    check_staging_name(staging_name, staging_server_url)
    with admin(staging_server_url) as c:
        copies = copies_on(c, staging_name)
        if database is not None:
            check_owned(copies, database, staging_name)
        kept = [x for x in copies if x.role == "kept"]
        if not kept:
            raise TerminalError(f"{staging_name} has no kept copy to roll back to")
        target = kept[0] if to is None else next((x for x in kept if x.logical_date == to), None)
        if target is None:
            dates = ", ".join(str(x.logical_date) for x in kept)
            raise TerminalError(f"{staging_name} has no kept copy of {to}; kept copies: {dates}")
        metadata = {
            **_published_state(target.metadata),
            "logical_date": target.logical_date.isoformat(),
            "state": "published",
            "published_at": _now(),
        }
        # No GRANT: a kept copy keeps the grants it had when it was published.
        swap(c, staging_name, target, _published(copies), metadata, grant_to=None)
    return target.logical_date


def swap(
    c: sa.Connection,
    staging: str,
    incoming: Copy,
    outgoing: Copy | None,
    metadata: dict[str, Any],
    grant_to: tuple[str, ...] | None,
) -> tuple[str | None, list[str]]:
    """Put `incoming` under the staging name and keep `outgoing` (the published copy, if any) under its
    date; `grant_to`: the roles that may connect to it (empty: every role; None: the grants it has). Returns
    the kept name and the copies dropped to make room (an older build of the same date)."""
    kept, dropped = None, []
    if outgoing is not None:
        if outgoing.logical_date is None:
            raise TerminalError(
                f"{staging} has no deid metadata, so deid does not know which date to keep it under; it may "
                f"not be deid's. Rename it by hand (to {staging}__YYYYMMDD, its date) or drop it"
            )
        kept = kept_name(staging, outgoing.logical_date)
        # One kept copy per date: a rerun of a date replaces the older build. Outside the transaction
        # because DROP DATABASE cannot run in one; the published copy is not touched by it.
        if kept != incoming.name and drop_database(c, kept):
            dropped.append(kept)
    involved = [x for x in (incoming, outgoing) if x is not None]
    for copy in involved:  # first the note that lets `repair` open it again, should this swap never finish
        set_metadata(c, copy.name, {**copy.metadata, "reopen": {"allow_connections": copy.allow_connections}})
    for copy in involved:
        set_allow_connections(c, copy.name, False)
    # Where DDL is not transactional (the rename commits by itself), the rename must be the one change that
    # switches: grants go first (they belong to the staging name, whatever it holds) and each copy's note is
    # written before it moves, as it must read after the move (the note travels with the copy).
    atomic = backend_for(c.dialect.name).capabilities.transactional_ddl
    try:
        for copy in involved:
            terminate_sessions(c, copy.name)
        if not atomic:
            if grant_to is not None:
                store(c).grant_connect(c, staging, grant_to)
            set_metadata(c, incoming.name, metadata)
            if outgoing is not None and kept is not None:
                set_metadata(c, outgoing.name, {**outgoing.metadata, "state": "kept"})
        with transaction(c):
            store(c).rename(c, _renames(staging, incoming.name, kept))
            if atomic:
                if grant_to is not None:
                    store(c).grant_connect(c, staging, grant_to)
                set_metadata(c, staging, metadata)
                if outgoing is not None and kept is not None:
                    set_metadata(c, kept, {**outgoing.metadata, "state": "kept"})
            set_allow_connections(c, staging, True)
            if outgoing is not None and kept is not None:
                set_allow_connections(c, kept, outgoing.allow_connections)
    except BaseException as error:
        if not atomic and not exists(c, incoming.name):
            # the rename took place (what failed came after it): the copies carry their new notes already
            error.add_note(f"{incoming.name} is published as {staging}; what failed came after the rename")
            raise
        # Rolled back: both databases still have their old names. Let staging users in again.
        for copy in involved:
            try:
                set_allow_connections(c, copy.name, copy.allow_connections)
                set_metadata(c, copy.name, copy.metadata)
            except Exception as failed:
                error.add_note(
                    f"could not re-allow connections to {copy.name} ({type(failed).__name__}); the next deid "
                    "command for this database does"
                )
        raise
    return kept, dropped


def _renames(staging: str, incoming: str, kept: str | None) -> list[tuple[str, str]]:
    if kept is None:
        return [(incoming, staging)]
    if kept == incoming:  # rolling back to the older build of the published copy's own date
        parked = staging + SWAP_MARK
        return [(incoming, parked), (staging, kept), (parked, staging)]
    return [(staging, kept), (incoming, staging)]


def _retain(c: sa.Connection, staging: str, retention: int) -> list[str]:
    """Drop kept copies beyond the newest `retention`, oldest first; returns their names."""
    kept = [x.name for x in copies_on(c, staging) if x.role == "kept"]  # newest first
    surplus = list(reversed(kept[retention:]))
    for name in surplus:
        drop_database(c, name)
    return surplus


def _facts(record: dict[str, Any], state) -> dict[str, Any]:
    """The facts that go into the copy's metadata as it goes live, besides what its steps noted on it (the
    stamps, the offsets): the run that made it (deid status finds its record by it) and its rules digest."""
    facts: dict[str, Any] = {"rules_digest": state.stamp("validate").rules}
    if record.get("run_id"):
        facts["run_id"] = str(record["run_id"])
    return facts


def _published(copies: list[Copy]) -> Copy | None:
    return next((x for x in copies if x.role == "published"), None)


def _now() -> str:
    # The only fact taken from the clock: when the copy went live, not what it contains.
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
