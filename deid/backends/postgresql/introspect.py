"""Read a PostgreSQL database's structure from pg_catalog into deid's Schema.

One query per family of objects (relations, columns, keys, foreign keys, triggers, sequences), whatever the
number of tables: production catalogs can hold thousands of tables, and a query per table would make
`deid schema` slow over a long-distance connection. The later queries are restricted to the relation OIDs the
first one found, so every family describes the same set of tables even if DDL runs in between.

Names that PostgreSQL prints (format_type for types, pg_get_expr for defaults) are qualified only when not
visible on the session's search_path, so the same column would read "email_d" on one connection and
"public.email_d" on another. Like pg_dump, introspection runs with search_path = pg_catalog, so every
non-built-in name comes out qualified: the JSON is the same from any session, and a data_type can be used in
a cast from any search_path. The caller's search_path is restored afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from deid import names
from deid.backends.postgresql import triggers, types
from deid.schema import (
    CheckConstraint,
    Column,
    ForeignKey,
    Kind,
    Schema,
    Sequence,
    Table,
    Trigger,
    UniqueKey,
    View,
)


def _user_namespace(alias: str = "n") -> str:
    """SQL true for the user's schemas: not the catalogs, TOAST or temporary schemas (all `pg_*`, a prefix
    users cannot create), nor deid's own `_deid` helpers in a working copy."""
    return f"({alias}.nspname !~ '^pg_' AND {alias}.nspname NOT IN ('information_schema', '_deid'))"


# Objects created by an extension (pg_stat_statements' views, PostGIS' topology tables) are re-created by
# CREATE EXTENSION and hold no user data, so they need no rule. An extension's *configuration* tables
# (pg_extension.extconfig) do hold user data, and pg_dump dumps them, so they stay.
_NOT_EXTENSION_MEMBER = """NOT EXISTS (
    SELECT 1 FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.objsubid = 0
      AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND NOT c.oid = ANY (coalesce(x.extconfig, '{}'))
)"""


SESSION = sa.text(
    "SELECT current_setting('server_version') AS server_version,"
    " current_setting('search_path') AS search_path"
)
SET_SEARCH_PATH = sa.text("SELECT set_config('search_path', :path, false)")

RELATIONS = sa.text(f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind, c.reltuples,
       pn.nspname AS parent_schema, pc.relname AS parent_name,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_by,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_class pc ON pc.oid = i.inhparent
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND {_user_namespace()} AND {_NOT_EXTENSION_MEMBER}
""")

# Columns with their type resolved: a domain (possibly over another domain) down to its base type, with the
# innermost typmod (varchar(12) of `CREATE DOMAIN code AS varchar(12)`) and NOT NULL gathered on the way;
# an array down to its element, itself possibly a domain. `kind_*` is the type that decides the Kind: the
# element's base for arrays, the base otherwise.
COLUMNS = sa.text("""
WITH RECURSIVE chain(domain_oid, cur, typmod, not_null) AS (
    SELECT t.oid, t.typbasetype, t.typtypmod, t.typnotnull FROM pg_type t WHERE t.typtype = 'd'
    UNION ALL
    SELECT ch.domain_oid, t.typbasetype,
           CASE WHEN ch.typmod >= 0 THEN ch.typmod ELSE t.typtypmod END, ch.not_null OR t.typnotnull
    FROM chain ch JOIN pg_type t ON t.oid = ch.cur
    WHERE t.typtype = 'd'
),
domains AS (
    SELECT ch.domain_oid, ch.cur AS base, ch.typmod, ch.not_null
    FROM chain ch JOIN pg_type t ON t.oid = ch.cur
    WHERE t.typtype <> 'd'
),
cols AS (
    SELECT a.attrelid, a.attnum, a.attname, a.attnotnull, a.attgenerated, a.attidentity,
           a.atttypid, a.atttypmod, dom.domain_oid, coalesce(dom.not_null, false) AS domain_notnull,
           coalesce(dom.base, a.atttypid) AS eff_oid,
           CASE WHEN dom.base IS NULL THEN a.atttypmod ELSE dom.typmod END AS eff_typmod
    FROM pg_attribute a
    LEFT JOIN domains dom ON dom.domain_oid = a.atttypid
    WHERE a.attrelid = ANY (CAST(:oids AS oid[])) AND a.attnum > 0 AND NOT a.attisdropped
),
arrays AS (
    SELECT cols.*, el.oid AS elem_oid,
           coalesce(edom.base, el.oid, cols.eff_oid) AS kind_oid,
           CASE WHEN el.oid IS NULL THEN cols.eff_typmod
                WHEN edom.base IS NULL THEN cols.eff_typmod
                ELSE edom.typmod END AS kind_typmod
    FROM cols
    JOIN pg_type et ON et.oid = cols.eff_oid
    LEFT JOIN pg_type el ON et.typelem <> 0 AND et.typlen = -1 AND el.oid = et.typelem
    LEFT JOIN domains edom ON edom.domain_oid = el.oid
)
SELECT ar.attrelid, ar.attname, ar.attnotnull, ar.attgenerated, ar.attidentity, ar.domain_notnull,
       format_type(ar.atttypid, ar.atttypmod) AS data_type,
       CASE WHEN ar.elem_oid IS NOT NULL THEN format_type(ar.elem_oid, ar.eff_typmod) END
           AS element_type,
       pg_get_expr(ad.adbin, ad.adrelid) AS default_expr,
       dn.nspname AS domain_schema, dt.typname AS domain_name,
       kn.nspname AS kind_schema, kt.typname AS kind_name, kt.typtype AS kind_typtype, ar.kind_typmod,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = kt.oid ORDER BY e.enumsortorder)
           AS enum_labels
