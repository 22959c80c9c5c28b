"""A table rebuilt rather than updated: its scrubbed rows streamed into a new table, which then takes the old
one's place, name and everything attached to it.

An UPDATE of every row writes each row twice (a new version and the old one's deletion mark), maintains the
indexes a foreign key needs row by row and leaves the table twice its size; a new table is written once and
its indexes are built by sorting. So the stream (stream.py) fills `<schema>._deid_new_<oid>` (made LIKE the
table: columns, defaults, generated columns, storage, compression; its CHECK constraints added before the
rows arrive, so each row is checked as it is written), and then, in the same transaction:

1. the foreign keys of other tables that reference it are dropped, the sequences its columns own are given to
   the new table, and the old table is dropped (RESTRICT: anything this module does not carry over makes the
   drop fail, and the transaction with it: nothing is ever lost silently);
2. the new table takes the old one's name and gets, from the definitions read before the drop: owner,
   constraints, indexes, CLUSTER ON, replica identity, triggers in their enabled states, row level security
   and its policies, storage parameters, column statistics targets and options, extended statistics,
   comments, and privileges (table and column);
3. foreign keys are added back NOT VALID: checking them reads every referencing row (seconds per million),
   which validation would read again for orphans; so the scrub notes them on the copy (`pending`), and the
   run's validate step has the database validate them (VALIDATE CONSTRAINT, several at once, beside its
   other checks) instead of scanning for orphans. Nothing is published before that.

An identity column's sequence is made anew by LIKE (with the old one's options) and takes the old one's name,
state, privileges and comment. What a swap cannot carry (partitions, inheritance, typed tables, rules, views
or other objects that depend on the table, publications, security labels, tablespaces, triggers the rules
recompute)
is found by `why_not` before anything is written, and such a table is updated in place instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql.quoting import quote_ident, quote_literal, quote_table
from deid.names import key

# the new table's index builds sort in memory (in the transaction that finishes the swap)
SORT_IN_MEMORY = "SET LOCAL maintenance_work_mem = '256MB'"
PENDING = "_deid.pending_foreign_keys"  # in the scrub's schema, dropped with it
PENDING_DDL = f"CREATE TABLE IF NOT EXISTS {PENDING} (table_sql text NOT NULL, name text NOT NULL)"

_WHY_NOT = sa.text(
    """
    SELECT CASE
        WHEN c.relkind <> 'r' THEN 'it is not a plain table'
        WHEN c.relispartition THEN 'it is a partition'
        WHEN EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid OR inhparent = c.oid)
            THEN 'it takes part in inheritance'
        WHEN c.reloftype <> 0 THEN 'it is a typed table'
        WHEN c.relpersistence <> 'p' THEN 'it is not a logged table'
        WHEN c.reltablespace <> 0
             OR EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                        WHERE i.indrelid = c.oid AND x.reltablespace <> 0) THEN 'it uses a tablespace'
        WHEN EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = c.oid) THEN 'it has rules'
        WHEN EXISTS (SELECT 1 FROM pg_publication_rel WHERE prrelid = c.oid) THEN 'it is published'
        WHEN EXISTS (SELECT 1 FROM pg_seclabel WHERE objoid = c.oid AND classoid = 'pg_class'::regclass)
            THEN 'it has security labels'
        WHEN EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid AND contype = 't')
            THEN 'it has constraint triggers'
        WHEN EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
                     AND t.tgname = ANY(CAST(:recomputed AS text[]))) THEN 'its rules recompute a trigger'
        WHEN EXISTS (  -- objects that would block the drop (views, functions ...), other than the table's
            -- own (a CHECK or a policy reads its columns, and is auto-dependent on it) and foreign keys
            SELECT 1 FROM pg_depend d
            WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.deptype = 'n'
              AND NOT (d.classid = 'pg_constraint'::regclass
                       AND EXISTS (SELECT 1 FROM pg_constraint k WHERE k.oid = d.objid AND k.contype = 'f'))
              AND NOT (d.classid = 'pg_class'::regclass AND d.objid = c.oid)
              AND NOT EXISTS (SELECT 1 FROM pg_depend own
                              WHERE own.classid = d.classid AND own.objid = d.objid
                                AND own.refclassid = 'pg_class'::regclass AND own.refobjid = c.oid
                                AND own.deptype IN ('a', 'i'))
            UNION ALL
            SELECT 1 FROM pg_depend d
            WHERE d.refclassid = 'pg_type'::regclass AND d.refobjid = c.reltype AND d.deptype = 'n')
            THEN 'other objects depend on it'
    END
    FROM pg_class c WHERE c.oid = CAST(:t AS regclass)
    """
)


def why_not(connection: sa.Connection, table_sql: str, recomputed: tuple[str, ...]) -> str | None:
    """Why the table cannot be rebuilt by a swap (it is then updated in place), or None when it can."""
    return connection.execute(_WHY_NOT, {"t": table_sql, "recomputed": list(recomputed)}).scalar()


@dataclass
class Swap:
    """What the swap of one table runs, read from the catalogs while the old table is still there."""

    table_sql: str
    name: str  # the table's own name, unqualified and unquoted
    new_name: str  # unqualified, in the table's schema
    new_sql: str
    checks: list[str] = field(default_factory=list)  # on the new table, before the rows arrive
    before_drop: list[str] = field(default_factory=list)
    after_rename: list[str] = field(default_factory=list)
    referencing: list[str] = field(default_factory=list)  # other tables' keys, once the new one has its own
    pending: list[tuple[str, str]] = field(default_factory=list)  # (table, foreign key) to validate
    # identity columns: (column, the old sequence (qualified, and its own name), its options as ALTER
    # SEQUENCE spells them, its last_value and is_called); the new table's
    # own sequence (LIKE copies its options) takes the name and the state
    identities: list[tuple[str, str, str, str, int, bool]] = field(default_factory=list)


def prepare(connection: sa.Connection, table_sql: str) -> Swap:
    """Read everything the new table must get, and create it (empty, with its CHECK constraints)."""
    oid, schema, name = connection.execute(
        sa.text(
            "SELECT c.oid, n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = CAST(:t AS regclass)"
        ),
        {"t": table_sql},
    ).one()
    new_name = f"_deid_new_{oid}"
    swap = Swap(table_sql, name, new_name, f"{quote_ident(schema)}.{quote_ident(new_name)}")
    params = {"t": table_sql}
    for sql_name, value in connection.execute(_STATEMENTS, params).all():
        _STEPS[sql_name](swap, value)
    for column, sequence, name, options in connection.execute(_IDENTITIES, params).all():
        last_value, is_called = rawsql.execute(
            connection, f"SELECT last_value, is_called FROM {sequence}"
        ).one()
        swap.identities.append((column, sequence, name, options, int(last_value), bool(is_called)))
    rawsql.execute(
        connection,
        f"CREATE TABLE {swap.new_sql} (LIKE {table_sql} INCLUDING DEFAULTS INCLUDING GENERATED "
        "INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION)",
    )
    for statement in swap.checks:
        rawsql.execute(connection, statement)
    return swap


def finish(connection: sa.Connection, swap: Swap) -> None:
    """The new table (filled) takes the old one's place; foreign keys wait in PENDING for validation."""
    for statement in swap.before_drop:
        rawsql.execute(connection, statement)
    rawsql.execute(connection, f"DROP TABLE {swap.table_sql} RESTRICT")
    rawsql.execute(connection, f"ALTER TABLE {swap.new_sql} RENAME TO {quote_ident(swap.name)}")
    for column, sequence, name, options, last_value, is_called in swap.identities:
        made = connection.execute(
            sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": swap.table_sql, "c": column}
        ).scalar()
        rawsql.execute(connection, f"ALTER SEQUENCE {made} RENAME TO {quote_ident(name)}")
        # LIKE makes it a bigint sequence with the type's limits spelled out: the old one's type and options
        rawsql.execute(connection, f"ALTER SEQUENCE {sequence} {options}")
        state = {"s": sequence, "v": last_value, "c": is_called}
        connection.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v, :c)"), state)
    for statement in (*swap.after_rename, *swap.referencing):
        rawsql.execute(connection, statement)
    rawsql.execute(connection, PENDING_DDL)
    for table, name in swap.pending:
        connection.execute(
            sa.text(f"INSERT INTO {PENDING} (table_sql, name) VALUES (:t, :n)"), {"t": table, "n": name}
        )


