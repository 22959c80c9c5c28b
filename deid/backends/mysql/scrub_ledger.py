"""The MySQL scrub's ledger inside the working copy: which plan scrubs it, which tables are done, the
triggers set aside while a table is rewritten, and the tables being rebuilt (rebuild.py). All are InnoDB and
dropped by finish_scrub.

`_deid_scrubbed` holds one row for the plan (table_key '') and one per table, written in the transaction
of the table's UPDATE, so a table's row exists exactly when its rewrite committed: a retried task skips it,
never scrubbing a table twice. `_deid_triggers` holds the definition of each trigger the scrub dropped, from
before it is dropped until it is created again, so a scrub killed in between leaves them to be restored
(DDL commits on its own in MySQL: no transaction could hold both the drop and the re-creation).
`_deid_unique` holds the unique keys dropped for a table's UPDATE (unique_off.py) until they exist again.
`_deid_rebuilds` holds, for each table being rebuilt, its definition as it was (SHOW CREATE TABLE, before its
foreign keys were moved to the new table) and how far the rebuild got, so a retry knows which table holds
which rows (rebuild.py).
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from deid.errors import TerminalError
from deid.plan import Plan

LEDGER = "_deid_scrubbed"
TRIGGERS = "_deid_triggers"
REBUILDS = "_deid_rebuilds"
UNIQUE = "_deid_unique"
TABLES = (LEDGER, TRIGGERS, REBUILDS, UNIQUE)
_PLAN_ROW = ""  # the ledger's row for the plan's digest (no table has an empty name)

DDL = (
    f"""CREATE TABLE IF NOT EXISTS `{LEDGER}` (
    table_key varchar(512) NOT NULL PRIMARY KEY,
    plan char(64) NOT NULL,
    state varchar(16) NOT NULL,
    `rows` bigint NOT NULL DEFAULT 0,
    tallies longtext NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin""",
    f"""CREATE TABLE IF NOT EXISTS `{TRIGGERS}` (
    table_key varchar(512) NOT NULL,
    name varchar(64) NOT NULL,
    position int NOT NULL,
    statement longtext NOT NULL,
    sql_mode text NOT NULL,
    character_set_client varchar(64) NOT NULL,
    collation_connection varchar(64) NOT NULL,
    PRIMARY KEY (table_key, name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin""",
    f"""CREATE TABLE IF NOT EXISTS `{REBUILDS}` (
    table_key varchar(512) NOT NULL PRIMARY KEY,
    state varchar(16) NOT NULL,
    definition longtext NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin""",
    f"""CREATE TABLE IF NOT EXISTS `{UNIQUE}` (
    table_key varchar(512) NOT NULL,
    table_name varchar(64) NOT NULL,
    name varchar(64) NOT NULL,
    clause longtext NOT NULL,
    PRIMARY KEY (table_key, name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin""",
)


def start(connection: sa.Connection, plan: Plan) -> None:
    """Note `plan` as the copy's plan (DDL ran), or check it is the one noted."""
    connection.execute(
        sa.text(f"INSERT IGNORE INTO `{LEDGER}` (table_key, plan, state) VALUES (:k, :p, 'plan')"),
        {"k": _PLAN_ROW, "p": plan.digest},
    )
    check_plan(connection, plan)


def check_plan(connection: sa.Connection, plan: Plan) -> None:
    found = connection.execute(
        sa.text(f"SELECT plan FROM `{LEDGER}` WHERE table_key = :k"), {"k": _PLAN_ROW}
    ).scalar()
    if found != plan.digest:
        raise TerminalError(
            "this working copy was partly scrubbed with another plan (rules or deid changed since), or its "
            f"scrub was not prepared: it cannot be scrubbed with {plan.database}'s plan of today. Run the "
            "job again from its snapshot step"
        )


def already(connection: sa.Connection, plan: Plan, table: str) -> int | None:
    """The rows of a table the ledger says is scrubbed with `plan`; None when it is still to do."""
    row = connection.execute(
        sa.text(f"SELECT plan, state, `rows` FROM `{LEDGER}` WHERE table_key = :t"), {"t": table}
    ).first()
    if row is None:
        return None
    if row[0] != plan.digest or row[1] != "done":
        raise TerminalError(f"the ledger of the scrub holds {table} for another plan: run the job again")
    return int(row[2])


def note(connection: sa.Connection, plan: Plan, table: str, rows: int, tallies: dict | None = None) -> None:
    """The table is done, in the caller's transaction (it commits with the rewrite); `tallies`: counts."""
    connection.execute(
        sa.text(
            f"INSERT INTO `{LEDGER}` (table_key, plan, state, `rows`, tallies) "
            "VALUES (:t, :p, 'done', :r, :c) ON DUPLICATE KEY UPDATE "
            "plan = VALUES(plan), state = VALUES(state), `rows` = VALUES(`rows`), tallies = VALUES(tallies)"
        ),
        {"t": table, "p": plan.digest, "r": rows, "c": json.dumps(tallies) if tallies else None},
    )


def scrubbed(connection: sa.Connection) -> dict[str, tuple[str, str, int]]:
    """table -> (plan digest, state, rows)."""
    found = connection.execute(
        sa.text(f"SELECT table_key, plan, state, `rows` FROM `{LEDGER}` WHERE table_key <> :k"),
        {"k": _PLAN_ROW},
    )
    return {row[0]: (row[1], row[2], int(row[3])) for row in found}


def tallies(connection: sa.Connection) -> dict[str, dict[str, dict[str, int]]]:
    """What the stream counted, per table and column."""
    found = connection.execute(
        sa.text(f"SELECT table_key, tallies FROM `{LEDGER}` WHERE tallies IS NOT NULL AND table_key <> :k"),
        {"k": _PLAN_ROW},
    )
    return {table: json.loads(counts) for table, counts in found}


def exists(connection: sa.Connection) -> bool:
    return bool(
        connection.execute(
            sa.text(
                "SELECT COUNT(*) FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
            ),
            {"t": LEDGER},
        ).scalar()
    )


def rebuild_state(connection: sa.Connection, table: str) -> tuple[str, str] | None:
    """(state, definition) of a table's rebuild under way, or None."""
    row = connection.execute(
        sa.text(f"SELECT state, definition FROM `{REBUILDS}` WHERE table_key = :t"), {"t": table}
    ).first()
    return None if row is None else (row[0], row[1])


def note_rebuild(connection: sa.Connection, table: str, state: str, definition: str | None = None) -> None:
    """A rebuild's state: `filling` (with the table's definition as it was) or `swapping` (the new table is
    complete); the caller's session autocommits, so the state is on disk before the step it announces."""
    if definition is not None:
        connection.execute(
            sa.text(f"INSERT INTO `{REBUILDS}` (table_key, state, definition) VALUES (:t, :s, :d)"),
            {"t": table, "s": state, "d": definition},
        )
    else:
        connection.execute(
            sa.text(f"UPDATE `{REBUILDS}` SET state = :s WHERE table_key = :t"), {"t": table, "s": state}
        )


def forget_rebuild(connection: sa.Connection, table: str) -> None:
    """The rebuild is over (in the transaction that notes the table done)."""
    connection.execute(sa.text(f"DELETE FROM `{REBUILDS}` WHERE table_key = :t"), {"t": table})
