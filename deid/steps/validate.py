"""Validate: checks on the working copy before publish; any failure stops the run (terminal error).

Two quick checks of deid's own, which the expectation suite does not make:
- row counts equal the copy's when it was cloned (no row lost or added by the scrub; schema_only tables
  are empty), kept in the record;
- on a sample of rows matched by primary key, scrubbed values differ from production's (compared as
  digests computed in each database, so values never leave them; the engine's dialect spells the queries).
Then the Great Expectations suite generated from the rules, which covers shapes, uniqueness, static test
rows, foreign keys and sequences, and the leak checks (deid.expect). The quick checks run in a thread beside
the suite: both wait on the databases, so on two or more cores they overlap. Reports carry names and counts,
never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from deid import rawsql
from deid.backends.base import ValidationDialect
from deid.errors import TerminalError
from deid.names import column_key
from deid.plan import Plan, TablePlan
from deid.schema import Schema, Table

SAMPLE_ROWS = 1000
# Transformers whose output may equal the input by chance (a fake first name drawn from 600, a ZIP already
# generalised, a small integer under noise, a date already at the start of its month): a few equal values are
# expected. Every other transformer changes every non-NULL value by construction.
MAY_COINCIDE = {
    "fake.first_name": 0.05, "fake.last_name": 0.05, "fake.name": 0.05, "fake.company": 0.05,
    "fake.street_address": 0.05, "fake.user_name": 0.05, "fake.ipv4": 0.05, "generalize_zip": 1.0,
    "truncate_date": 1.0, "noise": 0.2, "constant": 1.0, "redact": 0.05, "json": 1.0,
}  # fmt: skip


@dataclass(frozen=True)
class Check:
    name: str
    subject: str  # table or table.column
    ok: bool
    detail: str  # counts only
    counts: tuple[int, int] | None = field(default=None, compare=False)  # row_count: (found, expected)
    checked: int | None = field(default=None, compare=False)  # rows counted, or sampled values compared

    def __str__(self) -> str:
        return f"{'ok ' if self.ok else 'FAIL'} {self.name} {self.subject}: {self.detail}"


def validate_copy(
    prod: sa.Engine,
    work: sa.Engine,
    plan: Plan,
    schema: Schema,
    rows: Mapping[str, int] | None = None,
    compared: Plan | None = None,
    tallied: frozenset[str] = frozenset(),
) -> list[Check]:
    """The quick checks of the copy described by `plan` and `schema`: row counts against `rows` (each
    table's rows when cloned; None: production's now) and sampled values against production's, for the part
    of the plan production can answer for (`compared`; default all), but for the columns in `tallied`, whose
    every row the streamed scrub compared (deid.expect.tallied)."""
    from deid.expect.sql import dialect_of

    d = dialect_of(work)
    compared = compared or plan
    checks: list[Check] = []
    with prod.connect() as p, work.connect() as w:
        for table_plan in plan.tables:
            table = schema.table(table_plan.table)
            assert table is not None
            expected = _expected(p, table_plan, rows, d)
            if expected is not None:
                checks.append(_row_count(w, table_plan, expected, d))
            theirs = compared.table(table_plan.table)
            if table_plan.copy == "full" and theirs is not None:
                checks += _changed_values(p, w, table, theirs, tallied, d)
    return checks


def raise_on_failure(checks: list[Check]) -> None:
    failed = [c for c in checks if not c.ok]
    if failed:
        lines = "\n".join(f"  {c}" for c in failed)
        raise TerminalError(
            f"validation failed: {len(failed)} of {len(checks)} checks; nothing was published.\n{lines}"
        )


def _scalar(connection: sa.Connection, sql: str):
    return rawsql.execute(connection, sql).scalar()


def _expected(
    p: sa.Connection, tp: TablePlan, rows: Mapping[str, int] | None, d: ValidationDialect
) -> int | None:
    if tp.copy == "schema_only":
        return 0
    if rows is not None:
        return rows.get(tp.table)  # None: a table the migrations added has no count from the clone
    return _scalar(p, d.count_rows(tp.table))


def _row_count(w: sa.Connection, tp: TablePlan, expected: int, d: ValidationDialect) -> Check:
    found = _scalar(w, d.count_rows(tp.table))
    return Check(
        "row_count",
        tp.table,
        found == expected,
        f"{found} rows, expected {expected}",
        (found, expected),
        checked=found,
    )


def _changed_values(
    p: sa.Connection,
    w: sa.Connection,
    table: Table,
    tp: TablePlan,
    tallied: frozenset[str],
    d: ValidationDialect,
) -> list[Check]:
    rewritten = [
        a for a in tp.rewritten if a.transformer != "null" and column_key(tp.table, a.column) not in tallied
    ]
    if not rewritten or not table.primary_key:
        return []
    # the same deterministic sample on both sides: the first rows by key (keys are kept, so they match)
    sql = d.sample_digests(table, [a.column for a in rewritten], tp.keep_rows_where, SAMPLE_ROWS)
    width = len(table.primary_key)
    before = {row[:width]: row[width:] for row in rawsql.execute(p, sql)}
    after = {row[:width]: row[width:] for row in rawsql.execute(w, sql)}
    checks = []
    for i, action in enumerate(rewritten):
        pairs = [
            (before[k][i], after[k][i]) for k in before.keys() & after.keys() if before[k][i] is not None
        ]
        equal = sum(1 for old, new in pairs if old == new)
        allowed = MAY_COINCIDE.get(action.transformer, 0.0) * len(pairs)
        checks.append(
            Check(
                "values_changed",
                column_key(tp.table, action.column),
                equal <= allowed,
                f"{equal} of {len(pairs)} sampled values equal production's (allowed {int(allowed)})",
                checked=len(pairs),
            )
        )
    return checks


def _rows_of(work: sa.Engine, outcomes, counted: Mapping[str, int]) -> dict[str, int]:
    """Rows in the copy of the tables checked that no row count covers (tables the migrations added, which
    have no count from the clone to compare with), so that their checks too say what they looked at."""
    from deid.expect.report import ONE_SEQUENCE
    from deid.expect.sql import dialect_of

    tables = {
        o.table
        for o in outcomes
        if o.checked is None and o.unexpected is not None and o.expectation not in ONE_SEQUENCE
    }
    d = dialect_of(work)
    with work.connect() as w:
        return {t: _scalar(w, d.count_rows(t)) for t in sorted(tables - set(counted))}


def validate(ctx) -> list[Check]:
    """The validate step of a run: the migrated working copy checked on its own and against production;
    raises if any check or expectation fails, naming places and counts only. Stamps the copy when all pass.

    Everything is built from the copy: the plan its scrub applied (from its schema as cloned), restricted to
    the tables and columns it has now (deid.expect.scope), its row counts when cloned, and the sequence
    offsets its rebase and migrate steps noted on it. Production is read only to compare values, for what it
    still has.
    """
    from deid.backends import backend_for
    from deid.db import connect_readonly, engine
    from deid.expect import scope
    from deid.expect.gate import validate_with_expectations
    from deid.expect.report import raise_on_failure as raise_on_failed_expectation
    from deid.expect.report import with_checked
    from deid.expect.suites import validated_key_outcomes
    from deid.expect.tallied import tallied_columns
    from deid.records.store import GX_RESULTS
    from deid.steps.ledger import applied_plan, begin, finish

    state = begin(ctx, "validate")
    applied, _, rules = applied_plan(ctx, state)
    prod, work = connect_readonly(ctx.production_url), engine(ctx.work_url)
    try:
        backend = backend_for(ctx.database.engine)
        with work.connect() as w:
            copy = backend.introspect(w, ctx.database.name)
        migrated = state.stamp("migrate")
        if migrated is None or copy.digest != migrated.schema_:
            raise TerminalError(
                f"the schema of {ctx.work_name} changed after its migrate step: run the job again"
            )
        with prod.connect() as p:
            production = backend.introspect(p, ctx.database.name)
        plan = scope.for_copy(applied, copy, rules)
        compared, not_compared = scope.for_production(plan, copy, production)
        waters = state.high_waters or {}
        offsets = {  # without a noted high water (a copy of an older deid), production's is read
            name: {"offset": offset, "high_water": waters[name]} if name in waters else offset
            for name, offset in (state.offsets or {}).items()
        }
        tallied = frozenset(tallied_columns(compared, state.tallies))
        # a key a migration dropped since is no longer there to check
        present = {(t.qualified, fk.name) for t in copy.tables for fk in t.foreign_keys}
        keys = [(table, name) for table, name in state.unchecked_keys or () if (table, name) in present]
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="deid-quick-checks") as pool:
            quick = pool.submit(validate_copy, prod, work, plan, copy, state.rows, compared, tallied)
            # the keys the scrub's swaps left unchecked: the database validates them, beside the suite
            validating = (
                pool.submit(backend.validate_foreign_keys, work, keys, ctx.database.scrub_sessions)
                if keys
                else None
            )
            # the suite generated from the rules and the leak checks (Great Expectations; deid.expect), with
            # what the streamed scrub counted of every row
            report = validate_with_expectations(
                prod, work, plan, copy, offsets, ctx.database.validation, state.rows, compared, state.tallies,
                frozenset(keys),
            )  # fmt: skip
            checks = quick.result()
            report.outcomes += validated_key_outcomes(keys, validating.result() if validating else [])
            # what each check looked at, passing ones too: rows counted in the copy, or values compared
            found = {c.subject: c.counts[0] for c in checks if c.counts}
            report.outcomes = with_checked(report.outcomes, found | _rows_of(work, report.outcomes, found))
    finally:
        prod.dispose()
        work.dispose()
    ctx.record["checks"] = [
        {"name": c.name, "subject": c.subject, "ok": c.ok, "detail": c.detail, "checked": c.checked}
        for c in checks
    ]
    # rows in the copy and when it was cloned (0 for a table emptied by its rules or a subset run)
    ctx.record["row_counts"] = {
        c.subject: {"rows": c.counts[0], "expected": c.counts[1]} for c in checks if c.counts
    }
    ctx.record["expectations"] = report.as_dict()
    ctx.record[GX_RESULTS] = report.gx_results  # GX's own format: save_run writes it beside the record
    if not_compared:
        ctx.record["not_compared_with_production"] = sorted(not_compared)
    raise_on_failure(checks)
    raise_on_failed_expectation(report)
    finish(
        ctx,
        state,
        "validate",
        rules=rules.digest,
        plan=applied.digest,
        schema=copy.digest,
        counts={"checks": len(checks), "expectations": len(report.outcomes)},
    )
    return checks
