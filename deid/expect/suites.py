"""The expectation suite of a database, built from its plan (the rules) and schema, never by hand.

Per table: row count equal to production's (0 for schema_only; GX's ExpectTableRowCountToEqual); each
scrubbed column in the shape its transformer promises (GX's ExpectColumnValuesToMatchRegex where the promise
is a regex, else deid's scan); a unique scrubbed column without duplicates (GX's
ExpectColumnValuesToBeUnique); static test rows identical to production
(compared as one digest of the rows, computed in each database). Per foreign key: no orphans. Per sequence:
the next value at or above production's high water plus the rebase offset. Production's side (counts, the
static rows' digest, sequence states) is read first; values never leave a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from deid import rawsql
from deid.backends.base import ValidationDialect
from deid.expect.report import Outcome
from deid.expect.shapes import conforms, regex_shape
from deid.expect.spec import Spec
from deid.expect.sql import foreign_keys
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
    dialect: ValidationDialect | None = None,
) -> list[Spec]:
    """The suite for the copy described by `plan` and `schema` (scope.for_copy). `rows`: each table's rows
    when the copy was cloned (None: counted in production now). `compared`: the part of the plan production
    can answer for (scope.for_production; None: all of it). `shaped`: the columns (keys) whose shape the
    stream checked on every row (expect.tallied), left out of the shape scans. `validated_keys`: the foreign
    keys (table, constraint) the database validates itself (validated_key_outcomes), not scanned for
    orphans. `dialect`: the engine's SQL (None: production's engine's)."""
    from deid.expect.sql import dialect_of

    d = dialect or dialect_of(production)
    compared = compared or plan
    specs: list[Spec] = []
    for table_plan in plan.tables:
        table = schema.table(table_plan.table)
        assert table is not None  # the plan was built from this schema
        expected = _expected_rows(production, table_plan, rows, d)
        if expected is not None:
            specs.append(_row_count(table_plan, expected, d))
        if table_plan.copy != "full":
            continue
        specs += _shapes(table, table_plan, d, shaped)
        specs += _unique(table, table_plan, d)
        if table_plan.keep_rows_where:
            specs.append(_static_rows_bounded(table_plan, d))
            theirs = compared.table(table_plan.table)
            if theirs is not None and theirs.keep_rows_where:
                specs.append(_static_rows(production, table, theirs, d))
    specs += _foreign_keys(schema, d, validated_keys)
    specs += _sequences(production, offsets, d)
    return specs


def _expected_rows(
    production: sa.Connection, table_plan: TablePlan, rows: Mapping[str, int] | None, d: ValidationDialect
) -> int | None:
    """The rows the copy must hold: none for schema_only; else as many as when it was cloned (None for a
    table the migrations added: it has no such count)."""
    if table_plan.copy == "schema_only":
        return 0
    if rows is not None:
        return rows.get(table_plan.table)
    return rawsql.execute(production, d.count_rows(table_plan.table)).scalar_one()


def _row_count(table_plan: TablePlan, expected: int, d: ValidationDialect) -> Spec:
    return Spec(
        "row_count_unchanged",
        table_plan.table,
        (None,),
        "",
        f"{expected} rows when cloned" if table_plan.copy == "full" else "schema_only: expected 0",
        gx="ExpectTableRowCountToEqual",
        gx_kwargs={"value": expected},
    )


def _static_rows_bounded(table_plan: TablePlan, d: ValidationDialect) -> Spec:
    """The rows the condition keeps unscrubbed stay within the table's limit (a condition that keeps most
    rows would publish them as they are: the scrub refuses it, and validation checks again)."""
    query = d.static_rows_bounded_query(table_plan)
    return Spec(
        "static_rows_within_limit", table_plan.table, (None,), query, table_plan.keep_rows_limit.describe()
    )


