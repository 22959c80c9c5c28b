"""The scrub's ledger inside the working copy: which tables of which plan are rewritten.

Two small tables in the `_deid` schema, dropped with it when the scrub finishes: `_deid.plan` holds the
digest of the one plan this copy is scrubbed with, and `_deid.scrubbed` one row per table, written in the
transaction of the table's rewrite, so the row exists exactly when the rewrite committed. A retried task
skips a table whose row is there; a table split over several sessions (several transactions) is noted
`partial` before the first session writes, and `done` with the last, so a split rewrite that stopped
half-way is seen and refused, never resumed into a table scrubbed twice.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from deid.backends.postgresql.forms.support import SCHEMA
from deid.errors import TerminalError
from deid.plan import Plan, TablePlan

LEDGER = f"{SCHEMA}.scrubbed"
DDL = (
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.plan (
    digest text PRIMARY KEY, only_one boolean NOT NULL DEFAULT true UNIQUE CHECK (only_one))""",
    f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
    table_key text PRIMARY KEY,
    plan text NOT NULL,
    state text NOT NULL CHECK (state IN ('partial', 'done')),
    rows bigint NOT NULL DEFAULT 0,
    tallies jsonb)""",
)


def start(connection: sa.Connection, plan: Plan) -> None:
    """Note `plan` as the copy's plan (the ledger's tables exist: DDL), or check it is the one noted."""
    connection.execute(
        sa.text(f"INSERT INTO {SCHEMA}.plan (digest) VALUES (:d) ON CONFLICT DO NOTHING"), {"d": plan.digest}
    )
    check_plan(connection, plan)


def check_plan(connection: sa.Connection, plan: Plan) -> None:
    found = connection.execute(sa.text(f"SELECT digest FROM {SCHEMA}.plan")).scalars().all()
    if found != [plan.digest]:
        raise TerminalError(
            "this working copy was partly scrubbed with another plan (rules or deid changed since): it "
            f"cannot be scrubbed with {plan.database}'s plan of today. Run the job again from its snapshot "
            "step"
        )


def scrubbed(connection: sa.Connection) -> dict[str, tuple[str, str, int]]:
    """The ledger: table -> (plan digest, state, rows), in the caller's transaction."""
    found = connection.execute(sa.text(f"SELECT table_key, plan, state, rows FROM {LEDGER}"))
    return {row[0]: (row[1], row[2], int(row[3])) for row in found}


def already(connection: sa.Connection, plan: Plan, table_plan: TablePlan) -> int | None:
    """The rows of a table the ledger says is scrubbed (a retry must not scrub it twice); None when it is
    still to do. TerminalError for a table a split rewrite left half done."""
    if table_plan.statement is None:
        return None
    with connection.begin():
        row = connection.execute(
            sa.text(f"SELECT plan, state, rows FROM {LEDGER} WHERE table_key = :t"), {"t": table_plan.table}
        ).first()
    if row is None:
        return None
    if row[0] != plan.digest or row[1] != "done":
        raise TerminalError(
            f"the scrub of {table_plan.table} stopped half-way in an earlier attempt (it was split over "
            "several sessions, so part of it is rewritten): this copy cannot be resumed. Run the job again "
            "from its snapshot step"
        )
    return int(row[2])


def state(connection: sa.Connection, table: str) -> tuple[str, str] | None:
    """The table's ledger row as (plan digest, state), or None when it has none."""
    row = connection.execute(
        sa.text(f"SELECT plan, state FROM {LEDGER} WHERE table_key = :t"), {"t": table}
    ).first()
    return None if row is None else (row[0], row[1])


def note(
    connection: sa.Connection, plan: Plan, table: str, state: str, rows: int = 0, tallies: dict | None = None
) -> None:
    """Write the table's ledger row, in the caller's transaction (so it commits with the rewrite); `tallies`:
    what the stream counted of each column (deid.vector.tally; counts only)."""
    connection.execute(
        sa.text(
            f"INSERT INTO {LEDGER} (table_key, plan, state, rows, tallies) "
            "VALUES (:t, :p, :s, :r, CAST(:c AS jsonb)) ON CONFLICT (table_key) "
            "DO UPDATE SET state = excluded.state, rows = excluded.rows, tallies = excluded.tallies"
        ),
        {"t": table, "p": plan.digest, "s": state, "r": rows, "c": json.dumps(tallies) if tallies else None},
    )


def tallies(connection: sa.Connection) -> dict[str, dict[str, dict[str, int]]]:
    """What the stream counted, per table and column (tables rewritten by SQL forms have none)."""
    found = connection.execute(sa.text(f"SELECT table_key, tallies FROM {LEDGER} WHERE tallies IS NOT NULL"))
    return {table: counts for table, counts in found}
