"""Scrub: run the plan inside the working copy, set-based, one rewrite per table that holds sensitive columns.

Order of work in one session: the `_deid` support objects and fake-value dictionaries, the key (bound
parameters), `session_replication_role = replica` so that no trigger fires (a trigger stamping updated_at
would otherwise rewrite data; foreign keys hold by construction and are validated afterwards). Each table is
its own transaction: indexes set aside, one UPDATE, indexes built again. Then materialized views are
refreshed from the scrubbed data and `_deid` is dropped, so neither the key nor the dictionaries are
published. Errors are retold without values (see dberrors).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from deid.backends.postgresql.rewrite import restore_indexes, set_aside_indexes
from deid.dberrors import retell
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
    results = []
    with engine.connect() as connection:
        try:
            with connection.begin():  # session settings made here outlive the transaction
                for statement in support_sql():
                    connection.exec_driver_sql(statement)
                load_dictionaries(connection, plan.dictionaries)
                apply_key(connection, salt)
                for statement in plan.preamble:
                    connection.exec_driver_sql(statement)
            for table_plan in plan.tables:
                if tables is not None and table_plan.table not in tables:
                    continue
                result = _scrub_table(connection, table_plan)
                results.append(result)
                log.info(
                    "scrub %s: %s %d rows in %.2fs", result.table, result.action, result.rows, result.seconds
                )
                if progress:
                    progress(result)
            _refresh_materialized_views(connection)
            with connection.begin():
                connection.exec_driver_sql(f"DROP SCHEMA {SCHEMA} CASCADE")
                connection.exec_driver_sql("RESET session_replication_role")
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub") from None
    return results


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
    from deid.db import engine as make_engine

    plan, _ = production_plan(ctx)
    work = make_engine(ctx.work_url)
    try:
        results = scrub_database(work, plan, ctx.salt, progress)
    finally:
        work.dispose()
    from deid.steps.copies import update_metadata

    update_metadata(ctx.staging_server_url, ctx.work_name, rules_digest=ctx.record["rules_digest"])
    ctx.record["tables"] = {
        r.table: {"rows": r.rows, "seconds": round(r.seconds, 3), "action": r.action} for r in results
    }
    return results
