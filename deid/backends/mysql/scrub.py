"""The scrub on MySQL/MariaDB: every rewritten column through its vector form (stream.py), so a table gets
the same values as on PostgreSQL for the same salt; there are no SQL forms on this engine, and the plan's
`statement` (PostgreSQL's SQL) is not run.

Three parts, as the scrub step calls them (deid.steps.scrub):

- prepare_scrub makes the ledger in the copy (scrub_ledger.py) and checks, before anything is written, that
  every table can be scrubbed: each rewritten column has a vector form, each rewritten table a key to write
  its rows back by. A unit is a whole table (no table is split into parts here).
- scrub_tables rewrites tables, each in its own transaction: static rows counted against their limit,
  UPDATE triggers set aside (triggers_off.py), rows streamed out and back, one UPDATE with foreign key checks
  off (both ends of a key get the same deterministic transform), the ledger's row in the same transaction,
  the triggers created again. A `copy: schema_only` table is emptied (TRUNCATE, foreign key checks off).
  A table the ledger holds is not scrubbed again (a retried task).
- finish_scrub checks that the ledger holds every table of the plan, creates again any trigger a killed
  scrub left aside, checks the foreign keys whose columns the scrub rewrote or whose table it emptied
  (TerminalError naming those that no longer hold), renews the tables' statistics and drops the ledger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from deid import rawsql
from deid.backends.mysql import rebuild, scrub_ledger, stream, textforms, triggers_off, unique_off
from deid.backends.mysql.quoting import quote_identifier
from deid.backends.scrubbing import Progress, Scrubbing, TableResult
from deid.dberrors import retell
from deid.errors import TerminalError
from deid.plan import Plan, TablePlan
from deid.schema import Schema, Table
from deid.vector.apply import new_tally
from deid.vector.prf import Key

log = logging.getLogger("deid.scrub")


def scrub_database(
    engine: sa.Engine,
    plan: Plan,
    salt: str,
    progress: Progress | None = None,
    tables: set[str] | None = None,
    schema: Schema | None = None,
    stream: bool = True,
    stream_from_rows: int = 0,
    sessions: int = 1,
    parts: int = 1,
    split_from_rows: int = 0,
) -> list[TableResult]:
    """Apply `plan` to the database behind `engine` (a working copy); `tables` limits it to some tables (a
    test's). Every table streams, whatever its size: `stream_from_rows`, `sessions`, `parts` and
    `split_from_rows` mean nothing here, and `stream=False` (the SQL forms) is refused."""
    if not stream:
        raise TerminalError("the MySQL/MariaDB scrub has no SQL forms: every table streams (stream=True)")
    if schema is None:
        from deid.backends.mysql.introspect import introspect

        with engine.connect() as connection:
            schema = introspect(connection, plan.database)
    units = prepare_scrub(engine, plan, schema, Scrubbing(), tables)
    results = scrub_tables(engine, plan, salt, schema, set(units), progress)
    finish_scrub(engine, plan, tables)
    return results


def _wanted(plan: Plan, tables: set[str] | None) -> list[TablePlan]:
    return [t for t in plan.tables if t.touched and (tables is None or t.table in tables)]


def prepare_scrub(
    engine: sa.Engine,
    plan: Plan,
    schema: Schema,
    how: Scrubbing = Scrubbing(),
    tables: set[str] | None = None,
) -> list[str]:
    """The ledger in the copy, and every table checked scrubbable before anything is written; returns the
    tables to scrub (one unit each). Runs again safely: the ledger is kept when made for the same plan."""
    units = []
    for table_plan in _wanted(plan, tables):
        if table_plan.copy == "full":
            _way_of(schema, table_plan)  # refuses a column without a vector form, a table it cannot rebuild
        units.append(table_plan.table)
    with _session(engine) as connection:
        try:
            for statement in scrub_ledger.DDL:
                rawsql.execute(connection, statement)
            scrub_ledger.start(connection, plan)
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
    """Scrub the tables among `units` in the plan's order; `streams_done` is called once the last table's
    rows are in. Calls on different units may run at once (Airflow maps them)."""
    parts = sorted(u for u in units if "#" in u)
    if parts:
        raise TerminalError(f"{parts[0]}: the MySQL/MariaDB scrub does not split tables into parts")
    wanted = [t for t in plan.tables if t.table in units]
    unknown = sorted(units - {t.table for t in wanted})
    if unknown:
        raise TerminalError(f"{unknown[0]} is not a table of the plan of {plan.database}")
    key = Key.for_salt(salt)
    results = []
    with _session(engine) as connection:
        try:
            scrub_ledger.check_plan(connection, plan)
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub") from None
        for table_plan in wanted:
            if not table_plan.touched:
                result = TableResult(table_plan.table, 0, 0.0, "untouched")
            else:
                result = _scrub_table(engine, connection, plan, schema, table_plan, key)
            results.append(result)
            log.info("scrub %s: %s %d rows, %.2fs", result.table, result.action, result.rows, result.seconds)
            if progress:
                progress(result)
    if streams_done is not None:
        streams_done()
    return results


def _scrub_table(
    engine: sa.Engine, connection: sa.Connection, plan: Plan, schema: Schema, table_plan: TablePlan, key: Key
) -> TableResult:
    started = time.monotonic()
    table = _table(schema, table_plan.table)
    try:
        rows = scrub_ledger.already(connection, plan, table_plan.table)
        if rows is not None:
            triggers_off.restore(connection, table_plan.table)  # a scrub killed after its commit
            unique_off.restore(connection, table_plan.table)
            return TableResult(table_plan.table, rows, 0.0, "already scrubbed")
        if table_plan.copy == "schema_only":
            rows = rawsql.execute(connection, f"SELECT COUNT(*) FROM {quote_identifier(table.name)}").scalar()
            rawsql.execute(connection, f"TRUNCATE TABLE {quote_identifier(table.name)}")
            with _transaction(connection):
                scrub_ledger.note(connection, plan, table_plan.table, int(rows or 0))
            return TableResult(table_plan.table, int(rows or 0), time.monotonic() - started, "emptied")
        way = _faster_way(connection, schema, table_plan, _way_of(schema, table_plan))
        if isinstance(way, rebuild.Rebuilt):
            rows, tallies = _rebuild_table(engine, connection, plan, table_plan, way, key)
            action = "rebuilt"
        else:
            rows, tallies = _stream_table(engine, connection, plan, table_plan, way, key)
            action = "streamed"
    except sa.exc.DBAPIError as exc:
        raise retell(exc, f"scrub of {table_plan.table}") from None
    return TableResult(table_plan.table, rows, time.monotonic() - started, action, tallies=tallies)


def _faster_way(
    connection: sa.Connection, schema: Schema, table_plan: TablePlan, way: stream.Streamed | rebuild.Rebuilt
) -> stream.Streamed | rebuild.Rebuilt:
    """A keyed table is rebuilt too when that is safe and faster (rebuild.faster: narrow rows), or when a
    killed scrub had begun to rebuild it."""
    if isinstance(way, rebuild.Rebuilt):
        return way
    begun = scrub_ledger.rebuild_state(connection, table_plan.table) is not None
    if begun or (
        rebuild.refusal(schema, way.table, table_plan) is None and rebuild.faster(connection, way.table.name)
    ):
        return rebuild.Rebuilt(way.table, way.columns, way.keep_rows_where)
    return way


def _rebuild_table(
    engine: sa.Engine,
    connection: sa.Connection,
    plan: Plan,
    table_plan: TablePlan,
    rebuilt: rebuild.Rebuilt,
    key: Key,
) -> tuple[int, dict | None]:
    """One table rebuilt (rebuild.py): static rows checked, rows streamed into a new table, the swap, the
    ledger's row. A retry that finds the new table complete only swaps; the tallies of its stream were
    lost with the killed task (validation then samples the table's columns)."""
    tallies = None
    if rebuild.resumed(connection, table_plan.table):
        rows = rebuild.streamed_rows(connection, rebuilt)
    else:
        check_static_rows(connection, table_plan, rebuilt)
        tally = new_tally(rebuilt.columns)
        try:
            with _session(engine) as reader:
                rawsql.execute(reader, "SET SESSION net_write_timeout = 86400")
                rows = rebuild.fill(connection, reader, rebuilt, table_plan.table, key, tally)
            tallies = tally.close()
        except BaseException:
            tally.close()
            raise
    rebuild.swap(connection, rebuilt, table_plan.table)
    with _transaction(connection):
        scrub_ledger.note(connection, plan, table_plan.table, rows, tallies)
        scrub_ledger.forget_rebuild(connection, table_plan.table)
    return rows, tallies


def _stream_table(
    engine: sa.Engine,
    connection: sa.Connection,
    plan: Plan,
    table_plan: TablePlan,
    streamed: stream.Streamed,
    key: Key,
) -> tuple[int, dict]:
    """One table through the stream: static rows checked, triggers set aside, rows out and back in, one
    UPDATE committed with the ledger's row, triggers created again."""
    check_static_rows(connection, table_plan, streamed)
    triggers_off.set_aside(connection, table_plan.table, streamed.table.name, table_plan.recomputed)
    unique_off.set_aside(connection, table_plan.table, streamed.table, {c.name for c in streamed.columns})
    tally = new_tally(streamed.columns)
    try:
        with _session(engine) as reader:
            # a server waiting on a slow reader drops the connection after net_write_timeout (60 s)
            rawsql.execute(reader, "SET SESSION net_write_timeout = 86400")
            rows = stream.stream_into_staging(connection, reader, streamed, key, tally)
        tallies = tally.close()
    except BaseException:
        tally.close()
        raise
    with _transaction(connection):
        stream.apply_staging(connection, streamed)
        if _system_versioned(connection, streamed.table.name):  # MariaDB keeps old rows: production's values
            rawsql.execute(connection, f"DELETE HISTORY FROM {streamed.sql}")
        scrub_ledger.note(connection, plan, table_plan.table, rows, tallies)
    stream.drop_staging(connection)
    triggers_off.restore(connection, table_plan.table)
    unique_off.restore(connection, table_plan.table)
    return rows, tallies


def refusals(schema: Schema, plan: Plan) -> list[str]:
    """What prepare_scrub would refuse, table by table, without a database: the same checks."""
    found = []
    for table_plan in _wanted(plan, None):
        if table_plan.copy == "full":
            try:
                _way_of(schema, table_plan)
            except TerminalError as refused:
                found.append(str(refused))
    return found


def _way_of(schema: Schema, table_plan: TablePlan) -> stream.Streamed | rebuild.Rebuilt:
    """How a table is rewritten: updated in place by its key (stream.py), or rebuilt (rebuild.py) when it
    has no key the server reads back; TerminalError when neither can be done."""
    table = _table(schema, table_plan.table)
    columns = stream.rewritten_columns(table, table_plan)
    condition = condition_sql(table_plan)
    key = stream.usable_key(table)
    if key is not None:
        return stream.Streamed(table, key, columns, condition)
    refused = rebuild.refusal(schema, table, table_plan)
    if refused:
        raise TerminalError(
            f"{table_plan.table} has no primary key and no unique key over NOT NULL columns (of a type the "
            f"server reads back) to write its rows back by, so the scrub would rebuild it; but {refused}. "
            "Add a primary key to the table, or copy it schema_only"
        )
    return rebuild.Rebuilt(table, columns, condition)


def _table(schema: Schema, key: str) -> Table:
    table = schema.table(key)
    if table is None:
        raise TerminalError(f"{key} is in the plan but not in the copy's schema: run the job again")
    return table


def condition_sql(table_plan: TablePlan) -> str | None:
    """The static rows' condition: the plan renders it in the engine's SQL (deid.rules.condition)."""
    return table_plan.keep_rows_where or None


def check_static_rows(
    connection: sa.Connection, table_plan: TablePlan, streamed: stream.Streamed | rebuild.Rebuilt
) -> None:
    """TerminalError naming the table and the counts when its condition keeps more rows than its limit."""
    if not streamed.keep_rows_where:
        return
    kept, total = rawsql.execute(
        connection,
        f"SELECT COALESCE(SUM(({streamed.keep_rows_where}) IS TRUE), 0), COUNT(*) FROM {streamed.sql}",
    ).one()
    allowed = table_plan.keep_rows_limit.allowed(int(total))
    if kept > allowed:
        raise TerminalError(
            f"keep_rows_where of {table_plan.table} keeps {kept} of its {total} rows as static test data; "
            f"{table_plan.keep_rows_limit.describe()} allows {allowed}. Narrow the condition to the rows "
            "labelled fake, or set keep_rows_at_most for this table with a reason"
        )


def _system_versioned(connection: sa.Connection, table: str) -> bool:
    kind = connection.execute(
        sa.text(
            "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = :t"
        ),
        {"t": table},
    ).scalar()
    return kind == "SYSTEM VERSIONED"


def finish_scrub(
    engine: sa.Engine, plan: Plan, tables: set[str] | None = None
) -> tuple[dict[str, int], dict[str, dict[str, dict[str, int]]], list[tuple[str, str]]]:
    """Check that the ledger holds every table of `plan` (or of `tables`) as done, create again the triggers
    a killed scrub left aside, check the foreign keys the scrub could have broken, renew statistics and
    drop the ledger. Returns rows per table, the stream's tallies per table and column, and no unchecked
    foreign key (they are checked here: TerminalError naming each that does not hold)."""
    wanted = _wanted(plan, tables)
    with _session(engine) as connection:
        try:
            scrub_ledger.check_plan(connection, plan)
            ledger = scrub_ledger.scrubbed(connection)
            counted = scrub_ledger.tallies(connection)
            missing = [
                t.table for t in wanted if ledger.get(t.table, ("", "", 0))[:2] != (plan.digest, "done")
            ]
            if missing:
                raise TerminalError(
                    f"the scrub has not finished: {len(missing)} table(s) of the plan are not scrubbed "
                    f"({', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}). Run the scrub of "
                    "those tables first"
                )
            triggers_off.restore(connection)
            unique_off.restore(connection)
            from deid.backends.mysql.introspect import introspect

            schema = introspect(connection, plan.database)
            broken = _broken_foreign_keys(connection, schema, wanted)
            if broken:
                raise TerminalError(
                    "foreign keys do not hold after the scrub: "
                    + ", ".join(f"{name} of {table} ({rows} rows without their row in {ref})"
                                for table, name, ref, rows in broken)
                    + ". Give the key's columns and the columns they reference the same rule"
                )  # fmt: skip
            names = [_table(schema, t.table).name for t in wanted]
            for chunk in range(0, len(names), 50):  # renewed from the scrubbed rows
                listed = ", ".join(quote_identifier(n) for n in names[chunk : chunk + 50])
                rawsql.execute(connection, f"ANALYZE TABLE {listed}").all()
            for name in scrub_ledger.TABLES:
                rawsql.execute(connection, f"DROP TABLE IF EXISTS `{name}`")
        except sa.exc.DBAPIError as exc:
            raise retell(exc, "scrub") from None
    return {t.table: ledger[t.table][2] for t in wanted}, counted, []


def _broken_foreign_keys(
    connection: sa.Connection, schema: Schema, done: list[TablePlan]
) -> list[tuple[str, str, str, int]]:
    """(table, key, referenced table, orphan rows) of each foreign key the scrub could have broken: one
    whose columns, or the columns it references, were rewritten, or whose referenced table was emptied."""
    changed = {
        t.table: {a.column for a in t.rewritten} if t.copy == "full" else None for t in done
    }  # None: emptied
    broken = []
    for table in schema.tables:
        for fk in table.foreign_keys:
            mine, theirs = changed.get(table.qualified, set()), changed.get(fk.ref_table, set())
            touched = (
                theirs is None
                or (mine is not None and set(fk.columns) & mine)
                or (theirs is not None and set(fk.ref_columns) & theirs)
            )
            parent = schema.table(fk.ref_table)
            if not touched or parent is None or table.qualified in changed and mine is None:
                continue
            on = " AND ".join(
                f"p.{quote_identifier(r)} = c.{quote_identifier(c)}"
                for c, r in zip(fk.columns, fk.ref_columns, strict=True)
            )
            present = " AND ".join(f"c.{quote_identifier(c)} IS NOT NULL" for c in fk.columns)
            orphans = rawsql.execute(
                connection,
                f"SELECT COUNT(*) FROM {quote_identifier(table.name)} AS c WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {quote_identifier(parent.name)} AS p WHERE {on})",
            ).scalar()
            if orphans:
                broken.append((table.qualified, fk.name, fk.ref_table, int(orphans)))
    return broken


@contextmanager
def _session(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A scrub session: autocommit (DDL commits anyway; each table's rewrite is an explicit transaction),
    values in UTC and UTF-8, strict, foreign keys not checked row by row."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for statement in (*textforms.SESSION, "SET SESSION foreign_key_checks = 0"):
            rawsql.execute(connection, statement)
        try:
            yield connection
        finally:
            rawsql.execute(connection, "SET SESSION foreign_key_checks = 1")


@contextmanager
def _transaction(connection: sa.Connection) -> Iterator[None]:
    """An explicit transaction on an autocommit session."""
    rawsql.execute(connection, "START TRANSACTION")
    try:
        yield
    except BaseException:
        rawsql.execute(connection, "ROLLBACK")
        raise
    rawsql.execute(connection, "COMMIT")
