"""PostgreSQL's queries of the expectation suite (deid.expect.suites) and of the quick checks
(deid.steps.validate). Suite queries return rows only where the expectation fails."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from deid import names
from deid.backends.postgresql.quoting import QUOTING
from deid.backends.postgresql.validation.names import literal, quote_ident, quote_table, regclass
from deid.expect.sql import not_static, static_condition
from deid.plan import TablePlan
from deid.schema import ForeignKey, Table

# --- the quick checks: run as they are (deid.rawsql), so names are quoted without escaping colons


def count_rows(table: str) -> str:
    return f"SELECT count(*) FROM {QUOTING.table(table)}"


def sample_digests(table: Table, columns: Sequence[str], exempt: str | None, rows: int) -> str:
    key = ", ".join(QUOTING.identifier(c) for c in table.primary_key)
    where = f"WHERE ({exempt}) IS NOT TRUE" if exempt else ""
    digests = ", ".join(f"md5({QUOTING.identifier(c)}::text)" for c in columns)
    # the same deterministic sample on both sides: the first rows by key (keys are kept, so they match)
    table_sql = QUOTING.table(table.qualified)
    return f"SELECT {key}, {digests} FROM {table_sql} {where} ORDER BY {key} LIMIT {rows}"


# --- the suite


def row_count_query(table: str, expected: int) -> str:
    return (
        f"SELECT NULL::text AS column_name, abs(n - {expected}) AS unexpected, n AS checked "
        f"FROM (SELECT count(*) AS n FROM {quote_table(table)}) AS counted WHERE n <> {expected}"
    )


def static_rows_bounded_query(table_plan: TablePlan) -> str:
    limit = table_plan.keep_rows_limit
    return (
        f"SELECT NULL::text AS column_name, kept AS unexpected, n AS checked FROM (SELECT count(*) AS n, "
        f"count(*) FILTER (WHERE ({static_condition(table_plan)}) IS TRUE) AS kept "
        f"FROM {quote_table(table_plan.table)}) AS s WHERE kept > {limit.allowed_sql('n')}"
    )


def shapes_query(table_plan: TablePlan, predicates: Sequence[tuple[str, str]]) -> str:
    counts = [
        f"count(*) FILTER (WHERE ({predicate}) IS NOT TRUE) AS c{i}"
        for i, (_, predicate) in enumerate(predicates)
    ]
    values = ", ".join(f"({literal(name)}, c{i})" for i, (name, _) in enumerate(predicates))
    return (
        f"SELECT v.column_name, v.unexpected, s.n AS checked FROM (SELECT count(*) AS n, {', '.join(counts)} "
        f"FROM {quote_table(table_plan.table)} {not_static(table_plan)}) AS s "
        f"CROSS JOIN LATERAL (VALUES {values}) AS v(column_name, unexpected) WHERE v.unexpected > 0"
    )


def unique_query(table: str, column: str) -> str:
    column_sql = quote_ident(column)
    # A valid unique index on exactly this column proves it without reading the table: the uncorrelated
    # NOT EXISTS becomes a one-time filter, so the GROUP BY runs only when no such index exists.
    proven = (
        "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = i.indkey[0] "
        f"WHERE i.indrelid = {regclass(table)} AND i.indisunique "
        f"AND i.indisvalid AND i.indnkeyatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL "
        f"AND a.attname = {literal(column)}"
    )
    return (
        # the rows whose value another row has, as GX's ExpectColumnValuesToBeUnique counts them
        f"SELECT {literal(column)}::text AS column_name, sum(n) AS unexpected FROM ("
        f"SELECT count(*) AS n FROM {quote_table(table)} WHERE {column_sql} IS NOT NULL "
        f"AND NOT EXISTS ({proven}) GROUP BY {column_sql} HAVING count(*) > 1) AS duplicated "
        "HAVING count(*) > 0"
    )


def static_rows_digest_query(table: Table, table_plan: TablePlan) -> str:
    # md5 of static test rows: labelled fake by the data owners, so their digest is no secret
    return (
        f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest "
        f"FROM {quote_table(table_plan.table)} AS t WHERE {static_condition(table_plan)}"
    )


def static_rows_query(table: Table, table_plan: TablePlan, count: int, digest: str) -> str:
    return (
        f"SELECT NULL::text AS column_name, greatest(abs(n - {count}), 1) AS unexpected, n AS checked "
        f"FROM ({static_rows_digest_query(table, table_plan)}) AS s "
        f"WHERE n <> {count} OR digest <> {literal(digest)}"
    )


def orphans_query(table: Table, key: ForeignKey) -> str:
    cols = [quote_ident(c) for c in key.columns]
    join = " AND ".join(
        f"r.{quote_ident(rc)} = c.{col}" for rc, col in zip(key.ref_columns, cols, strict=True)
    )
    present = " AND ".join(f"c.{col} IS NOT NULL" for col in cols)
    return (
        f"SELECT NULL::text AS column_name, count(*) AS unexpected FROM {quote_table(table.qualified)} c "
        f"WHERE {present} AND NOT EXISTS (SELECT 1 FROM {quote_table(key.ref_table)} r WHERE {join}) "
        "HAVING count(*) > 0"
    )


def sequence_query(connection: sa.Connection, name: str, high_water: int, offset: int) -> str:
    schema_name, sequence_name = names.table_names(name)
    state = (
        "SELECT CASE WHEN s.is_called THEN s.last_value + p.increment_by ELSE s.last_value END AS next, "
        f"p.increment_by AS step FROM {quote_table(name)} s, pg_sequences p "
        f"WHERE p.schemaname = {literal(schema_name)} AND p.sequencename = {literal(sequence_name)}"
    )
    return (
        f"SELECT NULL::text AS column_name, 1 AS unexpected FROM ({state}) AS q "
        f"WHERE (q.step > 0 AND q.next < {high_water + offset}) "
        f"OR (q.step < 0 AND q.next > {high_water - offset})"
    )


def sequence_high_water(connection: sa.Connection, name: str) -> int:
    last, called, step = connection.execute(
        sa.text(
            f"SELECT s.last_value, s.is_called, p.increment_by FROM {quote_table(name)} s, pg_sequences p "
            "WHERE p.schemaname = :schema AND p.sequencename = :name"
        ),
        dict(zip(("schema", "name"), names.table_names(name), strict=True)),
    ).one()
    return int(last if called else last - step)
