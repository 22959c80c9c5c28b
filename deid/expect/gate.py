"""The gate: every expectation on the working copy, then the leak checks; a Report of names and counts."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from deid.backends.base import ValidationDialect
from deid.dberrors import retell
from deid.expect.digests import new_key
from deid.expect.free_text import free_text_outcomes
from deid.expect.gx_runner import run_suites
from deid.expect.leaks import leak_outcomes
from deid.expect.pii import pii_specs, waived_counts
from deid.expect.report import Outcome, Report, Waived
from deid.expect.settings import Settings
from deid.expect.sql import dialect_of
from deid.expect.suites import build_specs
from deid.expect.tallied import Tallies, shaped_columns, tallied_columns, tally_outcomes
from deid.plan import Plan
from deid.schema import Schema


def validate_with_expectations(
    production: sa.Engine,
    work: sa.Engine,
    plan: Plan,
    schema: Schema,
    offsets: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    rows: Mapping[str, int] | None = None,
    compared: Plan | None = None,
    tallies: Tallies | None = None,
    validated_keys: frozenset[tuple[str, str]] = frozenset(),
) -> Report:
    """Check the working copy against production and the rules; never raises for a failed expectation
    (see raise_on_failure). `plan` and `schema` describe the copy (scope.for_copy); `offsets`: the rebase
    record (sequence -> facts, or sequence -> offset); `rows`: the rows of each table when cloned;
    `compared`: the part of `plan` that production can answer for (scope.for_production); `tallies`: what
    the streamed scrub counted of every row (expect.tallied), which replaces the sampled comparisons;
    `validated_keys`: foreign keys the caller has the database validate instead of an orphan scan."""
    settings = settings or Settings()
    compared = compared or plan
    dialect = dialect_of(work)  # the engine's SQL; production is of the same engine
    report = Report(plan.database)
    tallied = frozenset(tallied_columns(compared, tallies))
    report.outcomes += tally_outcomes(compared, tallies)
    key = new_key()  # per run, in memory only: digests of production values cannot be reversed later
    try:
        # the leak checks beside the suite, on connections of their own: both wait on the databases (and the
        # suite first on importing GX), so on two or more cores they overlap
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deid-leak-checks") as pool:
            leaks = pool.submit(
                _leak_checks,
                production, work, plan, compared, schema, key, settings, report.seconds, dialect, tallied,
            )  # fmt: skip
            with _same_text(production, dialect) as p:
                started = time.perf_counter()
                shaped = frozenset(shaped_columns(compared, tallies))
                specs = build_specs(
                    p, plan, schema, offsets or {}, rows, compared, shaped, validated_keys, dialect
                )
                specs += pii_specs(plan, schema, settings, dialect)
                suites = run_suites(work, plan.database, specs)
                report.outcomes += suites.outcomes
                report.gx_results = suites.results  # GX's own format, kept beside the run record
                report.seconds["suite"] = round(time.perf_counter() - started, 3)
            if any(a.waivers for tp in plan.tables for a in tp.actions):
                started = time.perf_counter()
                with work.connect() as w:
                    report.waived += waived_counts(w, plan, schema, settings, dialect)
                report.seconds["waived"] = round(time.perf_counter() - started, 3)
            outcomes, waived = leaks.result()
            report.outcomes += outcomes
            report.waived += waived
    except sa.exc.DBAPIError as exc:
        # retold from SQLSTATE and names only: the statement's parameters hold the key and digests
        raise retell(exc, "validation") from None
    return report


def _leak_checks(
    production: sa.Engine,
    work: sa.Engine,
    plan: Plan,
    compared: Plan,
    schema: Schema,
    key: bytes,
    settings: Settings,
    seconds: dict[str, float],
    dialect: ValidationDialect,
    tallied: frozenset[str] = frozenset(),
) -> tuple[list[Outcome], list[Waived]]:
    with _same_text(production, dialect) as p, _same_text(work, dialect) as w:
        started = time.perf_counter()
        outcomes = leak_outcomes(p, w, compared, schema, key, settings, tallied, dialect)
        seconds["leaks"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        free_text, waived = free_text_outcomes(p, w, plan, schema, key, settings, compared, dialect)
        outcomes += free_text
        seconds["free_text"] = round(time.perf_counter() - started, 3)
    return outcomes, waived


@contextmanager
def _same_text(engine: sa.Engine, dialect: ValidationDialect) -> Iterator[sa.Connection]:
    """A session whose text forms of dates and numbers are pinned: both databases must render a value alike
    for digests of the same value to match, whatever each server's defaults."""
    with engine.connect() as connection:
        for statement in dialect.session():
            connection.exec_driver_sql(statement)
        yield connection
