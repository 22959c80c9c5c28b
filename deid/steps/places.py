"""Where the copies of one staging name live: the seam between the steps and the place they work in.

- `DatabasePlace`: every copy is a database on the staging server (S, S__YYYYMMDD, S__work_YYYYMMDD);
  publish renames databases. The steps' behaviour there is the one of steps/copies.py and publish.py.
- `ServerPlace` (steps/servers.py): every copy is a server of its own (an Aurora clone, an RDS restore; a
  server started on a copied data directory fits the same seam through deid.cloud.copies.ServerSource);
  publish points the staging name at one.

Both keep a copy's state in the copy's own note (CopyStore.read_note/write_note): a database's on the
staging server, or the note of the source's database inside the server copy. So a step in another process
finds the copy (by its name, or by its tags), reads its note, and trusts no step it did not see finish. The
steps ask the place; nothing in them says which kind it is.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from deid.steps.context import RunContext
    from deid.steps.state import CopyState, Holder


class Place(Protocol):
    def check_names(self) -> None:
        """ConfigError when the copies' names cannot be made whole here."""

    def work_url(self, ctx: RunContext) -> str:
        """The URL of tonight's working copy (with the staging connection's credentials)."""

    def has_work(self, ctx: RunContext) -> bool: ...

    def read_state(self, ctx: RunContext) -> CopyState | None: ...

    def write_state(self, ctx: RunContext, state: CopyState) -> None: ...

    def clear_leftovers(self, ctx: RunContext) -> list[str]:
        """Before a snapshot: drop the working copies killed runs left (unless another run holds them)."""

    def cleanup(self, ctx: RunContext) -> bool:
        """Drop tonight's working copy if it is this run's; True when one was dropped."""

    def publish(self, ctx: RunContext, state: CopyState) -> str:
        """Put tonight's copy (the gate passed it: `state`) under the staging name: "published" or "kept"."""

    def rollback(self, to: dt.date | None) -> dt.date: ...

    def status(self) -> dict[str, Any]: ...

    def drop_work(self, mine: Holder, force: bool) -> list[str]:
        """`deid cleanup`: drop every working copy (those of a run under way only with `force`)."""


class DatabasePlace:
    """Copies as databases on the staging server (steps/copies.py)."""

    def __init__(self, staging_server_url: str, staging_name: str, database: str):
        self.server, self.staging_name = staging_server_url, staging_name
        self.database = database  # whose copies these must be (copies.check_owned)

    def check_names(self) -> None:
        from deid.steps.copies import check_staging_name

        check_staging_name(self.staging_name, self.server)

    def work_url(self, ctx: RunContext) -> str:
        return ctx.url_for(ctx.work_name)

    def has_work(self, ctx: RunContext) -> bool:
        from deid.steps.copies import admin, exists

        with admin(self.server) as c:
            return exists(c, ctx.work_name)

    def read_state(self, ctx: RunContext) -> CopyState | None:
        from deid.steps.copies import admin, read_metadata
        from deid.steps.state import parse_state

        with admin(self.server) as c:
            return parse_state(read_metadata(c, ctx.work_name))

    def write_state(self, ctx: RunContext, state: CopyState) -> None:
        from deid.steps.copies import admin, set_metadata

        with admin(self.server) as c:
            set_metadata(c, ctx.work_name, state.model_dump(by_alias=True, exclude_none=True))

    def clear_leftovers(self, ctx: RunContext) -> list[str]:
        from deid.lock import check_holder
        from deid.steps.copies import admin, check_owned, copies_on, drop_database

        with admin(self.server) as c:
            copies = copies_on(c, self.staging_name)
            check_owned(copies, self.database, self.staging_name)  # before anything is dropped or copied
            leftovers = [copy for copy in copies if copy.role == "work"]
            for copy in leftovers:
                state = copy.state
                check_holder(state.holder if state else None, ctx.holder, copy.name, dropping=True)
            for copy in leftovers:
                drop_database(c, copy.name)
        return [copy.name for copy in leftovers]

    def cleanup(self, ctx: RunContext) -> bool:
        from deid.lock import check_holder
        from deid.steps.copies import admin, copies_on, drop_database

        with admin(self.server) as c:
            copy = next((x for x in copies_on(c, self.staging_name) if x.name == ctx.work_name), None)
            if copy is None:
                return False
            state = copy.state
            check_holder(state.holder if state else None, ctx.holder, copy.name)
            return drop_database(c, ctx.work_name)

    def publish(self, ctx: RunContext, state: CopyState) -> str:
        from deid.steps.publish import publish_databases

        return publish_databases(ctx, state)

    def rollback(self, to: dt.date | None) -> dt.date:
        from deid.steps.publish import rollback

        return rollback(self.server, self.staging_name, to, self.database)

    def status(self) -> dict[str, Any]:
        from deid.steps.copies import status

        return status(self.server, self.staging_name)

    def drop_work(self, mine: Holder, force: bool) -> list[str]:
        from deid.lock import check_holder
        from deid.steps.copies import admin, copies_on, drop_database

        dropped = []
        with admin(self.server) as c:
            for copy in copies_on(c, self.staging_name):
                if copy.role != "work":
                    continue
                state = copy.state
                if not force:
                    check_holder(state.holder if state else None, mine, copy.name)
                drop_database(c, copy.name)
                dropped.append(copy.name)
        return dropped


def place_of(ctx: RunContext) -> Place:
    """Where ctx's copies live (one ServerPlace per context: it remembers tonight's server once found)."""
    if ctx.database.server_copies is None:
        return DatabasePlace(ctx.staging_server_url, ctx.staging_name, ctx.database.name)
    if ctx.server_place is None:
        from deid.steps.servers import ServerPlace

        ctx.server_place = ServerPlace.of(ctx)
    return ctx.server_place


def place_for(config, name: str, settings, resolver=None) -> Place:
    """Where the copies of database `name` live, for a command outside a run (rollback, status, cleanup);
    `resolver`: see RunContext.clone_resolver."""
    db = config.database(name)
    server = settings.connection(db.staging_server)
    if db.server_copies is None:
        return DatabasePlace(server, db.staging_name, name)
    from deid.steps.servers import ServerPlace

    return ServerPlace.build(db, server, settings.connection(db.production), resolver)
