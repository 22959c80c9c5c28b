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
from deid.backends.postgresql.split import rewrite_split
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
    sessions: int = 1  # sessions that shared the rewrite


# A table is split over sessions from this many (estimated) rows: below it, setting sessions up costs more
# than it saves.
SPLIT_MIN_ROWS = 200_000


Progress = Callable[[TableResult], None]


def scrub_database(
    engine: sa.Engine,
    plan: Plan,
    salt: str,
    progress: Progress | None = None,
    tables: set[str] | None = None,
    sessions: int = 1,
    split_from_rows: int = SPLIT_MIN_ROWS,
) -> list[TableResult]:
    """Apply `plan` to the database behind `engine` (a working copy). `tables` limits it to some tables."""
    prepare_scrub(engine, plan)
    results = scrub_tables(engine, plan, salt, tables, progress, sessions, split_from_rows)
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
    sessions: int = 1,
    split_from_rows: int = SPLIT_MIN_ROWS,
) -> list[TableResult]:
    """Rewrite the plan's tables (or those in `tables`); prepare_scrub must have run.

    Tables are rewritten one after the other, a big one shared by `sessions` sessions (see split.py). Calls
    are independent, so several may run at once on different tables (Airflow maps them).
    """
    results = []
    with engine.connect() as connection:
        setup = _session_setup(plan, salt)
        setup(connection)
        for table_plan in plan.tables:
            if tables is not None and table_plan.table not in tables:
                continue
            if (
                sessions > 1
                and table_plan.statement is not None
                and table_plan.row_estimate >= split_from_rows
                and table_plan.copy != "schema_only"
            ):
                result = _scrub_table_split(engine, connection, table_plan, setup, sessions)
            else:
                result = _scrub_table(connection, table_plan)
            results.append(result)
            log.info("scrub %s: %s %d rows, %.2fs", result.table, result.action, result.rows, result.seconds)
            if progress:
                progress(result)
    return results


def _session_setup(plan: Plan, salt: str) -> Callable[[sa.Connection], None]:
    """What every scrub session runs first: the key (bound parameters), then the plan's preamble."""

    def setup(connection: sa.Connection) -> None:
        try:
            with connection.begin():  # session settings made here outlive the transaction
                apply_key(connection, salt)
                for statement in plan.preamble:
                    connection.exec_driver_sql(statement)
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub") from None

    return setup


def _scrub_table_split(
    engine: sa.Engine, connection: sa.Connection, table_plan: TablePlan, setup, sessions: int
) -> TableResult:
    started = time.monotonic()
    table_sql = quote_table(table_plan.table)
    if not _splittable(connection, table_sql):
        return _scrub_table(connection, table_plan)
    rows = rewrite_split(
        engine,
        connection,
        table_sql,
        str(table_plan.statement),
        bool(table_plan.keep_rows_where),
        setup,
        sessions,
    )
    return TableResult(table_plan.table, rows, time.monotonic() - started, "rewritten", sessions)


def _splittable(connection: sa.Connection, table_sql: str) -> bool:
    """A plain table on PostgreSQL 14+ (TID range scans); partitioned parents are rewritten whole."""
    with connection.begin():
        kind = connection.exec_driver_sql(
            f"SELECT relkind FROM pg_class WHERE oid = '{table_sql}'::regclass"
        ).scalar()
        version = connection.exec_driver_sql("SELECT current_setting('server_version_num')::int").scalar()
    return kind == "r" and version >= 140000


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
    ctx.record["schema_hash"] = schema.digest
    rules, waiting = awaiting_migrations(rules, schema, ctx.database.migrations is not None)
    ctx.record["rules_awaiting_migrations"] = sorted(waiting)
    if ctx.only_tables is not None:
        from deid.subset import only_tables

        rules = only_tables(rules, schema, ctx.only_tables)
    return planning.build_plan(rules, schema), schema


def scrub(ctx, progress: Progress | None = None) -> list[TableResult]:
    """The scrub step of a run: plan from production's schema, applied to tonight's working copy. The three
    parts below, with production introspected once (Airflow's tasks each plan for themselves)."""
    plan, _ = production_plan(ctx)
    tables = scrub_prepare(ctx, plan)
    results = scrub_table_set(ctx, set(tables), progress, plan)
    scrub_finish(ctx)
    return results


def scrub_prepare(ctx, plan: Plan | None = None) -> list[str]:
    """First part of the scrub step: support objects in the copy; returns the tables the plan rewrites."""
    plan = plan or production_plan(ctx)[0]
    with _work_engine(ctx) as work:
        prepare_scrub(work, plan)
    return [t.table for t in plan.tables if t.statement is not None]


def scrub_table_set(
    ctx, tables: set[str], progress: Progress | None = None, plan: Plan | None = None
) -> list[TableResult]:
    """Middle part: rewrite `tables` of the working copy (one Airflow mapped task does one table)."""
    plan = plan or production_plan(ctx)[0]
    unknown = tables - {t.table for t in plan.tables}
    if unknown:
        raise TerminalError(f"not in the plan of {ctx.database.name}: {', '.join(sorted(unknown))}")
    with _work_engine(ctx) as work:
        results = scrub_tables(work, plan, ctx.salt, tables, progress, ctx.database.scrub_sessions)
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
