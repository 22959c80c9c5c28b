"""The gate: every expectation on the working copy, then the leak checks; a Report of names and counts."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from deid.dberrors import retell
from deid.expect.digests import new_key
from deid.expect.free_text import free_text_outcomes
from deid.expect.gx_runner import run_specs
from deid.expect.leaks import leak_outcomes
from deid.expect.pii import pii_specs
from deid.expect.report import Report
from deid.expect.settings import Settings
from deid.expect.suites import build_specs
from deid.plan import Plan
from deid.schema import Schema

# Text forms of dates and numbers follow session settings; both databases must render them alike for digests
# of the same value to match, whatever each server's defaults.
_SAME_TEXT = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 1",
)


def validate_with_expectations(
    production: sa.Engine,
    work: sa.Engine,
    plan: Plan,
    schema: Schema,
    offsets: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> Report:
    """Check the working copy against production and the rules; never raises for a failed expectation
    (see raise_on_failure). `offsets`: the rebase record (sequence -> facts, or sequence -> offset)."""
    settings = settings or Settings()
    report = Report(plan.database)
    key = new_key()  # per run, in memory only: digests of production values cannot be reversed later
    try:
        with production.connect() as p, work.connect() as w:
            for statement in _SAME_TEXT:
                p.exec_driver_sql(statement)
                w.exec_driver_sql(statement)
            started = time.perf_counter()
            specs = build_specs(p, plan, schema, offsets or {}) + pii_specs(plan, schema, settings)
            report.outcomes += run_specs(work, plan.database, specs)
            report.seconds["suite"] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            report.outcomes += leak_outcomes(p, w, plan, schema, key, settings)
            report.seconds["leaks"] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            report.outcomes += free_text_outcomes(p, w, plan, schema, key, settings)
            report.seconds["free_text"] = round(time.perf_counter() - started, 3)
    except sa.exc.DBAPIError as exc:
        # retold from SQLSTATE and names only: the statement's parameters hold the key and digests
        raise retell(exc, "validation") from None
    return report
