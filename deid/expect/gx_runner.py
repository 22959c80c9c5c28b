"""Run deid's expectation specs as Great Expectations suites on the working copy, as GX checkpoints.

One ephemeral context per run (no files, analytics and progress bars off), one SQL data source on the
working copy. The checks GX has a built-in for (row counts, uniqueness, regex shapes: Spec.gx) run on a table
asset of their table (named by the engine's gx_table), one suite per table, but on a table GX cannot read
(a column type SQLAlchemy does not reflect), where a column's built-in runs its own query as a custom
expectation. Never on a query asset of the table: GX learns a query asset's columns by running its query
whole, which would bring every row of the column into this process. deid's own checks are GX custom
expectations (gx_expectations), each an UnexpectedRowsExpectation whose query names its own tables (several
span tables: foreign keys, sequences), in one suite on a query asset of a constant batch. The results come
back as Outcomes, one per column of each spec, and in GX's own format (to_json_dict() of each
ExpectationSuiteValidationResult), which the run keeps beside its record.

No result may carry a row value: built-ins report counts only (their result format excludes unexpected
values), deid's queries select counts and names only (deid.expect.spec), and an error's text (which may
quote a value) is dropped from the kept results. Should more than 200 rows come back for one custom spec,
GX keeps 200: the counts are then short, but the expectation still fails.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from deid.errors import TransientError
from deid.expect.report import Outcome
from deid.expect.spec import Spec
from deid.expect.sql import dialect_of, for_gx

# The custom expectations' batch is a constant: every query names its own tables (see sql.for_gx).
_BATCH_QUERY = "SELECT 1 AS working_copy"
# deid's queries return counts and names: GX may hand their rows back
_CUSTOM_FORMAT = {"result_format": "COMPLETE"}
# built-ins would otherwise list up to 20 unexpected values of the column: never kept, never fetched
BUILT_IN_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0, "exclude_unexpected_values": True}
QUERIES = "deid checks"  # the query asset's name


@dataclass
class SuiteRun:
    outcomes: list[Outcome] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)  # GX's own, one per suite


def run_specs(work: sa.Engine, database: str, specs: Sequence[Spec]) -> list[Outcome]:
    return run_suites(work, database, specs).outcomes


def run_suites(work: sa.Engine, database: str, specs: Sequence[Spec]) -> SuiteRun:
    if not specs:
        return SuiteRun()
    import great_expectations as gx

    from deid.expect import gx_expectations

    context = ephemeral_context(gx)
    dialect = dialect_of(work)
    options = dialect.gx_engine_options()  # the engine's session settings for GX's own connections
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
    suites: dict[str, Any] = {}  # asset name -> (batch definition, suite)
    # GX reads a table asset's columns from the catalog (never its rows), and fails every check of a table
    # with a column type SQLAlchemy does not reflect: there, a built-in's own query runs instead
    unread = _unreflected(work, dialect, {spec.table for spec in specs if spec.gx and spec.query})
    built_in = {i for i, spec in enumerate(specs) if spec.gx and not (spec.query and spec.table in unread)}

    def suite_of(asset: str) -> Any:
        if asset not in suites:
            if asset == QUERIES:
                made = source.add_query_asset(name=QUERIES, query=_BATCH_QUERY)
            else:
                made = _table_asset(source, asset, *dialect.gx_table(asset))
            batch = made.add_batch_definition_whole_table("whole")
            suites[asset] = (batch, context.suites.add(gx.ExpectationSuite(name=f"deid.{database}.{asset}")))
        return suites[asset][1]

    for index, spec in enumerate(specs):
        meta = {"spec": index, "deid": spec.expectation, "detail": spec.detail}
        if index in built_in:
            expectation = gx_expectations.built_in(spec.gx)(**spec.gx_kwargs, meta=meta)
            suite_of(spec.table).add_expectation(expectation)
        else:
            expectation = gx_expectations.custom(spec.expectation)(
                unexpected_rows_query=for_gx(spec.query),
                description=f"{spec.expectation} {spec.table}",
                meta=meta,
            )
            suite_of(QUERIES).add_expectation(expectation)
    # two checkpoints, for the run's result format (which overrides the expectations' own): the built-ins'
    # leaves values out, deid's custom queries' keeps their rows (counts and names)
    checkpoints = []
    for kind, result_format in (("tables", BUILT_IN_FORMAT), ("checks", _CUSTOM_FORMAT)):
        definitions = [
            context.validation_definitions.add(
                gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
            )
            for asset, (batch, suite) in suites.items()
            if (asset == QUERIES) == (kind == "checks")
        ]
        if definitions:
            checkpoints.append(
                context.checkpoints.add(
                    gx.Checkpoint(
                        name=f"deid.{database}.{kind}",
                        validation_definitions=definitions,
                        result_format=result_format,
                    )
                )
            )
    with _quiet("great_expectations"):
        done = [checkpoint.run() for checkpoint in checkpoints]
    run = SuiteRun()
    seen: set[int] = set()
    for result in (r for d in done for r in d.run_results.values()):
        run.results.append(_without_errors(result.to_json_dict()))
        for item in result.results:
            index = item.expectation_config.meta["spec"]
            seen.add(index)
            run.outcomes += _outcomes(specs[index], item, index in built_in)
    # fail closed: a spec GX did not report on fails
    for index, spec in enumerate(specs):
        if index not in seen:
            run.outcomes += _not_evaluated(spec, "not reported by Great Expectations")
    return run


def ephemeral_context(gx, **settings: Any) -> Any:
    """GX's in-memory context as deid uses it: no files, no analytics, no progress bars; `settings` add to
    its DataContextConfig (Data Docs sites, for deid.expect.data_docs)."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    return gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            **settings,
        ),
    )


