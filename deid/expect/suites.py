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

from deid import names
from deid.expect.report import Outcome
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
from deid.names import column_key
from deid.plan import Plan, TablePlan
from deid.schema import Schema, Table


def build_specs(
    production: sa.Connection,
    plan: Plan,
    schema: Schema,
    offsets: Mapping[str, Any],
    rows: Mapping[str, int] | None = None,
    compared: Plan | None = None,
    shaped: frozenset[str] = frozenset(),
    validated_keys: frozenset[tuple[str, str]] = frozenset(),
) -> list[Spec]:
    """The suite for the copy described by `plan` and `schema` (scope.for_copy). `rows`: each table's rows
    when the copy was cloned (None: counted in production now). `compared`: the part of the plan production
    can answer for (scope.for_production; None: all of it). `shaped`: the columns (keys) whose shape the
    stream checked on every row (expect.tallied), left out of the shape scans. `validated_keys`: the foreign
    keys (table, constraint) the database validates itself (validated_key_outcomes), not scanned for
    orphans."""
    compared = compared or plan
    specs: list[Spec] = []
    for table_plan in plan.tables:
        table = schema.table(table_plan.table)
        assert table is not None  # the plan was built from this schema
        expected = _expected_rows(production, table_plan, rows)
        if expected is not None:
            specs.append(_row_count(table_plan, expected))
        if table_plan.copy != "full":
            continue
        shape = _shapes(table, table_plan, shaped)
        if shape:
            specs.append(shape)
        specs += _unique(table, table_plan)
        if table_plan.keep_rows_where:
            specs.append(_static_rows_bounded(table_plan))
            theirs = compared.table(table_plan.table)
            if theirs is not None and theirs.keep_rows_where:
                specs.append(_static_rows(production, theirs))
    specs += _foreign_keys(schema, validated_keys)
    specs += _sequences(production, offsets)
    return specs


def _expected_rows(
    production: sa.Connection, table_plan: TablePlan, rows: Mapping[str, int] | None
) -> int | None:
    """The rows the copy must hold: none for schema_only; else as many as when it was cloned (None for a
    table the migrations added: it has no such count)."""
    if table_plan.copy == "schema_only":
        return 0
    if rows is not None:
        return rows.get(table_plan.table)
    table_sql = quote_table(table_plan.table)
    return production.execute(sa.text(f"SELECT count(*) FROM {table_sql}")).scalar_one()


def _row_count(table_plan: TablePlan, expected: int) -> Spec:
    table_sql = quote_table(table_plan.table)
    return Spec(
        "row_count_unchanged",
        table_plan.table,
        (None,),
        f"SELECT NULL::text AS column_name, abs(n - {expected}) AS unexpected, n AS checked "
        f"FROM (SELECT count(*) AS n FROM {table_sql}) AS counted WHERE n <> {expected}",
        f"{expected} rows when cloned" if table_plan.copy == "full" else "schema_only: expected 0",
    )


def _static_rows_bounded(table_plan: TablePlan) -> Spec:
    """The rows the condition keeps unscrubbed stay within the table's limit (a condition that keeps most
    rows would publish them as they are: the scrub refuses it, and validation checks again)."""
    limit = table_plan.keep_rows_limit
    query = (
        f"SELECT NULL::text AS column_name, kept AS unexpected, n AS checked FROM (SELECT count(*) AS n, "
        f"count(*) FILTER (WHERE ({static_condition(table_plan)}) IS TRUE) AS kept "
        f"FROM {quote_table(table_plan.table)}) AS s WHERE kept > {limit.allowed_sql('n')}"
    )
    return Spec("static_rows_within_limit", table_plan.table, (None,), query, limit.describe())


def _shapes(table: Table, table_plan: TablePlan, shaped: frozenset[str] = frozenset()) -> Spec | None:
    """One scan of the table for all its scrubbed columns (but those in `shaped`): a row per column with
    values out of shape."""
    counts, names = [], []
    for action in table_plan.rewritten:
        column = table.column(action.column)
        if column is None or column.generated or column_key(table_plan.table, action.column) in shaped:
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


def _foreign_keys(schema: Schema, validated: frozenset[tuple[str, str]] = frozenset()) -> list[Spec]:
    return [
        Spec(
            "foreign_key_without_orphans",
            table.qualified,
            (None,),
            f"SELECT NULL::text AS column_name, count(*) AS unexpected {orphans} HAVING count(*) > 0",
            f"{fk.name}: ({', '.join(fk.columns)}) -> {fk.ref_table}",
        )
        for table, fk, orphans in foreign_keys(schema)
        if (table.qualified, fk.name) not in validated
    ]


def validated_key_outcomes(keys: list[tuple[str, str]], broken: list[tuple[str, str]]) -> list[Outcome]:
    """The foreign keys the scrub's swaps added back NOT VALID, which validation has the database validate
    (VALIDATE CONSTRAINT reads every referencing row, as the orphan scan would, and leaves the key valid in
    the published copy): one outcome each, failed where orphans made the validation fail."""
    return [
        Outcome(
            "foreign_key_without_orphans",
            table,
            None,
            (table, name) not in broken,
            None if (table, name) in broken else 0,
            None,
            0,
            f"{name}: validated by the database (VALIDATE CONSTRAINT)"
            + (": it has orphaned rows" if (table, name) in broken else ""),
        )
        for table, name in keys
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
        schema_name, sequence_name = names.table_names(name)
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
        dict(zip(("schema", "name"), names.table_names(name), strict=True)),
    ).one()
    return int(last if called else last - step)
