"""One big table's rewrite shared by several sessions, on PostgreSQL.

An UPDATE runs on one core, and the scrub's cost is the transformers' CPU (keyed hashes), so a big table is
split by block ranges (TID range scans, PostgreSQL 14+) over concurrent sessions. All of them work from one
exported snapshot: a new row version written by one session may land in blocks that another scans, and must
stay invisible to it, or that row would be transformed twice. The ranges are disjoint, so no two sessions
touch the same row and REPEATABLE READ raises no conflict.

The indexes are set aside in a committed transaction first (the other sessions could not write the table
while it is locked), and built again at the end. The work thus spans several transactions: a failure
part-way leaves the table half rewritten, so it is raised as a TerminalError (retrying would transform rows
twice); the run's cleanup drops the working copy and the next run starts again from the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql.rewrite import restore_indexes, set_aside_indexes
from deid.dberrors import retell
from deid.errors import TerminalError

SessionSetup = Callable[[sa.Connection], None]  # key and session settings of one scrub session


def block_ranges(blocks: int, sessions: int) -> list[tuple[int, int | None]]:
    """`sessions` contiguous ranges [first, end) of block numbers; the last one is open-ended."""
    starts = [blocks * i // sessions for i in range(sessions)]
    return [(start, starts[i + 1] if i + 1 < sessions else None) for i, start in enumerate(starts)]


def ranged(statement: str, has_where: bool, first: int, end: int | None) -> str:
    """The table's UPDATE limited to the rows stored in blocks [first, end)."""
    condition = f"ctid >= '({first},0)'::tid"
    if end is not None:
        condition += f" AND ctid < '({end},0)'::tid"
    return statement + (" AND " if has_where else "\nWHERE ") + condition


def rewrite_split(
    engine: sa.Engine,
    connection: sa.Connection,
    table_sql: str,
    statement: str,
    has_where: bool,
    setup: SessionSetup,
    sessions: int,
    finish: Callable[[sa.Connection, int], None] = lambda connection, rows: None,
) -> int:
    """Run `statement` (an UPDATE of table_sql) over `sessions` sessions; returns the rows rewritten.

    `finish(connection, rows)` runs in the transaction that builds the indexes again, the last one: what it
    writes (the scrub's ledger) commits only if the whole rewrite did."""
    with connection.begin():
        aside = set_aside_indexes(connection, table_sql)
        blocks = connection.execute(
            sa.text("SELECT pg_relation_size(CAST(:t AS regclass)) / current_setting('block_size')::int"),
            {"t": table_sql},
        ).scalar()
    try:
        rows = _concurrently(
            engine, setup, [ranged(statement, has_where, *r) for r in block_ranges(blocks, sessions)]
        )
        with connection.begin():
            restore_indexes(connection, aside)
            finish(connection, rows)
    except (sa.exc.DBAPIError, TerminalError) as exc:
        # the reason as dberrors tells it: SQLSTATE, table, column, constraint, never a value
        reason = retell(exc, "the statement") if isinstance(exc, sa.exc.DBAPIError) else exc
        raise TerminalError(
            f"the scrub of {table_sql} failed part-way: {reason}. The table was split over {sessions} "
            "sessions and is now half rewritten, so this working copy cannot be resumed: the run drops it. "
            "Run again (or set scrub_sessions: 1 in deid.yaml to rewrite it in one transaction)."
        ) from None
    return rows


def _concurrently(engine: sa.Engine, setup: SessionSetup, statements: list[str]) -> int:
    with engine.connect() as exporter:
        exporter = exporter.execution_options(isolation_level="REPEATABLE READ")
        with exporter.begin():  # held open until every session has imported the snapshot
            snapshot = exporter.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            with ThreadPoolExecutor(max_workers=len(statements)) as pool:
                futures = [pool.submit(_rewrite_range, engine, setup, snapshot, s) for s in statements]
                errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:
                raise errors[0]
            return sum(f.result() for f in futures)


def _rewrite_range(engine: sa.Engine, setup: SessionSetup, snapshot: str, statement: str) -> int:
    with engine.connect() as c:
        setup(c)
        c = c.execution_options(isolation_level="REPEATABLE READ")
        with c.begin():
            # a snapshot id the server made (hex digits and dashes); SET takes no bound parameter
            rawsql.execute(c, f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            return rawsql.execute(c, statement).rowcount