FROM arrays ar
JOIN pg_type kt ON kt.oid = ar.kind_oid
JOIN pg_namespace kn ON kn.oid = kt.typnamespace
LEFT JOIN pg_type dt ON dt.oid = ar.domain_oid
LEFT JOIN pg_namespace dn ON dn.oid = dt.typnamespace
LEFT JOIN pg_attrdef ad ON ad.adrelid = ar.attrelid AND ad.adnum = ar.attnum
ORDER BY ar.attrelid, ar.attnum
""")


def _attnames(array: str, relid: str, where: str = "") -> str:
    """SQL for the column names of an attnum array, in the array's order."""
    return f"""ARRAY(
        SELECT a.attname::text FROM unnest({array}) WITH ORDINALITY k(attnum, n)
        JOIN pg_attribute a ON a.attrelid = {relid} AND a.attnum = k.attnum
        {where} ORDER BY k.n)"""


# Primary keys, unique constraints and unique indexes all have a pg_index row. Partial and expression
# indexes do not make a column set unique, and INCLUDE columns (past indnkeyatts) are not part of the key.
KEYS = sa.text(f"""
SELECT i.indrelid, i.indisprimary, ic.relname AS name,
       {_attnames("i.indkey::int2[]", "i.indrelid", "WHERE k.n <= i.indnkeyatts")} AS columns
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = ANY (CAST(:oids AS oid[])) AND (i.indisprimary OR i.indisunique)
  AND i.indpred IS NULL AND i.indexprs IS NULL
""")

# A foreign key that references a partitioned table is cloned, under the same name, once per partition of
# the referenced table, on the same referencing table (conparentid points to the original). Those clones
# are skipped; the clones a partition inherits from its parent's foreign key (different conrelid) stay.
FOREIGN_KEYS = sa.text(f"""
SELECT c.conrelid, c.conname, {_attnames("c.conkey", "c.conrelid")} AS columns,
       rn.nspname AS ref_schema, rc.relname AS ref_name,
       {_attnames("c.confkey", "c.confrelid")} AS ref_columns
FROM pg_constraint c
JOIN pg_class rc ON rc.oid = c.confrelid
JOIN pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_constraint parent ON parent.oid = c.conparentid
WHERE c.conrelid = ANY (CAST(:oids AS oid[])) AND c.contype = 'f'
  AND coalesce(parent.conrelid <> c.conrelid, true)
""")

