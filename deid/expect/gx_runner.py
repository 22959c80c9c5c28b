"""Run deid's expectation specs as one Great Expectations suite on the working copy.

One ephemeral context per run (no files, analytics and progress bars off), one SQL data source on the
working copy, one suite per database made only of UnexpectedRowsExpectation (a subclass that runs each query
once). GX's column-map expectations are not used: their results carry sample values, which we must never
hold. Results come back as Outcomes, one per column of each spec. Should more than 200 rows come back for
one spec, GX keeps 200: the counts are then short, but the expectation still fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache

import sqlalchemy as sa

from deid.errors import TransientError
from deid.expect.gx_import import great_expectations
from deid.expect.report import Outcome
from deid.expect.spec import Spec
from deid.expect.sql import dialect_of, for_gx

# The batch is a constant: every query names its own tables (see sql.for_gx).
_BATCH_QUERY = "SELECT 1 AS working_copy"


@cache
def _expectation_class():
    """UnexpectedRowsExpectation reading its query once.

    GX's own computes two metrics, the rows and their count, each by running the query; a scan of a large
    table would then be paid twice. Our queries return a handful of rows at most, so the rows (which GX
    fetches up to 200 of) give the count."""
    great_expectations()
    from great_expectations.expectations import UnexpectedRowsExpectation

    class ExpectDeidQueryReturnsNoRows(UnexpectedRowsExpectation):
        metric_dependencies = ("unexpected_rows_query.table",)

        def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
            rows = metrics["unexpected_rows_query.table"]
            return {
                "success": not rows,
                "result": {"observed_value": len(rows), "details": {"unexpected_rows": rows}},
            }

    return ExpectDeidQueryReturnsNoRows


def run_specs(work: sa.Engine, database: str, specs: Sequence[Spec]) -> list[Outcome]:
    if not specs:
        return []
    gx = great_expectations()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        ),
    )
    # the engine's session settings for GX's own connections, where its queries need them
    options = dialect_of(work).gx_engine_options()
    try:
        source = context.data_sources.add_sql(
            name="working_copy",
            connection_string=work.url.render_as_string(hide_password=False),
            **({"kwargs": options} if options else {}),
        )
    except Exception as exc:  # GX's connection errors may quote the URL, password included
        raise TransientError(
            f"Great Expectations could not connect to the working copy ({type(exc).__name__})."
        ) from None
    batch = source.add_query_asset(name="working_copy", query=_BATCH_QUERY).add_batch_definition("whole")
    suite = context.suites.add(gx.ExpectationSuite(name=f"deid.{database}"))
    expectation = _expectation_class()
    for index, spec in enumerate(specs):
        suite.add_expectation(
            expectation(
                unexpected_rows_query=for_gx(spec.query),
                description=f"{spec.expectation} {spec.table}",
                meta={"spec": index},
            )
        )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"deid.{database}", data=batch, suite=suite)
    )
    with _quiet("great_expectations"):
        result = definition.run(result_format="COMPLETE")
    outcomes: list[Outcome] = []
    for item in result.results:
        spec = specs[item.expectation_config.meta["spec"]]
        outcomes += _outcomes(spec, item)
    return outcomes


def _raised(info) -> bool:
    """GX reports a failed metric either flat or per metric, nested one level down."""
    if not isinstance(info, dict):
        return bool(info)
    if info.get("raised_exception"):
        return True
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _outcomes(spec: Spec, item) -> list[Outcome]:
    # fail closed: an expectation GX could not evaluate, or that failed without saying where, fails
    if _raised(item.exception_info) or item.result is None or "details" not in item.result:
        # the exception's text may quote a value (an invalid cast prints it): only the fact is reported
        return [
            Outcome(spec.expectation, spec.table, column, False, None, None, 0, "could not be evaluated")
            for column in spec.columns
        ]
    rows = item.result["details"].get("unexpected_rows") or []
    if not item.success and not rows:
        return [
            Outcome(spec.expectation, spec.table, column, False, None, None, 0, "failed without a count")
            for column in spec.columns
        ]
    outcomes = []
    for column in spec.columns:
        mine = [r for r in rows if _get(r, "column_name") == column]
        unexpected = sum(int(_get(r, "unexpected") or 0) for r in mine)
        checked = max((int(_get(r, "checked") or 0) for r in mine), default=None)
        patterns = [r for r in mine if _get(r, "pattern")]
        detail = spec.detail
        if patterns:
            hits = ", ".join(f"{_get(r, 'pattern')}: {_get(r, 'unexpected')} rows" for r in mine)
            detail = f"{detail}; {hits}" if detail else hits
        outcomes.append(
            Outcome(spec.expectation, spec.table, column, not mine, unexpected, checked, 0, detail)
        )
    return outcomes


def _get(row, key: str):
    if isinstance(row, dict):
        return row.get(key)
    return getattr(row, key, None) if hasattr(row, key) else row._mapping.get(key)


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """GX logs failed metric computations with the database's message, which may quote a value."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
