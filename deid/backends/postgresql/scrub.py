"""Scrub: run the plan inside the working copy, set-based, one rewrite per table that holds sensitive columns.

Three parts, so that Airflow can spread the tables over workers: prepare creates the `_deid` support
objects, fake-value dictionaries and the scrub's own ledger in the copy; each scrub session then sets the key
(bound parameters) and `session_replication_role = replica` so that no trigger fires (a trigger stamping
updated_at would otherwise rewrite data; foreign keys hold by construction and are validated afterwards), and
rewrites its tables, each in its own transaction: indexes set aside, one UPDATE, indexes built again, and a
row in the ledger `_deid.scrubbed`, committed with the rewrite; finish checks that the ledger holds every
table of the plan, refreshes materialized views from the scrubbed data, renews the planner statistics of
what it rewrote or emptied (backends/postgresql/statistics.py: production's are sample values) and drops
`_deid`, so neither the key-derived objects nor the dictionaries are published. Errors are retold without
values (see dberrors).

The ledger makes the scrub resumable and never doubled: a table whose row is there is not rewritten again (a
retried Airflow task), a table split over several sessions is marked `partial` before its first session
commits, so a failure half-way leaves a mark that refuses the copy rather than a table half scrubbed twice.
Static test rows are bounded: a row condition keeping more than its table's limit (RowLimit) fails the
table before anything is rewritten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql import large_objects, parts, scrub_ledger, statistics, swap
from deid.backends.postgresql.forms.dictionaries import load_dictionaries
from deid.backends.postgresql.forms.support import SCHEMA, apply_key, support_sql
from deid.backends.postgresql.introspect import introspect
from deid.backends.postgresql.parts import Unit
from deid.backends.postgresql.quoting import quote_table
from deid.backends.postgresql.rewrite import restore_indexes, set_aside_indexes
from deid.backends.postgresql.split import rewrite_split
from deid.backends.postgresql.stream import (
    Streamed,
    apply_staging,
    stream_into_staging,
    stream_into_table,
)
from deid.backends.scrubbing import (
    SPLIT_MIN_ROWS,
    STREAM_MIN_ROWS,
    Progress,
    Scrubbing,
    TableResult,
)
from deid.dberrors import retell
from deid.errors import TerminalError
from deid.names import key
from deid.plan import Plan, TablePlan
from deid.schema import Schema
from deid.vector.apply import engine_side, new_tally, streamed_columns
from deid.vector.prf import Key

log = logging.getLogger("deid.scrub")


def scrub_database(
    engine: sa.Engine,
    plan: Plan,
    salt: str,
    progress: Progress | None = None,
    tables: set[str] | None = None,
    sessions: int = 1,
    split_from_rows: int = SPLIT_MIN_ROWS,
    schema: Schema | None = None,
    stream: bool = True,
    stream_from_rows: int = STREAM_MIN_ROWS,
    parts: int = 1,
) -> list[TableResult]:
    """Apply `plan` to the database behind `engine` (a working copy). `tables` limits it to some tables
    (a benchmark's or a test's: the scrub step always scrubs them all, and finishes only when all are).
    `schema`: the one the plan was made from (read from the database when not given). `stream=False`
    rewrites every table by the SQL forms (the oracle the tests compare the stream with)."""
    if schema is None:
        with engine.connect() as connection:
            schema = introspect(connection, plan.database)
    how = Scrubbing(sessions, parts, split_from_rows, stream, stream_from_rows)
    units = prepare_scrub(engine, plan, schema, how, tables)
    units += [t.table for t in plan.tables if t.statement is None and (tables is None or t.table in tables)]
    results = scrub_tables(engine, plan, salt, schema, set(units), progress, how)
    _, _, unchecked = finish_scrub(engine, plan, tables)
    broken = validate_foreign_keys(engine, unchecked, sessions)
    if broken:  # the run's validate step reports these as failed expectations; this call stands alone
        raise TerminalError(
            "foreign keys do not hold after the scrub: "
            + ", ".join(f"{name} of {table}" for table, name in broken)
        )
    return results


def _streamed(how: Scrubbing, schema: Schema, table_plan: TablePlan) -> Streamed | None:
    """The table's stream, or None when it is not streamed (too small, nothing to rewrite, emptied)."""
    if not how.stream or table_plan.row_estimate < how.stream_from_rows:
        return None
    table = schema.table(table_plan.table)
    if table_plan.statement is None or table_plan.copy != "full" or table is None:
        return None
    return Streamed(
        table, streamed_columns(table, table_plan.actions), engine_side(table, table_plan.actions)
    )