# CHECK constraints with the columns they read (conkey). A partition inherits its parent's; lint reads the
# parent's, the table rules are written for. Domain CHECKs are not here (they belong to the type).
# A table's CHECKs, and those of the domains its columns are declared with (a domain's CHECK reads VALUE,
# here replaced by the column's quoted name, so lint reads it like the column's own; named after the domain)
CHECKS = sa.text(f"""
SELECT c.conrelid, c.conname, pg_get_constraintdef(c.oid) AS definition,
       {_attnames("c.conkey", "c.conrelid")} AS columns
FROM pg_constraint c
WHERE c.conrelid = ANY (CAST(:oids AS oid[])) AND c.contype = 'c'
UNION ALL
SELECT a.attrelid, c.conname || ' of domain ' || format_type(a.atttypid, NULL),
       regexp_replace(pg_get_constraintdef(c.oid), '\\mVALUE\\M', quote_ident(a.attname), 'g'),
       ARRAY[a.attname::text]
FROM pg_attribute a
JOIN pg_constraint c ON c.contypid = a.atttypid AND c.contype = 'c'
WHERE a.attrelid = ANY (CAST(:oids AS oid[])) AND a.attnum > 0 AND NOT a.attisdropped
""")

# The columns a partitioned table's key reads: plain key columns (partattrs); an expression's (attnum 0)
# are found in pg_depend, where PostgreSQL makes each such column internally dependent on its table.
PARTITION_KEYS = sa.text(f"""
SELECT pt.partrelid,
       {_attnames("pt.partattrs::int2[]", "pt.partrelid")} || ARRAY(
           SELECT a.attname::text FROM pg_depend d
           JOIN pg_attribute a ON a.attrelid = d.objid AND a.attnum = d.objsubid
           WHERE pt.partexprs IS NOT NULL AND d.classid = 'pg_class'::regclass AND d.objid = pt.partrelid
             AND d.objsubid > 0 AND d.refclassid = 'pg_class'::regclass AND d.refobjid = pt.partrelid
             AND d.refobjsubid = 0 AND d.deptype = 'i'
           ORDER BY a.attnum) AS columns
FROM pg_partitioned_table pt
WHERE pt.partrelid = ANY (CAST(:oids AS oid[]))
""")

# Internal triggers implement foreign keys; user triggers (including clones on partitions) are what a scrub
# must know about, since they would fire on its UPDATEs: their kind, state and function (triggers.py reads
# what a PL/pgSQL function sets). tgargs is a bytea of NUL-terminated strings.
TRIGGERS = sa.text("""
SELECT t.tgrelid, t.tgname, t.tgtype::int AS tgtype, t.tgenabled::text AS tgenabled,
       pn.nspname AS function_schema, p.proname AS function_name, l.lanname AS language,
       CASE WHEN l.lanname = 'plpgsql' THEN p.prosrc END AS source, t.tgargs AS arguments
FROM pg_trigger t
JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
WHERE t.tgrelid = ANY (CAST(:oids AS oid[])) AND NOT t.tgisinternal
""")

# owned_by: serial and OWNED BY ('a') or identity ('i') dependencies on a column. used_by: every column
# DEFAULT whose expression depends on the sequence (nextval('s'::regclass) records that dependency), which
# also finds sequences shared by several tables without being owned by any.
SEQUENCES = sa.text(f"""
SELECT n.nspname AS schema, c.relname AS name, format_type(s.seqtypid, NULL) AS data_type,
       o.deptype AS owner_deptype, o.owner_schema, o.owner_table, o.owner_column,
       ARRAY(
           SELECT ARRAY[un.nspname::text, uc.relname::text, ua.attname::text]
           FROM pg_depend d
           JOIN pg_attrdef ad ON ad.oid = d.objid
           JOIN pg_class uc ON uc.oid = ad.adrelid
           JOIN pg_namespace un ON un.oid = uc.relnamespace
           JOIN pg_attribute ua ON ua.attrelid = ad.adrelid AND ua.attnum = ad.adnum
           WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
             AND d.refobjid = c.oid AND {_user_namespace("un")}
       ) AS used_by
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT d.deptype, tn.nspname AS owner_schema, tc.relname AS owner_table, ta.attname AS owner_column
    FROM pg_depend d
    JOIN pg_class tc ON tc.oid = d.refobjid
    JOIN pg_namespace tn ON tn.oid = tc.relnamespace
    JOIN pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
      AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
    LIMIT 1
) o ON true
WHERE {_user_namespace()} AND {_NOT_EXTENSION_MEMBER}
""")

