"""MySQL's and MariaDB's queries of the expectation suite (deid.expect.suites) and of the quick checks
(deid.steps.validate). Suite queries return rows only where the expectation fails."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from deid.backends.mysql.quoting import quote_identifier
from deid.backends.mysql.validation.names import literal, null_text, quote_ident, quote_table, unpivot
from deid.expect.sql import not_static, static_condition
from deid.names import table_names
from deid.plan import TablePlan
from deid.schema import ForeignKey, Table

# --- the quick checks: run as they are (deid.rawsql), so names are quoted without escaping colons


def count_rows(table: str) -> str:
    return f"SELECT COUNT(*) FROM {quote_identifier(table_names(table)[1])}"


def sample_digests(table: Table, columns: Sequence[str], exempt: str | None, rows: int) -> str:
    key = ", ".join(quote_identifier(c) for c in table.primary_key)
    where = f"WHERE ({exempt}) IS NOT TRUE" if exempt else ""
    digests = ", ".join(f"MD5(CONVERT({quote_identifier(c)} USING utf8mb4))" for c in columns)
    # the same deterministic sample on both sides: the first rows by key (keys are kept, so they match)
    table_sql = quote_identifier(table.name)
    return f"SELECT {key}, {digests} FROM {table_sql} {where} ORDER BY {key} LIMIT {rows}"


# --- the suite


def _count_if(condition: str) -> str:
    return f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"


def row_count_query(table: str, expected: int) -> str:
    return (
        f"SELECT {null_text()} AS column_name, ABS(n - {expected}) AS unexpected, n AS checked "
        f"FROM (SELECT COUNT(*) AS n FROM {quote_table(table)}) AS counted WHERE n <> {expected}"
    )


def static_rows_bounded_query(table_plan: TablePlan) -> str:
    limit = table_plan.keep_rows_limit
    kept = _count_if(f"({static_condition(table_plan)}) IS TRUE")
    return (
        f"SELECT {null_text()} AS column_name, kept AS unexpected, n AS checked FROM (SELECT COUNT(*) AS n, "
        f"{kept} AS kept FROM {quote_table(table_plan.table)}) AS s WHERE kept > {limit.allowed_sql('n')}"
    )


def shapes_query(table_plan: TablePlan, predicates: Sequence[tuple[str, str]]) -> str:
    counts = [f"{_count_if(f'({p}) IS NOT TRUE')} AS c{i}" for i, (_, p) in enumerate(predicates)]
    table_sql = quote_table(table_plan.table)
    scan = f"SELECT COUNT(*) AS n, {', '.join(counts)} FROM {table_sql} {not_static(table_plan)}"
    rows = [(name, f"c{i}") for i, (name, _) in enumerate(predicates)]
    return (
        f"SELECT * FROM ({unpivot(scan, rows, ('column_name',), 'unexpected')}) AS v WHERE v.unexpected > 0"
    )


def unique_query(table: str, column: str) -> str:
    column_sql = quote_ident(column)
    # A unique index on exactly this column (no prefix of it) proves it without reading the table: the
    # uncorrelated NOT EXISTS is evaluated once, so the GROUP BY runs only when no such index exists.
    proven = (
        "SELECT 1 FROM information_schema.STATISTICS i WHERE i.TABLE_SCHEMA = DATABASE() "
        f"AND i.TABLE_NAME = {literal(table_names(table)[1])} AND i.NON_UNIQUE = 0 AND i.SEQ_IN_INDEX = 1 "
        f"AND i.COLUMN_NAME = {literal(column)} AND i.SUB_PART IS NULL AND NOT EXISTS (SELECT 1 FROM "
        "information_schema.STATISTICS o WHERE o.TABLE_SCHEMA = i.TABLE_SCHEMA "
        "AND o.TABLE_NAME = i.TABLE_NAME AND o.INDEX_NAME = i.INDEX_NAME AND o.SEQ_IN_INDEX = 2)"
    )
    return (
        # the rows whose value another row has, as GX's ExpectColumnValuesToBeUnique counts them
        f"SELECT {literal(column)} AS column_name, SUM(n) AS unexpected FROM ("
        f"SELECT COUNT(*) AS n FROM {quote_table(table)} WHERE {column_sql} IS NOT NULL "
        f"AND NOT EXISTS ({proven}) GROUP BY {column_sql} HAVING COUNT(*) > 1) AS duplicated "
        "HAVING COUNT(*) > 0"
    )


def static_rows_digest_query(table: Table, table_plan: TablePlan) -> str:
    # A row's text is the JSON array of its values; the rows' digest is the sum of their md5s (two 60-bit
    # halves, summed exactly as DECIMAL), which no row order changes. Static test rows are labelled fake by
    # the data owners, so their digest is no secret.
    row = f"MD5(JSON_ARRAY({', '.join(quote_ident(c.name) for c in table.columns)}))"
    halves = [f"COALESCE(SUM(CAST(CONV(SUBSTRING({row}, {s}, 15), 16, 10) AS UNSIGNED)), 0)" for s in (1, 16)]
    return (
        f"SELECT COUNT(*) AS n, CONCAT({halves[0]}, '-', {halves[1]}) AS digest "
        f"FROM {quote_table(table_plan.table)} WHERE {static_condition(table_plan)}"
    )


def static_rows_query(table: Table, table_plan: TablePlan, count: int, digest: str) -> str:
    return (
        f"SELECT {null_text()} AS column_name, GREATEST(ABS(n - {count}), 1) AS unexpected, n AS checked "
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
        f"SELECT {null_text()} AS column_name, COUNT(*) AS unexpected "
        f"FROM {quote_table(table.qualified)} AS c "
        f"WHERE {present} AND NOT EXISTS (SELECT 1 FROM {quote_table(key.ref_table)} AS r WHERE {join}) "
        "HAVING COUNT(*) > 0"
    )


def _counter(table: str) -> str:
    return (
        "SELECT COUNT(*) AS found, MAX(AUTO_INCREMENT) AS next FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {literal(table_names(table)[1])}"
    )


def sequence_query(connection: sa.Connection, name: str, high_water: int, offset: int) -> str:
    """`name`: a MariaDB SEQUENCE object, or the table whose AUTO_INCREMENT counter the rebase moved
    (introspection names a counter after its table). A table without a counter fails."""
    if _is_sequence(connection, name):
        # the next value the sequence hands out (its cache is not taken yet after a RESTART)
        state = (
            "SELECT next_not_cached_value AS next, increment AS step "
            f"FROM {quote_identifier(table_names(name)[1])}"
        )
        return (
            f"SELECT {null_text()} AS column_name, 1 AS unexpected FROM ({state}) AS q "
            f"WHERE (q.step >= 0 AND q.next < {high_water + offset}) "
            f"OR (q.step < 0 AND q.next > {high_water - offset})"
        )
    return (
        f"SELECT {null_text()} AS column_name, 1 AS unexpected FROM ({_counter(name)}) AS q "
        f"WHERE q.found = 0 OR q.next IS NULL OR q.next < {high_water + offset}"
    )


def _is_sequence(connection: sa.Connection, name: str) -> bool:
    kind = connection.execute(
        sa.text(
            "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = :t"
        ),
        {"t": table_names(name)[1]},
    ).scalar()
    return (kind.decode() if isinstance(kind, bytes) else kind) == "SEQUENCE"


def sequence_high_water(connection: sa.Connection, name: str) -> int:
    if _is_sequence(connection, name):
        # what production may hand out from its cache counts as used, as the rebase counts it
        following, step = connection.execute(
            sa.text(f"SELECT next_not_cached_value, increment FROM {quote_identifier(table_names(name)[1])}")
        ).one()
        return int(following) - int(step or 1)
    found, following = connection.execute(sa.text(_counter(name))).one()
    return int(following or 1) - 1  # the counter holds the next value
