"""Great Expectations' Data Docs of a database's validations, built on request (`deid report --data-docs`).

Each run keeps its validation results in GX's own format beside its record (`<run>.gx.json`, a list of
ExpectationSuiteValidationResult.to_json_dict(), one per suite: deid.records.store). This loads them into an
ephemeral GX context whose one Data Docs site is a folder of the records dir, `<records dir>/<database>/
data-docs/`, and has GX build it: an index of the runs, and a page per suite and run. The results hold counts
and names only (deid.expect.gx_runner), so the pages do too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from deid.errors import ConfigError

SUFFIX = ".gx.json"
SITE = "deid"


def results_path(record_path: Path) -> Path:
    """Where a run's GX results are, beside its record `<run>.json`."""
    return record_path.with_name(record_path.stem + SUFFIX)


def build(records_dir: Path, database: str, run: str | None = None) -> Path:
    """Build the Data Docs of `database`'s runs (every run with GX results, or the one `run` names: its base
    name `<logical date>__<started>`, its run id, or its logical date, the newest of that date); returns the
    site's index.html."""
    runs = _runs(records_dir / database, run)
    if not runs:
        which = f"run {run!r} of {database}" if run else f"run of {database}"
        raise ConfigError(
            f"no {which} has Great Expectations results ({'<run>' + SUFFIX}) in {records_dir / database}: "
            f"the validate step of `deid run {database}` writes them (runs of older versions have none)"
        )
    site = records_dir / database / "data-docs"
    shutil.rmtree(site, ignore_errors=True)  # built anew: a run pruned since leaves no page behind
    context = _context(site)
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from deid.expect import gx_expectations  # noqa: F401  (deid's custom expectations, for their pages)

    schema = ExpectationSuiteValidationResultSchema()
    for name, started, results in runs:
        for result in results:
            key = ValidationResultIdentifier(
                ExpectationSuiteIdentifier(result["suite_name"]),
                RunIdentifier(run_name=name, run_time=_validated(result) or started or None),
                batch_identifier=_asset(result),
            )
            context.validation_results_store.set(key, schema.load(result))
    context.build_data_docs(site_names=[SITE])
    return site / "index.html"


def _runs(folder: Path, run: str | None) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(base name, started_at, results) of each run with GX results, the newest first."""
    found = []
    for path in sorted(folder.glob("*" + SUFFIX), reverse=True):
        name = path.name[: -len(SUFFIX)]
        record_path = folder / f"{name}.json"
        try:
            results = json.loads(path.read_text())
            record = json.loads(record_path.read_text()) if record_path.exists() else {}
        except (OSError, ValueError):
            continue  # unreadable: left out, as `deid history` leaves it out
        if not isinstance(results, list) or not isinstance(record, dict):
            continue
        if run is not None and run not in (name, record.get("run_id"), record.get("logical_date")):
            continue
        found.append((name, str(record.get("started_at") or ""), results))
        if run is not None:
            break  # the newest run of that name or date
    return found


def _validated(result: dict[str, Any]) -> str | None:
    return ((result.get("meta") or {}).get("run_id") or {}).get("run_time")


def _asset(result: dict[str, Any]) -> str:
    batch = (result.get("meta") or {}).get("active_batch_definition") or {}
    return str(batch.get("data_asset_name") or "batch")


def _context(site: Path):
    import great_expectations as gx

    from deid.expect.gx_runner import ephemeral_context

    return ephemeral_context(
        gx,
        data_docs_sites={
            SITE: {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