def prepare_scrub(
    engine: sa.Engine,
    plan: Plan,
    schema: Schema,
    how: Scrubbing = Scrubbing(),
    tables: set[str] | None = None,
) -> list[str]:
    """Create the `_deid` support functions, dictionaries and ledger in the copy, for every scrub session,
    and split the big streamed tables into parts (parts.py); returns the units to scrub, one task each: a
    table's key, or `<table>#<i>/<n>` for a part. `tables`: only those (a benchmark's or a test's).

    Runs again safely (a retried task): the ledger and the splits are kept when made for the same plan, and
    a copy partly scrubbed with another plan is refused."""
    units: list[str] = []
    with engine.connect() as connection:
        try:
            with connection.begin():
                for statement in (*support_sql(), *scrub_ledger.DDL, *parts.DDL):
                    rawsql.execute(connection, statement)
                load_dictionaries(connection, plan.dictionaries)
                scrub_ledger.start(connection, plan)
                for table_plan in plan.tables:
                    if table_plan.statement is None or (
                        tables is not None and table_plan.table not in tables
                    ):
                        continue
                    streamed, split = _streamed(how, schema, table_plan), None
                    if streamed is not None and how.parts_of(table_plan.row_estimate) > 1:
                        check_static_rows(connection, table_plan)
                        split = parts.split(
                            connection, table_plan, streamed, how.parts_of(table_plan.row_estimate)
                        )
                    units.extend(str(u) for u in split or [Unit(table_plan.table)])
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub preparation") from None
    return units


def scrub_tables(
    engine: sa.Engine,
    plan: Plan,
    salt: str,
    schema: Schema,
    units: set[str],
    progress: Progress | None = None,
    how: Scrubbing = Scrubbing(),
    streams_done: Callable[[], object] | None = None,
) -> list[TableResult]:
    """Scrub the `units` prepare_scrub returned (or some of them), in the plan's order of tables.

    A table is streamed through the vector forms (stream.py) where every rewritten column has one, else
    rewritten by the SQL forms, a big one shared by `how.sessions` sessions (split.py); the parts of a split
    table here run side by side, one session each. Calls are independent, so several may run at once on
    different units (Airflow maps them, even over several workers).

    `streams_done` is called once this process has no more rows to transform: as the last streamed table's
    rows are in, before its indexes are built (from then on the process mostly waits on the server).
    """
    results = []
    key = Key.for_salt(salt)
    wanted: dict[str, list[Unit]] = {}
    for unit in parts.units(units, plan):
        wanted.setdefault(unit.table, []).append(unit)
    streams = {t.table: _streamed(how, schema, t) for t in plan.tables if t.table in wanted}
    streaming = [table for table, streamed in streams.items() if streamed is not None]
    streams_done = _once(streams_done)
    if not streaming:
        streams_done()
    with engine.connect() as connection:
        setup, keyed = _session_setup(plan, salt), False
        _session_setup(plan, None)(connection)  # the key reaches the session only if an SQL form needs it
        for table_plan in plan.tables:
            if table_plan.table not in wanted:
                continue
            streamed = streams[table_plan.table]
            table_units = wanted[table_plan.table]
            if table_units[0].part is not None:
                if streamed is None:
                    raise TerminalError(f"{table_plan.table} is not streamed, so it has no parts to scrub")
                done = _scrub_parts(engine, table_plan, streamed, table_units, key, salt)
            elif (rows := scrub_ledger.already(connection, plan, table_plan)) is not None:
                done = [TableResult(table_plan.table, rows, 0.0, "already scrubbed")]
            elif streamed is not None:
                rows_in = streams_done if table_plan.table == streaming[-1] else None
                done = [_stream_table(engine, connection, plan, table_plan, streamed, key, salt, rows_in)]
            else:
                if not keyed:
                    setup(connection)
                    keyed = True
                split = how.sessions > 1 and table_plan.row_estimate >= how.split_from_rows
                if split and table_plan.statement is not None and table_plan.copy != "schema_only":
                    done = [_scrub_table_split(engine, connection, plan, table_plan, setup, how.sessions)]
                else:
                    done = [_scrub_table(connection, plan, table_plan)]
            if streaming and table_plan.table == streaming[-1]:
                streams_done()  # parts, or a table scrubbed before: no stream of its own to call it
            for result in done:
                results.append(result)
                part = f" part {result.part}" if result.part else ""
                log.info(
                    "scrub %s%s: %s %d rows, %.2fs",
                    result.table,
                    part,
                    result.action,
                    result.rows,
                    result.seconds,
                )
                if progress:
                    progress(result)
    return results