_TABLE_KINDS = {"r": "table", "p": "partitioned"}
_VIEW_KINDS = {"v": False, "m": True}


def introspect(connection: sa.Connection, database_name: str) -> Schema:
    """The structure of the database `connection` is connected to, as a Schema named `database_name`."""
    session = connection.execute(SESSION).mappings().one()
    with _catalog_search_path(connection, session["search_path"]):
        relations = connection.execute(RELATIONS).mappings().all()
        tables = [r for r in relations if r["relkind"] in _TABLE_KINDS]
        params = {"oids": [r["oid"] for r in tables]}
        columns = _by_relation(connection.execute(COLUMNS, params).mappings())
        keys = _by_relation(connection.execute(KEYS, params).mappings(), "indrelid")
        foreign_keys = _by_relation(connection.execute(FOREIGN_KEYS, params).mappings(), "conrelid")
        triggers = _by_relation(connection.execute(TRIGGERS, params).mappings(), "tgrelid")
        checks = _by_relation(connection.execute(CHECKS, params).mappings(), "conrelid")
        partition_keys = {
            r["partrelid"]: r["columns"] for r in connection.execute(PARTITION_KEYS, params).mappings()
        }
        sequences = connection.execute(SEQUENCES).mappings().all()

    return Schema(
        database=database_name,
        engine="postgresql",
        server_version=session["server_version"],
        tables=_sorted(
            _with_constraints(
                _table(r, columns[r["oid"]], keys[r["oid"]], foreign_keys[r["oid"]], triggers[r["oid"]]),
                r,
                checks[r["oid"]],
                keys[r["oid"]],
                partition_keys.get(r["oid"], ()),
            )
            for r in tables
        ),
        sequences=_sorted(_sequence(s) for s in sequences),
        views=_sorted(
            View(schema=r["schema"], name=r["name"], materialized=_VIEW_KINDS[r["relkind"]])
            for r in relations
            if r["relkind"] in _VIEW_KINDS
        ),
    )


@contextlib.contextmanager
def _catalog_search_path(connection: sa.Connection, previous: str) -> Iterator[None]:
    """Run the block with search_path = pg_catalog, then put the caller's search_path back.

    A session-level setting, so it works in autocommit too. When the block fails inside a transaction, the
    restore fails as well (the transaction is aborted); the caller's rollback then undoes both settings, so
    that second failure is not the one reported.
    """
    connection.execute(SET_SEARCH_PATH, {"path": "pg_catalog"})
    try:
        yield
    except BaseException:
        with contextlib.suppress(sa.exc.DBAPIError):
            connection.execute(SET_SEARCH_PATH, {"path": previous})
        raise
    connection.execute(SET_SEARCH_PATH, {"path": previous})


def _sorted(items: Iterable[Any]) -> tuple[Any, ...]:
    """Objects sorted by qualified name: the JSON must not change unless the schema does."""
    return tuple(sorted(items, key=lambda item: item.qualified))


def _by_relation(rows: Iterable[Mapping[str, Any]], key: str = "attrelid") -> defaultdict[int, list]:
    grouped: defaultdict[int, list] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return grouped


