"""The expectation suite of a database, built from its plan (the rules) and schema, never by hand.

Per table: row count equal to production's (0 for schema_only); each scrubbed column in the shape its
transformer promises; a unique scrubbed column without duplicates; static test rows identical to production
(compared as one md5 of the rows, computed in each database). Per foreign key: no orphans. Per sequence:
the next value at or above production's high water plus the rebase offset. Production's side (counts, the
static rows' digest, sequence states) is read first; values never leave a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from deid.expect.shapes import conforms
from deid.expect.spec import Spec
from deid.expect.sql import (
    foreign_keys,
    literal,
    not_static,
    quote_ident,
    quote_table,
    regclass,
    static_condition,
)
from deid.plan import Plan, TablePlan
from deid.schema import Schema, Table


def build_specs(
    production: sa.Connection, plan: Plan, schema: Schema, offsets: Mapping[str, Any]
) -> list[Spec]:
    specs: list[Spec] = []
    for table_plan in plan.tables:
        table = schema.table(table_plan.table)
        assert table is not None  # the plan was built from this schema
        specs.append(_row_count(production, table_plan))
        if table_plan.copy != "full":
            continue
        shape = _shapes(table, table_plan)
        if shape:
            specs.append(shape)
        specs += _unique(table, table_plan)
        if table_plan.keep_rows_where:
            specs.append(_static_rows(production, table_plan))
    specs += _foreign_keys(schema)
    specs += _sequences(production, offsets)
    return specs


def _row_count(production: sa.Connection, table_plan: TablePlan) -> Spec:
    table_sql = quote_table(table_plan.table)
    expected = 0
    if table_plan.copy != "schema_only":
        expected = production.execute(sa.text(f"SELECT count(*) FROM {table_sql}")).scalar_one()
    return Spec(
        "row_count_equals_production",
        table_plan.table,
        (None,),
        f"SELECT NULL::text AS column_name, abs(n - {expected}) AS unexpected, n AS checked "
        f"FROM (SELECT count(*) AS n FROM {table_sql}) AS counted WHERE n <> {expected}",
        f"production has {expected} rows" if table_plan.copy == "full" else "schema_only: expected 0",
    )


def _shapes(table: Table, table_plan: TablePlan) -> Spec | None:
    """One scan of the table for all its scrubbed columns: a row per column with values out of shape."""
    counts, names = [], []
    for action in table_plan.rewritten:
        column = table.column(action.column)
        if column is None or column.generated:
            continue
        predicate = conforms(action, column, quote_ident(action.column))
        if predicate is None:
            continue
        alias = f"c{len(names)}"
        counts.append(f"count(*) FILTER (WHERE ({predicate}) IS NOT TRUE) AS {alias}")
        names.append((action.column, alias))
    if not names:
        return None
    values = ", ".join(f"({literal(name)}, {alias})" for name, alias in names)
    query = (
        f"SELECT v.column_name, v.unexpected, s.n AS checked FROM (SELECT count(*) AS n, {', '.join(counts)} "
        f"FROM {quote_table(table_plan.table)} {not_static(table_plan)}) AS s "
        f"CROSS JOIN LATERAL (VALUES {values}) AS v(column_name, unexpected) WHERE v.unexpected > 0"
    )
    return Spec(
        "values_match_transformer_shape",
        table_plan.table,
        tuple(name for name, _ in names),
        query,
        "static test rows excluded" if table_plan.keep_rows_where else "",
    )


def _unique(table: Table, table_plan: TablePlan) -> list[Spec]:
    specs = []
    for action in table_plan.rewritten:
        if not table.is_unique(action.column) or action.transformer == "null":
            continue
        column_sql = quote_ident(action.column)
        # A valid unique index on exactly this column proves it without reading the table: the uncorrelated
        # NOT EXISTS becomes a one-time filter, so the GROUP BY runs only when no such index exists.
        proven = (
            "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = i.indkey[0] "
            f"WHERE i.indrelid = {regclass(table_plan.table)} AND i.indisunique "
            f"AND i.indisvalid AND i.indnkeyatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL "
            f"AND a.attname = {literal(action.column)}"
        )
        query = (
            f"SELECT {literal(action.column)}::text AS column_name, count(*) AS unexpected FROM ("
            f"SELECT 1 FROM {quote_table(table_plan.table)} WHERE {column_sql} IS NOT NULL "
            f"AND NOT EXISTS ({proven}) GROUP BY {column_sql} HAVING count(*) > 1) AS duplicated "
            "HAVING count(*) > 0"
        )
        specs.append(
            Spec(
                "unique_values",
                table_plan.table,
                (action.column,),
                query,
                "duplicated values counted (a valid unique index proves none)",
            )
        )
    return specs


def _static_rows_sql(table_plan: TablePlan) -> str:
    return (
        f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest "
        f"FROM {quote_table(table_plan.table)} AS t WHERE {static_condition(table_plan)}"
    )


def _static_rows(production: sa.Connection, table_plan: TablePlan) -> Spec:
    # md5 of static test rows: labelled fake by the data owners, so their digest is no secret
    count, digest = production.execute(sa.text(_static_rows_sql(table_plan))).one()
    query = (
        f"SELECT NULL::text AS column_name, greatest(abs(n - {count}), 1) AS unexpected, n AS checked "
        f"FROM ({_static_rows_sql(table_plan)}) AS s WHERE n <> {count} OR digest <> {literal(digest)}"
    )
    return Spec(
        "static_rows_identical", table_plan.table, (None,), query, f"production has {count} static test rows"
    )


def _foreign_keys(schema: Schema) -> list[Spec]:
    return [
        Spec(
            "foreign_key_without_orphans",
            table.qualified,
            (None,),
            f"SELECT NULL::text AS column_name, count(*) AS unexpected {orphans} HAVING count(*) > 0",
            f"{fk.name}: ({', '.join(fk.columns)}) -> {fk.ref_table}",
        )
        for table, fk, orphans in foreign_keys(schema)
    ]


def _sequences(production: sa.Connection, offsets: Mapping[str, Any]) -> list[Spec]:
    """`offsets`: the rebase record (sequence -> facts with high_water and offset), or sequence -> offset,
    in which case production's high water is read from its sequence."""
    specs = []
    for name, facts in sorted(offsets.items()):
        if isinstance(facts, Mapping):
            high_water, offset = int(facts["high_water"]), int(facts["offset"])
        else:
            high_water, offset = _production_high_water(production, name), int(facts)
        schema_name, _, sequence_name = name.partition(".")
        state = (
            "SELECT CASE WHEN s.is_called THEN s.last_value + p.increment_by ELSE s.last_value END AS next, "
            f"p.increment_by AS step FROM {quote_table(name)} s, pg_sequences p "
            f"WHERE p.schemaname = {literal(schema_name)} AND p.sequencename = {literal(sequence_name)}"
        )
        query = (
            f"SELECT NULL::text AS column_name, 1 AS unexpected FROM ({state}) AS q "
            f"WHERE (q.step > 0 AND q.next < {high_water + offset}) "
            f"OR (q.step < 0 AND q.next > {high_water - offset})"
        )
        specs.append(
            Spec(
                "sequence_above_production",
                name,
                (None,),
                query,
                f"production high water {high_water}, offset {offset}",
            )
        )
    return specs


def _production_high_water(production: sa.Connection, name: str) -> int:
    last, called, step = production.execute(
        sa.text(
            f"SELECT s.last_value, s.is_called, p.increment_by FROM {quote_table(name)} s, pg_sequences p "
            "WHERE p.schemaname = :schema AND p.sequencename = :name"
        ),
        {"schema": name.partition(".")[0], "name": name.partition(".")[2]},
    ).one()
    return int(last if called else last - step)
