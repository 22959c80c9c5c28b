"""The snapshot step: tonight's working copy of the production database, and its cleanup after a failure.

A working copy holds unscrubbed production rows until the scrub has run, so none outlives its run: a
snapshot first drops every working copy a killed run left behind (unless it belongs to an Airflow run still
under way: see deid.lock.check_holder), a failed clone drops what it had built, and `cleanup` drops
tonight's copy when a later step fails.

Once cloned, the copy is read, not production: its own schema, the row count of every table, and the rules
checked against that schema, so an unclassified column fails the run here, before any step works on the
copy. The plan made from that schema is the run's only one: stored on the copy with the schema, every later
step reads it from there (steps/state.py). The snapshot is the copy's first
stamp (steps/state.py).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from deid import db, rawsql
from deid.backends import backend_for
from deid.cloners import cloner_for
from deid.dberrors import retell
from deid.errors import RuleProblems, TerminalError
from deid.plan import plan_for
from deid.review.hints import with_drift_hint
from deid.rules.coverage import check_large_objects
from deid.rules.load import load_rules
from deid.schema import Schema
from deid.steps.context import RunContext
from deid.steps.copies import new_metadata
from deid.steps.ledger import finish
from deid.steps.places import place_of
from deid.steps.state import CopyState, pack_plan, pack_schema


def snapshot(ctx: RunContext) -> None:
    """Clone production into ctx.work_name (closed to everyone but deid's role), read the copy's schema and
    row counts, check the rules against it, and stamp it; records how and how long."""
    place = place_of(ctx)
    place.check_names()
    rules = load_rules(ctx.rules_path)  # a broken rule file fails before anything is copied
    cloner = cloner_for(ctx.database.clone, ctx.database.engine)
    leftovers = place.clear_leftovers(ctx)
    started = time.monotonic()
    try:
        cloner.clone(ctx)
        ctx.record["clone_seconds"] = round(time.monotonic() - started, 3)
        schema, rows, objects = _read_copy(ctx)
        check_large_objects(rules, objects)
        try:
            plan, waiting = plan_for(
                rules, schema, has_migrations=ctx.database.migrations is not None, subset=ctx.only_tables
            )
        except RuleProblems as error:  # the copy's schema (production's tonight) no longer fits the rules
            raise with_drift_hint(error, ctx.database.name, ctx.rules_path, ctx.database.rules) from None
        state = CopyState.model_validate(
            {
                **new_metadata(ctx.database.name, ctx.logical_date),
                "holder": ctx.holder,
                "subset": sorted(ctx.only_tables) if ctx.only_tables is not None else None,
                "rows": rows,
                "snapshot_schema": pack_schema(schema),
                "snapshot_plan": pack_plan(plan, waiting),  # the run's one plan: later steps read it
            }
        )
        finish(
            ctx,
            state,
            "snapshot",
            rules=rules.digest,
            plan=plan.digest,
            schema=schema.digest,
            counts={"tables": len(schema.rule_tables), "rows": sum(rows.values())},
        )
    except BaseException as error:
        _cleanup_after(ctx, error)
        raise
    ctx.record["clone_method"] = cloner.name
    ctx.record["rules_digest"] = rules.digest
    ctx.record["schema_hash"] = schema.digest
    ctx.record["plan"] = plan.verdicts
    ctx.record["rules_awaiting_migrations"] = sorted(waiting)
    if leftovers:
        ctx.record["dropped_leftovers"] = leftovers


def _read_copy(ctx: RunContext) -> tuple[Schema, dict[str, int], int]:
    """The working copy's schema, the rows of each table (a partitioned table counts its partitions) and
    how many large objects it holds."""
    work = db.engine(ctx.work_url, poolclass=sa.pool.NullPool)
    try:
        with work.connect() as c:
            backend = backend_for(ctx.database.engine)
            schema = backend.introspect(c, ctx.database.name)
            reserved = sorted(t.qualified for t in schema.tables if backend.is_scrub_table(t))
            if reserved:
                raise TerminalError(
                    f"production has {', '.join(reserved)}, where deid keeps its own objects in the working "
                    "copy: rename it in production"
                )
            rows = {t.qualified: _count(c, backend.quote_table(t.qualified)) for t in schema.rule_tables}
            found = backend.large_objects(c)
    except sa.exc.DBAPIError as exc:
        raise retell(exc, "reading the working copy") from None
    finally:
        work.dispose()
    return schema, rows, found


def _count(connection: sa.Connection, table_sql: str) -> int:
    return int(rawsql.execute(connection, f"SELECT count(*) FROM {table_sql}").scalar())


def cleanup(ctx: RunContext) -> bool:
    """Drop this date's working copy, if there is one and it is this run's; True when one was dropped."""
    return place_of(ctx).cleanup(ctx)


def _cleanup_after(ctx: RunContext, error: BaseException) -> None:
    """cleanup, reporting its own failure as a note on the error that matters."""
    try:
        cleanup(ctx)
    except Exception as failed:
        error.add_note(f"and the partial working copy {ctx.work_name} could not be dropped: {failed}")