def _shapes(
    table: Table, table_plan: TablePlan, d: ValidationDialect, shaped: frozenset[str] = frozenset()
) -> list[Spec]:
    """Each scrubbed column (but those in `shaped`) in its transformer's shape, static test rows left out.
    A promise that is a regex and nothing more is GX's ExpectColumnValuesToMatchRegex where GX reads the
    column as deid does (the engine says where) and no static rows are to be left out (GX cannot leave out
    rows by an SQL condition); the others share one scan of the table, a row per column out of shape."""
    specs, predicates = [], []
    detail = "static test rows excluded" if table_plan.keep_rows_where else ""
    for action in table_plan.rewritten:
        column = table.column(action.column)
        if column is None or column.generated or column_key(table_plan.table, action.column) in shaped:
            continue
        predicate = conforms(action, column, d.quote_ident(action.column), d.shapes)
        if predicate is None:
            continue
        pattern = regex_shape(action, column)
        if pattern is not None and not table_plan.keep_rows_where and d.gx_regex_as_deid(column):
            only = d.shapes_query(table_plan, [(action.column, predicate)])  # where GX cannot read the table
            kwargs = {"column": action.column, "regex": pattern}
            specs.append(
                Spec("values_match_transformer_shape", table_plan.table, (action.column,), only, detail,
                     gx="ExpectColumnValuesToMatchRegex", gx_kwargs=kwargs)
            )  # fmt: skip
        else:
            predicates.append((action.column, predicate))
    if predicates:
        query = d.shapes_query(table_plan, predicates)
        specs.append(
            Spec(
                "values_match_transformer_shape",
                table_plan.table,
                tuple(n for n, _ in predicates),
                query,
                detail,
            )
        )
    return specs


def _unique(table: Table, table_plan: TablePlan, d: ValidationDialect) -> list[Spec]:
    """GX's built-in, on the table: it reads the column even where a unique index already proves it, since
    the scrub may have set the index aside and built it again (deid's own query, for a table GX cannot read,
    skips the scan where a valid unique index on exactly this column proves it)."""
    return [
        Spec(
            "unique_values",
            table_plan.table,
            (action.column,),
            d.unique_query(table_plan.table, action.column),
            "rows whose value another row has",
            gx="ExpectColumnValuesToBeUnique",
            gx_kwargs={"column": action.column},
        )
        for action in table_plan.rewritten
        if table.is_unique(action.column) and action.transformer != "null"
    ]


def _static_rows(
    production: sa.Connection, table: Table, table_plan: TablePlan, d: ValidationDialect
) -> Spec:
    # a digest of static test rows: labelled fake by the data owners, so their digest is no secret
    count, digest = production.execute(sa.text(d.static_rows_digest_query(table, table_plan))).one()
    return Spec(
        "static_rows_identical",
        table_plan.table,
        (None,),
        d.static_rows_query(table, table_plan, count, digest),
        f"production has {count} static test rows",
    )


def _foreign_keys(
    schema: Schema, d: ValidationDialect, validated: frozenset[tuple[str, str]] = frozenset()
) -> list[Spec]:
    return [
        Spec(
            "foreign_key_without_orphans",
            table.qualified,
            (None,),
            d.orphans_query(table, fk),
            f"{fk.name}: ({', '.join(fk.columns)}) -> {fk.ref_table}",
        )
        for table, fk in foreign_keys(schema)
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


def _sequences(production: sa.Connection, offsets: Mapping[str, Any], d: ValidationDialect) -> list[Spec]:
    """`offsets`: the rebase record (sequence -> facts with high_water and offset), or sequence -> offset,
    in which case production's high water is read from its sequence."""
    specs = []
    for name, facts in sorted(offsets.items()):
        if isinstance(facts, Mapping):
            high_water, offset = int(facts["high_water"]), int(facts["offset"])
        else:
            high_water, offset = d.sequence_high_water(production, name), int(facts)
        specs.append(
            Spec(
                "sequence_above_production",
                name,
                (None,),
                d.sequence_query(production, name, high_water, offset),
                f"production high water {high_water}, offset {offset}",
            )
        )
    return specs
