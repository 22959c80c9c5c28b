"""The snapshot step: tonight's working copy of the production database, and its cleanup after a failure.

A working copy holds unscrubbed production rows until the scrub has run, so none outlives its run: a
snapshot first drops every working copy a killed run left behind, a failed clone drops what it had built,
and `cleanup` drops tonight's copy when a later step fails.
"""

from __future__ import annotations

import time

from deid.cloners import cloner_for
from deid.steps.context import RunContext
from deid.steps.copies import admin, check_staging_name, copies_on, drop_database, new_metadata, set_metadata


def snapshot(ctx: RunContext) -> None:
    """Clone production into ctx.work_name (closed to everyone but deid's role); records how and how long."""
    check_staging_name(ctx.staging_name)
    cloner = cloner_for(ctx.database.clone)
    with admin(ctx.staging_server_url) as c:
        leftovers = [copy.name for copy in copies_on(c, ctx.staging_name) if copy.role == "work"]
        for name in leftovers:
            drop_database(c, name)
    started = time.monotonic()
    try:
        cloner.clone(ctx)
        with admin(ctx.staging_server_url) as c:
            set_metadata(c, ctx.work_name, new_metadata(ctx.database.name, ctx.logical_date))
    except BaseException as error:
        _cleanup_after(ctx, error)
        raise
    ctx.record["clone_method"] = cloner.name
    ctx.record["clone_seconds"] = round(time.monotonic() - started, 3)
    if leftovers:
        ctx.record["dropped_leftovers"] = leftovers


def cleanup(ctx: RunContext) -> bool:
    """Drop this date's working copy, if there is one (after a failed step); True when one was dropped."""
    with admin(ctx.staging_server_url) as c:
        return drop_database(c, ctx.work_name)


def _cleanup_after(ctx: RunContext, error: BaseException) -> None:
    """cleanup, reporting its own failure as a note on the error that matters."""
    try:
        cleanup(ctx)
    except Exception as failed:
        error.add_note(f"and the partial working copy {ctx.work_name} could not be dropped: {failed}")