def pending(connection: sa.Connection) -> list[tuple[str, str]]:
    """Foreign keys the swaps added NOT VALID, as (the table's key "schema.table", the constraint's name);
    none when no swap ran."""
    exists = connection.execute(sa.text("SELECT to_regclass(:p) IS NOT NULL"), {"p": PENDING}).scalar()
    if not exists:
        return []
    found = connection.execute(
        sa.text(
            f"SELECT n.nspname, c.relname, p.name FROM {PENDING} p "
            "JOIN pg_class c ON c.oid = CAST(p.table_sql AS regclass) "
            "JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY 1, 2, 3"
        )
    )
    return [(key(schema, table), name) for schema, table, name in found]


def validate_statement(table: str, name: str) -> str:
    """VALIDATE CONSTRAINT of the foreign key `name` of `table` (its key, "schema.table")."""
    return f"ALTER TABLE {quote_table(table)} VALIDATE CONSTRAINT {quote_ident(name)}"


_IDENTITIES = sa.text(
    "SELECT a.attname, q.seq, s.relname, format('AS %s START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s "
    "CACHE %s %s', p.seqtypid::regtype, p.seqstart, p.seqincrement, p.seqmin, p.seqmax, p.seqcache, "
    "CASE WHEN p.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END) FROM pg_attribute a, "
    "LATERAL (SELECT pg_get_serial_sequence(CAST(:t AS regclass)::text, a.attname) AS seq) q, pg_class s, "
    "pg_sequence p WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped "
    "AND a.attidentity <> '' AND s.oid = CAST(q.seq AS regclass) AND p.seqrelid = s.oid ORDER BY a.attnum"
)