def _unreflected(work: sa.Engine, dialect, tables: set[str]) -> set[str]:
    """Of `tables`, those GX could not read as table assets: a column whose type SQLAlchemy reflects as
    NullType (GX fails to compile it), or a table SQLAlchemy cannot reflect at all. Read from the catalog
    as GX reads it, with SQLAlchemy's inspector."""
    unread = set()
    with work.connect() as connection, warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.exc.SAWarning)  # "did not recognize type"
        inspector = sa.inspect(connection)
        for table in sorted(tables):
            schema, name = dialect.gx_table(table)
            try:
                columns = inspector.get_columns(name, schema=schema)
            except sa.exc.SQLAlchemyError:
                unread.add(table)
                continue
            if any(isinstance(column["type"], sa.types.NullType) for column in columns):
                unread.add(table)
    return unread


def _table_asset(source, name: str, schema: str | None, table: str):
    """GX's table asset of `schema.table`. Both names go as SQLAlchemy's quoted names: GX would lowercase a
    schema given as text, and quote one given in quotes twice ("Sales Data"). GX deprecates schema_name in
    favour of one schema per data source; the suite spans schemas."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return source.add_table_asset(
            name=name,
            table_name=sa.sql.quoted_name(table, quote=True),
            schema_name=sa.sql.quoted_name(schema, quote=True) if schema is not None else None,
        )


def _without_errors(result: dict[str, Any]) -> dict[str, Any]:
    """A suite's result with the text of each error replaced by the fact: GX keeps the database's message
    and the statement, either of which may quote a value."""
    for item in result.get("results", []):
        info = item.get("exception_info") or {}
        raised = _raised(info)
        item["exception_info"] = {
            "raised_exception": raised,
            "exception_message": "could not be evaluated (the error's text is not kept)" if raised else None,
            "exception_traceback": None,
        }
    return result


def _raised(info) -> bool:
    """GX reports a failed metric either flat or per metric, nested one level down."""
    if not isinstance(info, dict):
        return bool(info)
    if info.get("raised_exception"):
        return True
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _not_evaluated(spec: Spec, why: str) -> list[Outcome]:
    return [
        Outcome(spec.expectation, spec.table, column, False, None, None, 0, why) for column in spec.columns
    ]


def _outcomes(spec: Spec, item, built_in: bool) -> list[Outcome]:
    # fail closed: an expectation GX could not evaluate, or that failed without saying where, fails
    if _raised(item.exception_info) or item.result is None:
        # the exception's text may quote a value (an invalid cast prints it): only the fact is reported
        return _not_evaluated(spec, "could not be evaluated")
    if built_in:
        return _built_in(spec, item)
    if "details" not in item.result:
        return _not_evaluated(spec, "could not be evaluated")
    rows = item.result["details"].get("unexpected_rows") or []
    if not item.success and not rows:
        return _not_evaluated(spec, "failed without a count")
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


def _built_in(spec: Spec, item) -> list[Outcome]:
    """A built-in's counts: a table's rows (observed_value), or a column's rows that broke it of those read
    (unexpected_count of element_count)."""
    result = item.result
    (column,) = spec.columns
    if "observed_value" in result:  # ExpectTableRowCountToEqual
        observed, expected = result["observed_value"], spec.gx_kwargs["value"]
        if not isinstance(observed, int):
            return _not_evaluated(spec, "could not be evaluated")
        unexpected = abs(observed - expected)
        return [Outcome(spec.expectation, spec.table, column, bool(item.success) and not unexpected,
                        unexpected, observed, 0, spec.detail)]  # fmt: skip
    unexpected, checked = _count(result.get("unexpected_count")), _count(result.get("element_count"))
    if unexpected is None:
        return _not_evaluated(spec, "could not be evaluated")
    ok = bool(item.success) and unexpected == 0
    return [Outcome(spec.expectation, spec.table, column, ok, unexpected, checked, 0, spec.detail)]


def _count(value) -> int | None:
    """A count GX reported: an engine's SUM may come back as a DECIMAL, which GX hands on as a float (0.0)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        return None
    return int(value)


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


def import_in_background() -> threading.Thread:
    """Start importing GX on a daemon thread (run_suites then finds it imported, or imports it itself if it
    failed). A run starts it once the scrub has transformed its last rows: seconds of one core spent while
    the process waits on the server's index builds, instead of at the start of validate."""

    def quietly() -> None:
        with contextlib.suppress(Exception):  # validate imports it again and reports what fails
            import great_expectations  # noqa: F401

    thread = threading.Thread(target=quietly, name="deid-import-gx", daemon=True)
    thread.start()
    return thread
