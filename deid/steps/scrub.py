"""The scrub step of a run: the working copy's plan (built from its own schema as cloned), applied to it.

Three parts, so that Airflow can spread the tables over workers: `scrub_prepare` makes the support objects
and the ledger in the copy, `scrub_table_set` rewrites some tables (one Airflow task each), `scrub_finish`
checks every table is done, renews statistics, drops the support objects and stamps the copy. Each part reads
the plan from the copy again and refuses a copy the snapshot did not finish, or one already scrubbed. The
rewriting itself is the engine's (Backend.prepare_scrub, scrub_tables, finish_scrub).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from deid.backends import Backend, backend_for
from deid.backends.scrubbing import Progress, Scrubbing, TableResult
from deid.names import column_key
from deid.plan import Plan
from deid.records.record import add_table_result
from deid.schema import Schema

__all__ = ["TableResult", "scrub", "scrub_database", "scrub_finish", "scrub_prepare", "scrub_table_set"]


def scrub(
    ctx, progress: Progress | None = None, streams_done: Callable[[], object] | None = None
) -> list[TableResult]:
    """The scrub step of a run: the copy's plan (from its own schema), applied to it. The three parts below;
    Airflow runs them as separate tasks, each of which reads the plan from the copy again. `streams_done` is
    called once no row remains to transform in this process (from then on it mostly waits on the server)."""
    tables = scrub_prepare(ctx)
    results = scrub_table_set(ctx, set(tables), progress, streams_done)
    scrub_finish(ctx)
    return results


def scrub_prepare(ctx) -> list[str]:
    """First part of the scrub step: support objects in the copy, big tables split into parts; returns what
    the scrub does, one unit per Airflow task: a table, or `<table>#<i>/<n>`, a part of one."""
    plan, schema = _plan(ctx)
    with _work_engine(ctx) as work:
        return _backend(ctx).prepare_scrub(work, plan, schema, _scrubbing(ctx))


def scrub_table_set(
    ctx,
    units: set[str],
    progress: Progress | None = None,
    streams_done: Callable[[], object] | None = None,
) -> list[TableResult]:
    """Middle part: scrub `units` of the working copy, as scrub_prepare named them (one Airflow mapped task
    does one); `streams_done` as scrub's."""
    plan, schema = _plan(ctx)
    with _work_engine(ctx) as work:
        results = _backend(ctx).scrub_tables(
            work, plan, ctx.salt, schema, units, progress, _scrubbing(ctx), streams_done
        )
    for r in results:
        add_table_result(ctx.record, r.table, table_fact(r))
    return results


def scrub_database(engine: sa.Engine, plan: Plan, salt: str, **options) -> list[TableResult]:
    """The whole scrub of the database behind `engine` in one call, without a run around it (a benchmark's or
    a test's); `options` are the engine's (deid.backends.<engine>.scrub.scrub_database)."""
    return backend_for(engine.dialect.name).scrub_database(engine, plan, salt, **options)


def _backend(ctx) -> Backend:
    return backend_for(ctx.database.engine)


def table_fact(result: TableResult) -> dict:
    """What the run record says of one scrubbed table, or of one part of it."""
    fact = {"rows": result.rows, "seconds": round(result.seconds, 3), "action": result.action}
    return fact | ({"part": result.part} if result.part else {"sessions": result.sessions})


def _scrubbing(ctx) -> Scrubbing:
    database = ctx.database
    return Scrubbing(
        database.scrub_sessions,
        database.scrub_parts,
        database.split_from_rows,
        True,
        database.stream_from_rows,
    )


def scrub_finish(ctx) -> None:
    """Last part: every table of the plan scrubbed (the copy's ledger says so), materialized views
    refreshed, `_deid` dropped, and the scrub stamped on the copy with its plan's digest."""
    from deid.steps.ledger import applied_plan, begin, finish

    state = begin(ctx, "scrub")
    plan, schema, rules = applied_plan(ctx, state)
    done = state.stamp("scrub")
    if done is not None:
        return  # an earlier attempt finished (a retried task): the stamp says for this very plan
    with _work_engine(ctx) as work:
        rows, tallies, unchecked = _backend(ctx).finish_scrub(work, plan)
    finish(
        ctx,
        state,
        "scrub",
        rules=rules.digest,
        plan=plan.digest,
        schema=schema.digest,
        counts={"tables": len(rows), "rows": sum(rows.values())},
        tallies={
            column_key(table, column): counts
            for table, columns in tallies.items()
            for column, counts in columns.items()
        },
        unchecked_keys=unchecked,
    )


def _plan(ctx) -> tuple[Plan, Schema]:
    """The plan of tonight's copy, for a scrub that has not finished on it yet, and the copy's schema it was
    made from."""
    from deid.steps.ledger import applied_plan, begin
    from deid.steps.state import Refused

    state = begin(ctx, "scrub")
    if state.stamp("scrub") is not None:
        raise Refused(
            f"{ctx.work_name} is scrubbed already; to scrub it again, run the job from its snapshot step"
        )
    plan, schema, _ = applied_plan(ctx, state)
    return plan, schema


@contextmanager
def _work_engine(ctx) -> Iterator[sa.Engine]:
    from deid.db import engine as make_engine

    work = make_engine(ctx.work_url)
    try:
        yield work
    finally:
        work.dispose()
