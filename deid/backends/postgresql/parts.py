"""A big streamed table split into parts that separate workers scrub (Airflow maps one task per part).

The stream of one table runs in one process, whose transform threads use the cores of one machine; a
CeleryExecutor or KubernetesExecutor deployment has the cores of several. So a big table is split:

1. **at prepare**, in one transaction: the static rows are checked, the new table the swap fills is made
   (swap.prepare, committed), and `_deid.splits` notes the table, its parts, its size in blocks, the swap's
   statements and the seed of the tally's digests, all parts alike;
2. **each part** (`<table>#<i>/<n>`, any worker; it needs only the copy's URL) streams the rows stored in its
   block range of the old table into the new one, and writes, in the same transaction, its row in
   `_deid.split_parts` (rows and counts) and its digests in `_deid.split_digests`: the part is done exactly
   when its rows are in, so a retried part that finds its row does nothing, and one that failed left nothing;
3. **at finish**, per table: every part must be there; the counts are summed, the outputs looked up among
   the inputs of all parts (deid.vector.tally, one partition in memory at a time), and the swap finishes in
   the transaction that notes the table done in the scrub's ledger.

The old table is never written until that last transaction: a part only reads it. The working copy is
deid's own (no other session writes it), so the block ranges read by the parts, in different transactions,
together hold every row exactly once. The digests are keyed by a random seed kept in `_deid`, dropped with
it when the scrub finishes, like the production values the copy held until then.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql import scrub_ledger, swap
from deid.backends.postgresql.forms.support import SCHEMA, apply_key
from deid.backends.postgresql.quoting import quote_table
from deid.backends.postgresql.split import block_ranges
from deid.backends.postgresql.stream import Streamed, stream_into_table
from deid.errors import TerminalError
from deid.plan import Plan, TablePlan
from deid.vector.apply import new_tally
from deid.vector.prf import Key
from deid.vector.tally import found_in_inputs

log = logging.getLogger("deid.scrub")
SPLITS, PARTS, DIGESTS = f"{SCHEMA}.splits", f"{SCHEMA}.split_parts", f"{SCHEMA}.split_digests"
DDL = (
    f"""CREATE TABLE IF NOT EXISTS {SPLITS} (
    table_key text PRIMARY KEY, parts int NOT NULL, blocks bigint NOT NULL, seed numeric NOT NULL,
    searched jsonb NOT NULL, swap jsonb NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {PARTS} (
    table_key text NOT NULL, part int NOT NULL, rows bigint NOT NULL, counts jsonb NOT NULL,
    PRIMARY KEY (table_key, part))""",
    f"""CREATE TABLE IF NOT EXISTS {DIGESTS} (
    table_key text NOT NULL, part int NOT NULL, column_name text NOT NULL, side text NOT NULL,
    partition int NOT NULL, digests bytea NOT NULL)""",
)
_UNIT = re.compile(r"^(?P<table>.+)#(?P<part>[0-9]+)/(?P<parts>[0-9]+)$")


@dataclass(frozen=True)
class Unit:
    """What one scrub task does: a whole table, or part `part` (from 1) of `parts` of it."""

    table: str
    part: int | None = None
    parts: int | None = None

    def __str__(self) -> str:
        return self.table if self.part is None else f"{self.table}#{self.part}/{self.parts}"


def units(names: Iterable[str], plan: Plan) -> list[Unit]:
    """The units named (a table key, or `<table>#<i>/<n>`); TerminalError naming any the plan has not."""
    tables = {t.table for t in plan.tables}
    found, unknown = [], []
    for name in names:
        match = _UNIT.match(name) if name not in tables else None
        if match and match["table"] in tables and 1 <= int(match["part"]) <= int(match["parts"]):
            found.append(Unit(match["table"], int(match["part"]), int(match["parts"])))
        elif name in tables:
            found.append(Unit(name))
        else:
            unknown.append(name)
    if unknown:
        raise TerminalError(f"not in the plan of {plan.database}: {', '.join(sorted(unknown))}")
    return found


def split(
    connection: sa.Connection, table_plan: TablePlan, streamed: Streamed, parts: int
) -> list[Unit] | None:
    """Split the table into `parts` (in the caller's transaction, which must check its static rows first);
    None when it is not split: a swap cannot carry it, or it is scrubbed already. Once split, a table
    stays split in as many parts (a retried prepare finds it so)."""
    known = connection.execute(
        sa.text(f"SELECT parts FROM {SPLITS} WHERE table_key = :t"), {"t": table_plan.table}
    ).scalar()
    if known is not None:
        return [Unit(table_plan.table, i, known) for i in range(1, known + 1)]
    table_sql = quote_table(table_plan.table)
    if scrub_ledger.state(connection, table_plan.table) is not None:
        return None
    rawsql.execute(connection, f"LOCK TABLE {table_sql} IN SHARE MODE")
    if swap.why_not(connection, table_sql, table_plan.recomputed) is not None:
        return None
    rebuild = swap.prepare(connection, table_sql)
    blocks = connection.execute(
        sa.text("SELECT pg_relation_size(CAST(:t AS regclass)) / current_setting('block_size')::int"),
        {"t": table_sql},
    ).scalar()
    connection.execute(
        sa.text(
            f"INSERT INTO {SPLITS} (table_key, parts, blocks, seed, searched, swap) "
            "VALUES (:t, :n, :b, :s, CAST(:c AS jsonb), CAST(:w AS jsonb))"
        ),
        {
            "t": table_plan.table,
            "n": parts,
            "b": int(blocks),
            "s": secrets.randbits(64),
            "c": json.dumps(sorted(c.name for c in streamed.columns if c.searched)),
            "w": json.dumps(dataclasses.asdict(rebuild)),
        },
    )
    return [Unit(table_plan.table, i, parts) for i in range(1, parts + 1)]


def scrub_part(
    engine: sa.Engine,
    connection: sa.Connection,
    unit: Unit,
    table_plan: TablePlan,
    streamed: Streamed,
    key: Key,
    salt: str,
) -> tuple[int, str]:
    """Stream the unit's block range into the split table's new table, and note the part done, in one
    transaction; returns its rows and "streamed", or "already scrubbed" when an earlier attempt did it."""
    with connection.begin():
        done = connection.execute(
            sa.text(f"SELECT rows FROM {PARTS} WHERE table_key = :t AND part = :p"),
            {"t": unit.table, "p": unit.part},
        ).scalar()
        if done is not None:
            return int(done), "already scrubbed"
        found = connection.execute(
            sa.text(f"SELECT parts, blocks, seed::text, swap->>'new_sql' FROM {SPLITS} WHERE table_key = :t"),
            {"t": unit.table},
        ).first()
        if found is None or found[0] != unit.parts:
            raise TerminalError(
                f"{unit} is not a part of this copy's scrub (scrub_prepare split {unit.table} into "
                f"{found[0] if found else 'no'} parts): run the scrub from its scrub_prepare step"
            )
        parts, blocks, seed, new_sql = found
        rawsql.execute(connection, f"LOCK TABLE {quote_table(unit.table)} IN SHARE MODE")  # read, not written
        with engine.connect() as reader, reader.begin(), new_tally(streamed.columns, int(seed)) as tally:
            if streamed.sql_side:  # the SQL forms computed as the rows stream out need the key
                apply_key(reader, salt)
            rows = stream_into_table(
                connection, reader, table_plan, streamed, key, new_sql, tally,
                blocks=block_ranges(blocks, parts)[unit.part - 1],
            )  # fmt: skip
            connection.execute(
                sa.text(f"INSERT INTO {PARTS} VALUES (:t, :p, :r, CAST(:c AS jsonb))"),
                {"t": unit.table, "p": unit.part, "r": rows, "c": json.dumps(tally.counts())},
            )
            spilled = [
                {"t": unit.table, "p": unit.part, "c": column, "s": side, "n": n, "d": values.tobytes()}
                for column, side, n, values in tally.spilled()
            ]
            if spilled:
                connection.execute(sa.text(f"INSERT INTO {DIGESTS} VALUES (:t, :p, :c, :s, :n, :d)"), spilled)
    return rows, "streamed"


def finish_splits(connection: sa.Connection, plan: Plan) -> None:
    """Finish every split table: counts summed, outputs looked up among the inputs, the swap finished and
    the table noted done, one transaction per table. TerminalError naming the parts still to do."""
    with connection.begin():
        exists = rawsql.execute(connection, f"SELECT to_regclass('{SPLITS}') IS NOT NULL").scalar()
        splits = (
            rawsql.execute(connection, f"SELECT table_key, parts FROM {SPLITS} ORDER BY 1").all()
            if exists
            else []
        )
        done = {
            (t, p) for t, p in rawsql.execute(connection, f"SELECT table_key, part FROM {PARTS}").all()
        } if exists else set()  # fmt: skip
    missing = [str(Unit(t, i, n)) for t, n in splits for i in range(1, n + 1) if (t, i) not in done]
    if missing:
        raise TerminalError(
            f"the scrub has not finished: {len(missing)} part(s) of split tables are not scrubbed "
            f"({', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}). Run the scrub of those parts "
            "first"
        )
    for table, count in splits:
        started = time.monotonic()
        with connection.begin():
            if scrub_ledger.state(connection, table) == (plan.digest, "done"):
                continue  # an earlier attempt of the finish did this one
            rows, counts = _summed(connection, table)
            rawsql.execute(connection, swap.SORT_IN_MEMORY)
            found = connection.execute(
                sa.text(f"SELECT swap FROM {SPLITS} WHERE table_key = :t"), {"t": table}
            )
            swap.finish(connection, swap.Swap(**found.scalar()))
            scrub_ledger.note(connection, plan, table, "done", rows, counts)
            connection.execute(sa.text(f"DELETE FROM {DIGESTS} WHERE table_key = :t"), {"t": table})
        log.info(
            "scrub %s: %d rows in %d parts, swapped in in %.1f s",
            table,
            rows,
            count,
            time.monotonic() - started,
        )


def _summed(connection: sa.Connection, table: str) -> tuple[int, dict[str, dict[str, int]]]:
    """The rows and counts of a split table's parts, added up, with found_in_production for each column
    searched (its outputs among all its inputs, one partition of digests at a time)."""
    rows, counts = 0, {}
    for part_rows, part_counts in connection.execute(
        sa.text(f"SELECT rows, counts FROM {PARTS} WHERE table_key = :t"), {"t": table}
    ):
        rows += int(part_rows)
        for column, tally in part_counts.items():
            column_counts = counts.setdefault(column, {})
            for name, value in tally.items():
                column_counts[name] = column_counts.get(name, 0) + value
    searched = connection.execute(
        sa.text(f"SELECT searched FROM {SPLITS} WHERE table_key = :t"), {"t": table}
    ).scalar()
    query = sa.text(
        f"SELECT digests FROM {DIGESTS} "
        "WHERE table_key = :t AND column_name = :c AND side = :s AND partition = :n"
    )

    def read(column: str, side: str, partition: int) -> np.ndarray:
        found = connection.execute(query, {"t": table, "c": column, "s": side, "n": partition}).scalars()
        chunks = [np.frombuffer(chunk, np.uint64) for chunk in found]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)

    for column in searched:
        counts[column]["found_in_production"] = found_in_inputs(lambda side, n, c=column: read(c, side, n))
    return rows, counts