# what swap_statements.sql returns, run in order of its branches
_STATEMENTS = sa.text((Path(__file__).parent / "swap_statements.sql").read_text(encoding="utf-8"))


def _check(swap: Swap, statement: str) -> None:
    swap.checks.append(statement.replace("{new}", swap.new_sql, 1))


def _incoming(swap: Swap, value: str) -> None:
    import json

    fk = json.loads(value)
    name = quote_ident(fk["name"])
    swap.before_drop.append(f"ALTER TABLE {fk['table']} DROP CONSTRAINT {name}")
    added = f"ALTER TABLE {fk['table']} ADD CONSTRAINT {name} {fk['def']}"
    swap.referencing.append(added + (" NOT VALID" if fk["valid"] else ""))
    if fk["valid"]:
        swap.pending.append((fk["table"], fk["name"]))
    if fk["comment"] is not None:
        comment = quote_literal(fk["comment"])
        swap.referencing.append(f"COMMENT ON CONSTRAINT {name} ON {fk['table']} IS {comment}")


def _owned(swap: Swap, statement: str) -> None:
    swap.before_drop.append(statement.replace("{new}", swap.new_sql, 1))


def _own_fk(swap: Swap, statement: str) -> None:
    swap.after_rename.append(statement)
    name = statement.split(" ADD CONSTRAINT ", 1)[1]
    swap.pending.append((swap.table_sql, _first_identifier(name)))


def _first_identifier(text: str) -> str:
    """The identifier at the start of `text`, unquoted (format's %I output: quoted only when needed)."""
    if text.startswith('"'):
        end = 1
        while True:
            end = text.index('"', end)
            if text[end + 1 : end + 2] == '"':
                end += 2
                continue
            return text[1:end].replace('""', '"')
    return text.split(" ", 1)[0]


_STEPS = {
    "check": _check,
    "incoming": _incoming,
    "owned": _owned,
    "own-fk": _own_fk,
    "after": lambda swap, statement: swap.after_rename.append(statement),
}
