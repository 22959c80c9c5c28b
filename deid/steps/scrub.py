"""Scrub: run the plan inside the working copy, set-based, one rewrite per table that holds sensitive columns.

Three parts, so that Airflow can spread the tables over workers: prepare creates the `_deid` support
objects and fake-value dictionaries in the copy; each scrub session then sets the key (bound parameters) and
`session_replication_role = replica` so that no trigger fires (a trigger stamping updated_at would otherwise
rewrite data; foreign keys hold by construction and are validated afterwards), and rewrites its tables, each
in its own transaction: indexes set aside, one UPDATE, indexes built again; finish refreshes materialized
views from the scrubbed data and drops `_deid`, so neither the key-derived objects nor the dictionaries are
published. Errors are retold without values (see dberrors).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from deid.backends.postgresql.rewrite import restore_indexes, set_aside_indexes
from deid.dberrors import retell
from deid.errors import TerminalError
from deid.plan import Plan, TablePlan
from deid.rules.targets import quote_table
from deid.schema import Schema
from deid.transformers.dictionaries import load_dictionaries
from deid.transformers.support import SCHEMA, apply_key, support_sql

log = logging.getLogger("deid.scrub")


@dataclass(frozen=True)
class TableResult:
    table: str
    rows: int
    seconds: float
    action: str  # "rewritten", "emptied" or "untouched"


Progress = Callable[[TableResult], None]


def scrub_database(
    engine: sa.Engine, plan: Plan, salt: str, progress: Progress | None = None, tables: set[str] | None = None
) -> list[TableResult]:
    """Apply `plan` to the database behind `engine` (a working copy). `tables` limits it to some tables."""
    prepare_scrub(engine, plan)
    results = scrub_tables(engine, plan, salt, tables, progress)
    finish_scrub(engine)
    return results


def prepare_scrub(engine: sa.Engine, plan: Plan) -> None:
    """Create the `_deid` support functions and dictionaries in the copy, for every scrub session to use."""
    with engine.connect() as connection:
        try:
            with connection.begin():
                for statement in support_sql():
                    connection.exec_driver_sql(statement)
                load_dictionaries(connection, plan.dictionaries)
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub preparation") from None


def scrub_tables(
    engine: sa.Engine,
    plan: Plan,
    salt: str,
    tables: set[str] | None = None,
    progress: Progress | None = None,
) -> list[TableResult]:
    """Rewrite the plan's tables (or those in `tables`) in one session; prepare_scrub must have run.

    Sessions are independent, so several of these may run at once on different tables (Airflow maps them).
    """
    results = []
    with engine.connect() as connection:
        try:
            with connection.begin():  # session settings made here outlive the transaction
                apply_key(connection, salt)
                for statement in plan.preamble:
                    connection.exec_driver_sql(statement)
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub") from None
        for table_plan in plan.tables:
            if tables is not None and table_plan.table not in tables:
                continue
            result = _scrub_table(connection, table_plan)
            results.append(result)
            log.info("scrub %s: %s %d rows, %.2fs", result.table, result.action, result.rows, result.seconds)
            if progress:
                progress(result)
    return results


def finish_scrub(engine: sa.Engine) -> None:
    """Refresh materialized views from the scrubbed data; drop `_deid` (its functions and dictionaries)."""
    with engine.connect() as connection:
        try:
            _refresh_materialized_views(connection)
            with connection.begin():
                connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub") from None


def _scrub_table(connection: sa.Connection, table_plan: TablePlan) -> TableResult:
    started = time.monotonic()
    if table_plan.statement is None:
        return TableResult(table_plan.table, 0, 0.0, "untouched")
    table_sql = quote_table(table_plan.table)
    try:
        with connection.begin():
            if table_plan.copy == "schema_only":
                rows = connection.exec_driver_sql(f"SELECT count(*) FROM {table_sql}").scalar() or 0
                connection.exec_driver_sql(table_plan.statement)
                action = "emptied"
            else:
                aside = set_aside_indexes(connection, table_sql)
                rows = connection.exec_driver_sql(table_plan.statement).rowcount
                restore_indexes(connection, aside)
                action = "rewritten"
    except sa.exc.DBAPIError as exc:
        raise retell(exc, f"scrub of {table_plan.table}") from None
    return TableResult(table_plan.table, rows, time.monotonic() - started, action)


def _refresh_materialized_views(connection: sa.Connection) -> None:
    with connection.begin():
        names = (
            connection.execute(
                sa.text(
                    "SELECT format('%I.%I', schemaname, matviewname) FROM pg_matviews "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
    for name in names:
        with connection.begin():
            connection.exec_driver_sql(f"REFRESH MATERIALIZED VIEW {name}")


def production_plan(ctx) -> tuple[Plan, Schema]:
    """Preflight: the production schema (read-only) and the plan; fails closed on any unclassified column."""
    from deid import plan as planning
    from deid.backends import backend_for
    from deid.db import connect_readonly
    from deid.rules.load import load_rules

    rules = load_rules(ctx.rules_path)
    engine = connect_readonly(ctx.production_url)
    try:
        with engine.connect() as connection:
            schema = backend_for(ctx.database.engine).introspect(connection, ctx.database.name)
    finally:
        engine.dispose()
    from deid.steps.migrate import awaiting_migrations

    ctx.record["rules_digest"] = rules.digest
    rules, waiting = awaiting_migrations(rules, schema, ctx.database.migrations is not None)
    ctx.record["rules_awaiting_migrations"] = sorted(waiting)
    return planning.build_plan(rules, schema), schema


def scrub(ctx, progress: Progress | None = None) -> list[TableResult]:
    """The scrub step of a run: plan from production's schema, applied to tonight's working copy."""
    tables = scrub_prepare(ctx)
    results = scrub_table_set(ctx, set(tables), progress)
    scrub_finish(ctx)
    return results


def scrub_prepare(ctx) -> list[str]:
    """First part of the scrub step: support objects in the copy; returns the tables the plan rewrites."""
    plan, _ = production_plan(ctx)
    with _work_engine(ctx) as work:
        prepare_scrub(work, plan)
    return [t.table for t in plan.tables if t.statement is not None]


def scrub_table_set(ctx, tables: set[str], progress: Progress | None = None) -> list[TableResult]:
    """Middle part: rewrite `tables` of the working copy (one Airflow mapped task does one table)."""
    plan, _ = production_plan(ctx)
    unknown = tables - {t.table for t in plan.tables}
    if unknown:
        raise TerminalError(f"not in the plan of {ctx.database.name}: {', '.join(sorted(unknown))}")
    with _work_engine(ctx) as work:
        results = scrub_tables(work, plan, ctx.salt, tables, progress)
    ctx.record.setdefault("tables", {}).update(
        {r.table: {"rows": r.rows, "seconds": round(r.seconds, 3), "action": r.action} for r in results}
    )
    return results


def scrub_finish(ctx) -> None:
    """Last part: materialized views refreshed, `_deid` dropped, the rules digest noted on the copy."""
    from deid.rules.load import load_rules
    from deid.steps.copies import update_metadata

    with _work_engine(ctx) as work:
        finish_scrub(work)
    digest = ctx.record.get("rules_digest") or load_rules(ctx.rules_path).digest
    update_metadata(ctx.staging_server_url, ctx.work_name, rules_digest=digest)


@contextmanager
def _work_engine(ctx) -> Iterator[sa.Engine]:
    from deid.db import engine as make_engine

    work = make_engine(ctx.work_url)
    try:
        yield work
    finally:
        work.dispose()