def _scrub_parts(
    engine: sa.Engine, table_plan: TablePlan, streamed: Streamed, units: list[Unit], key: Key, salt: str
) -> list[TableResult]:
    """The parts of one split table, side by side, each in its own session (one Airflow task runs one)."""

    def one(unit: Unit) -> TableResult:
        started = time.monotonic()
        with engine.connect() as connection:
            try:
                rows, action = parts.scrub_part(engine, connection, unit, table_plan, streamed, key, salt)
            except (sa.exc.DBAPIError, psycopg.Error) as exc:
                raise retell(exc, f"scrub of {unit}") from None
        seconds = time.monotonic() - started
        return TableResult(unit.table, rows, seconds, action, part=f"{unit.part}/{unit.parts}")

    with ThreadPoolExecutor(max_workers=len(units)) as pool:
        return list(pool.map(one, units))


def check_static_rows(connection: sa.Connection, table_plan: TablePlan) -> None:
    """TerminalError naming the table and the counts when its row condition keeps more rows than its limit
    (a condition that keeps everything would publish every row unscrubbed)."""
    if not table_plan.keep_rows_where or table_plan.copy != "full":
        return
    kept, total = rawsql.execute(
        connection,
        f"SELECT count(*) FILTER (WHERE ({table_plan.keep_rows_where}) IS TRUE), count(*) "
        f"FROM {quote_table(table_plan.table)}",
    ).one()
    allowed = table_plan.keep_rows_limit.allowed(int(total))
    if kept > allowed:
        raise TerminalError(
            f"keep_rows_where of {table_plan.table} keeps {kept} of its {total} rows as static test data; "
            f"{table_plan.keep_rows_limit.describe()} allows {allowed}. Narrow the condition to the rows "
            "labelled fake, or set keep_rows_at_most for this table with a reason"
        )


def _session_setup(plan: Plan, salt: str | None) -> Callable[[sa.Connection], None]:
    """What every scrub session runs first: the key (bound parameters; not when `salt` is None), then the
    plan's preamble."""

    def setup(connection: sa.Connection) -> None:
        try:
            with connection.begin():  # session settings made here outlive the transaction
                if salt is not None:
                    apply_key(connection, salt)
                for statement in plan.preamble:
                    rawsql.execute(connection, statement)
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub") from None

    return setup


def _scrub_table_split(
    engine: sa.Engine, connection: sa.Connection, plan: Plan, table_plan: TablePlan, setup, sessions: int
) -> TableResult:
    started = time.monotonic()
    table_sql = quote_table(table_plan.table)
    if not _splittable(connection, table_sql):
        return _scrub_table(connection, plan, table_plan)
    try:
        with connection.begin():
            check_static_rows(connection, table_plan)
            scrub_ledger.note(connection, plan, table_plan.table, "partial")  # committed before any writes
            for statement in table_plan.before:  # triggers fired or silenced for the rewrite
                rawsql.execute(connection, statement)
    except sa.exc.DBAPIError as exc:
        raise retell(exc, f"scrub of {table_plan.table}") from None

    def finish(c: sa.Connection, rows: int) -> None:
        for statement in table_plan.after:
            rawsql.execute(c, statement)
        scrub_ledger.note(c, plan, table_plan.table, "done", rows)

    rows = rewrite_split(
        engine,
        connection,
        table_sql,
        str(table_plan.statement),
        bool(table_plan.keep_rows_where),
        setup,
        sessions,
        finish=finish,
    )
    return TableResult(table_plan.table, rows, time.monotonic() - started, "rewritten", sessions)