def _table(
    relation: Mapping[str, Any],
    columns: list[Mapping[str, Any]],
    keys: list[Mapping[str, Any]],
    foreign_keys: list[Mapping[str, Any]],
    triggers: list[Mapping[str, Any]],
) -> Table:
    primary_key = next((tuple(k["columns"]) for k in keys if k["indisprimary"]), ())
    unique = {tuple(k["columns"]) for k in keys if not k["indisprimary"]} - {primary_key}
    parent = relation["parent_name"]
    return Table(
        schema=relation["schema"],
        name=relation["name"],
        kind=_TABLE_KINDS[relation["relkind"]],
        partition_of=names.key(relation["parent_schema"], parent) if parent is not None else None,
        columns=tuple(_column(c) for c in columns),
        primary_key=primary_key,
        unique=tuple(sorted(unique)),
        foreign_keys=tuple(
            sorted(
                (
                    ForeignKey(
                        name=f["conname"],
                        columns=tuple(f["columns"]),
                        ref_table=names.key(f["ref_schema"], f["ref_name"]),
                        ref_columns=tuple(f["ref_columns"]),
                    )
                    for f in foreign_keys
                ),
                key=lambda f: (f.name, f.columns),
            )
        ),
        triggers=tuple(sorted((_trigger(t) for t in triggers), key=lambda t: t.name)),
        # reltuples is -1 for a table never vacuumed or analyzed (PostgreSQL 14+): unknown, so 0.
        row_estimate=max(int(relation["reltuples"]), 0),
    )


def _with_constraints(
    table: Table,
    relation: Mapping[str, Any],
    checks: list[Mapping[str, Any]],
    keys: list[Mapping[str, Any]],
    partition_key: Iterable[str],
) -> Table:
    """What the scrub's rows must satisfy beyond their types: CHECKs, named unique keys, partitions."""
    return dataclasses.replace(
        table,
        checks=tuple(
            sorted(
                (CheckConstraint(c["conname"], c["definition"], tuple(c["columns"])) for c in checks),
                key=lambda c: c.name,
            )
        ),
        unique_keys=tuple(
            sorted(
                {UniqueKey(k["name"], tuple(k["columns"]), k["indisprimary"]) for k in keys},
                key=lambda k: k.name,
            )
        ),
        partition_by=relation["partition_by"] or "",
        partition_key=tuple(dict.fromkeys(partition_key)),
        partition_bound=relation["partition_bound"] or "",
    )


def _trigger(row: Mapping[str, Any]) -> Trigger:
    arguments = [a.decode("utf-8", "replace") for a in bytes(row["arguments"] or b"").split(b"\0")[:-1]]
    derives, writes = triggers.analyse(
        row["language"], row["function_schema"], row["function_name"], row["source"], arguments
    )
    return Trigger(
        name=row["tgname"],
        function=names.key(row["function_schema"], row["function_name"]),
        language=row["language"],
        row=bool(row["tgtype"] & triggers.ROW),
        timing=triggers.timing(row["tgtype"]),
        events=triggers.events(row["tgtype"]),
        enabled=triggers.ENABLED.get(row["tgenabled"], "origin"),
        derives=derives,
        writes_elsewhere=writes,
    )


def _column(row: Mapping[str, Any]) -> Column:
    base_kind = types.kind_of(row["kind_schema"], row["kind_name"], row["kind_typtype"])
    is_array = row["element_type"] is not None
    return Column(
        name=row["attname"],
        data_type=row["data_type"],
        kind=Kind.ARRAY if is_array else base_kind,
        nullable=not (row["attnotnull"] or row["domain_notnull"]),
        default=row["default_expr"],
        # 's' stored, 'v' virtual (PostgreSQL 18+): either way the engine computes it; it cannot be written.
        generated=row["attgenerated"] in ("s", "v"),
        identity=row["attidentity"] in ("a", "d"),
        element_kind=base_kind if is_array else None,
        element_type=row["element_type"],
        enum_labels=tuple(row["enum_labels"]) if base_kind is Kind.ENUM else (),
        domain=names.key(row["domain_schema"], row["domain_name"])
        if row["domain_name"] is not None
        else None,
        max_length=types.max_length(row["kind_schema"], row["kind_name"], row["kind_typmod"]),
    )


def _sequence(row: Mapping[str, Any]) -> Sequence:
    return Sequence(
        schema=row["schema"],
        name=row["name"],
        data_type=row["data_type"],
        owned_by=(
            names.column_key(names.key(row["owner_schema"], row["owner_table"]), row["owner_column"])
            if row["owner_table"] is not None
            else None
        ),
        # a 2-D array of (schema, table, column); empty arrays come back as []
        used_by=tuple(sorted(names.column_key(names.key(s, t), c) for s, t, c in row["used_by"] or ())),
        identity=row["owner_deptype"] == "i",
    )