def _splittable(connection: sa.Connection, table_sql: str) -> bool:
    """A plain table on PostgreSQL 14+ (TID range scans); partitioned parents are rewritten whole."""
    with connection.begin():
        kind = connection.execute(
            sa.text("SELECT relkind FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table_sql}
        ).scalar()
        version = connection.exec_driver_sql("SELECT current_setting('server_version_num')::int").scalar()
    return kind == "r" and version >= 140000


def finish_scrub(
    engine: sa.Engine, plan: Plan, tables: set[str] | None = None
) -> tuple[dict[str, int], dict[str, dict[str, dict[str, int]]], list[tuple[str, str]]]:
    """Check that the ledger holds every table of `plan` (or of `tables`) as done (split tables swapped in
    first); refresh materialized views from the scrubbed data; drop `_deid` (its functions, dictionaries and
    ledger). Returns rows per table, the stream's tallies per table and column, and the foreign keys the
    swaps added back NOT VALID, as (table, constraint): checking them reads every referencing row, which the
    run's validate step does, beside its other checks (validate_foreign_keys), and nothing is published
    before it has."""
    with engine.connect() as connection:
        try:
            with connection.begin():
                scrub_ledger.check_plan(connection, plan)
            parts.finish_splits(connection, plan)
            with connection.begin():
                ledger = scrub_ledger.scrubbed(connection)
                counted = scrub_ledger.tallies(connection)
            wanted = [t.table for t in plan.tables if t.statement and (tables is None or t.table in tables)]
            missing = [t for t in wanted if ledger.get(t, ("", "", 0))[:2] != (plan.digest, "done")]
            if missing:
                raise TerminalError(
                    f"the scrub has not finished: {len(missing)} table(s) of the plan are not scrubbed "
                    f"({', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}). Run the scrub of "
                    "those tables first"
                )
            views = _refresh_materialized_views(connection)
            with connection.begin():
                done = [t for t in plan.tables if t.table in wanted]
                rewritten = [t.table for t in done if t.copy == "full"]
                emptied = [t.table for t in done if t.copy != "full"]
                statistics.renew(connection, [*rewritten, *views], emptied)
                if plan.large_objects == "drop":
                    large_objects.drop_all(connection)
                unchecked = swap.pending(connection)
                rawsql.execute(connection, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub") from None
    return {table: ledger[table][2] for table in wanted}, counted, unchecked


def _scrub_table(connection: sa.Connection, plan: Plan, table_plan: TablePlan) -> TableResult:
    started = time.monotonic()
    if table_plan.statement is None:
        return TableResult(table_plan.table, 0, 0.0, "untouched")
    table_sql = quote_table(table_plan.table)
    try:
        with connection.begin():
            if table_plan.copy == "schema_only":
                rows = rawsql.execute(connection, f"SELECT count(*) FROM {table_sql}").scalar() or 0
                rawsql.execute(connection, table_plan.statement)
                action = "emptied"
            else:
                check_static_rows(connection, table_plan)
                aside = set_aside_indexes(connection, table_sql)
                for statement in table_plan.before:  # triggers fired or silenced for the rewrite
                    rawsql.execute(connection, statement)
                rows = rawsql.execute(connection, table_plan.statement).rowcount
                for statement in table_plan.after:
                    rawsql.execute(connection, statement)
                restore_indexes(connection, aside)
                action = "rewritten"
            scrub_ledger.note(connection, plan, table_plan.table, "done", rows)
    except sa.exc.DBAPIError as exc:
        raise retell(exc, f"scrub of {table_plan.table}") from None
    return TableResult(table_plan.table, rows, time.monotonic() - started, action)


def _stream_table(
    engine: sa.Engine,
    connection: sa.Connection,
    plan: Plan,
    table_plan: TablePlan,
    streamed: Streamed,
    key: Key,
    salt: str,
    rows_in: Callable[[], object] | None = None,
) -> TableResult:
    """One table through the stream, in one transaction: static rows checked, the table locked against
    writers (the reader, a second session, must see what this transaction will replace), then rebuilt by a
    swap (swap.py) or, where a swap cannot carry the table, its rows updated in place from a staging table."""
    started = time.monotonic()
    table_sql = quote_table(table_plan.table)
    try:
        with connection.begin():
            check_static_rows(connection, table_plan)
            rawsql.execute(connection, f"LOCK TABLE {table_sql} IN SHARE MODE")
            reason = swap.why_not(connection, table_sql, table_plan.recomputed)
            rebuild = None
            if reason is None:
                rawsql.execute(connection, swap.SORT_IN_MEMORY)
                rebuild = swap.prepare(connection, table_sql)
            else:
                log.info("scrub %s: updated in place, not rebuilt, as %s", table_plan.table, reason)
            # the reader is closed before the swap drops what it read
            with engine.connect() as reader, reader.begin(), new_tally(streamed.columns) as tally:
                if streamed.sql_side:  # the SQL forms computed as the rows stream out need the key
                    apply_key(reader, salt)
                if rebuild is not None:
                    rows = stream_into_table(
                        connection, reader, table_plan, streamed, key, rebuild.new_sql, tally
                    )
                else:
                    stream_into_staging(connection, reader, table_plan, streamed, key, tally)
                tallies = tally.close()
            streamed_at = time.monotonic()
            if rows_in is not None:
                rows_in()
            if rebuild is not None:
                swap.finish(connection, rebuild)
                action = "rebuilt"
            else:
                rows, action = _update_in_place(connection, table_plan, streamed), "streamed"
            scrub_ledger.note(connection, plan, table_plan.table, "done", rows, tallies)
            log.info(
                "scrub %s: %d rows streamed in %.1f s, %s in %.1f s",
                table_plan.table, rows, streamed_at - started, action, time.monotonic() - streamed_at,
            )  # fmt: skip
    except (sa.exc.DBAPIError, psycopg.Error) as exc:  # COPY runs on the driver's cursor: psycopg's errors
        raise retell(exc, f"scrub of {table_plan.table}") from None
    return TableResult(table_plan.table, rows, time.monotonic() - started, action, tallies=tallies)


def _update_in_place(connection: sa.Connection, table_plan: TablePlan, streamed: Streamed) -> int:
    """The staged values written into the table by one UPDATE, indexes set aside, triggers as planned."""
    table_sql = quote_table(table_plan.table)
    aside = set_aside_indexes(connection, table_sql)
    for statement in table_plan.before:  # triggers fired or silenced for the rewrite
        rawsql.execute(connection, statement)
    rows = apply_staging(connection, table_plan, [*(c.name for c in streamed.columns), *streamed.sql_side])
    for statement in table_plan.after:
        rawsql.execute(connection, statement)
    restore_indexes(connection, aside)
    return rows


def validate_foreign_keys(
    engine: sa.Engine, keys: list[tuple[str, str]], sessions: int = 1
) -> list[tuple[str, str]]:
    """VALIDATE CONSTRAINT each foreign key (table, constraint), `sessions` at a time (each reads the
    referencing table once); returns those that do not hold: their referencing rows have orphans. Validating
    a key that is valid already costs nothing, so a retried step may run it again."""

    def check(item: tuple[str, str]) -> tuple[str, str] | None:
        try:
            with engine.connect() as c, c.begin():
                rawsql.execute(c, swap.validate_statement(*item))
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "23503":  # foreign_key_violation
                return item
            raise retell(exc, f"validation of the foreign key {item[1]} of {item[0]}") from None
        return None

    with ThreadPoolExecutor(max_workers=max(1, sessions)) as pool:
        return [item for item in pool.map(check, keys) if item is not None]


def _once(call: Callable[[], object] | None) -> Callable[[], None]:
    """`call` on the first call of the result only (and nothing if `call` is None)."""
    pending = [call] if call is not None else []

    def once() -> None:
        while pending:
            pending.pop()()

    return once


def _refresh_materialized_views(connection: sa.Connection) -> list[str]:
    """Refresh every materialized view from the scrubbed data; returns their keys."""
    with connection.begin():
        found = connection.execute(
            sa.text(
                "SELECT schemaname, matviewname FROM pg_matviews "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            )
        ).all()
    views = [key(schema, name) for schema, name in found]
    for view in views:
        with connection.begin():
            rawsql.execute(connection, f"REFRESH MATERIALIZED VIEW {quote_table(view)}")
    return views
