"""Where run records live, and saving one: the JSON record, its HTML report and its Parquet metrics.

Every run keeps its own files, named by logical date and start time, so a rerun of a date or a failed run
followed by a good one are both in the history:

    <records dir>/<database>/<logical date>__<started>.json      the record (deid.records.record)
    <records dir>/<database>/<logical date>__<started>.html      its report (deid.records.report)
    <records dir>/<database>/<logical date>__<started>.gx.json   its validation results in GX's format
                                                                 (`deid report --data-docs` reads them)
    <records dir>/metrics/database=<database>/<logical date>__<started>.parquet   per-table metrics

Files are 0600 and the folders deid makes 0700, whatever the umask (deid.records.files). Runs older than
records.keep_days are deleted after each save (deid.records.retention).

The metrics folder is one Parquet dataset, partitioned the Hive way: each run appends a file, and
`pyarrow.dataset.dataset(<records dir>/metrics, partitioning="hive")` (or DuckDB, Athena, Spark) queries the
whole history. With `records.s3` configured, the same files are uploaded under the same relative paths.

Saving never fails a run: the copy is already published (or the run has already failed for its own
reason), so a file that cannot be written or uploaded is reported in the record and by the caller, and the
run's outcome stands.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deid.records.config import RecordsConfig
from deid.records.files import write_private

log = logging.getLogger("deid.records")
METRICS = "metrics"
# the record's key for the validate step's results in GX's own format, written to <run>.gx.json by save_run
GX_RESULTS = "gx_validation"


def base_name(record: Mapping[str, Any]) -> str:
    """<logical date>__<start time as digits>: sorts by date, then by run."""
    started = "".join(ch for ch in str(record.get("started_at", "")) if ch.isdigit())
    return f"{record['logical_date']}__{started or 'unknown'}"


def relative_paths(record: Mapping[str, Any]) -> dict[str, str]:
    """The files of one run, relative to the records dir (also their S3 keys under the prefix)."""
    name, database = base_name(record), record["database"]
    return {
        "record": f"{database}/{name}.json",
        "report": f"{database}/{name}.html",
        "metrics": f"{METRICS}/database={database}/{name}.parquet",
    }


def save_run(record: dict[str, Any], records: RecordsConfig, directory: Path) -> list[str]:
    """Write the record, its report and its metrics under `directory`, then upload them when configured.

    Returns warnings (a file not written, an upload that failed), each also logged and kept in the record
    (`files`, `upload`); an empty list when all went well.
    """
    from deid.records.metrics import parquet_bytes
    from deid.records.report import render_report

    paths = relative_paths(record)
    gx_results = record.pop(GX_RESULTS, None)  # beside the record, not in it
    if gx_results:
        paths["gx"] = paths["record"].removesuffix(".json") + ".gx.json"
    record["files"] = {kind: str(directory / path) for kind, path in paths.items()}
    warnings = []
    writers = {
        "report": lambda: write_private(directory, paths["report"], render_report(record).encode()),
        "metrics": lambda: write_private(directory, paths["metrics"], parquet_bytes(record)),
    }
    if gx_results:
        writers["gx"] = lambda: write_private(directory, paths["gx"], json.dumps(gx_results).encode())
    written = {}
    for kind, write in writers.items():
        try:
            write()
            written[kind] = paths[kind]
        except Exception as error:  # a report or metrics file is worth a warning, never the run
            warnings.append(f"could not write the run's {kind} {directory / paths[kind]}: {_reason(error)}")
    if records.s3 is not None:
        from deid.records.upload import upload

        # the record first in the list, though written last: it is what a reader of the bucket looks for
        _write_record(record, directory, paths["record"], warnings)
        record["upload"] = upload({"record": paths["record"], **written}, directory, records.s3)
        if not record["upload"]["ok"]:
            warnings.append(f"upload to {records.s3.where()} failed: {record['upload']['error']}")
        if "report" in written:  # the local report shows how the upload went (the uploaded one cannot)
            writers["report"]()
    _write_record(record, directory, paths["record"], warnings)
    _prune(record, records, directory, warnings)
    warnings = list(dict.fromkeys(warnings))  # the record is written twice with S3: one warning is enough
    for warning in warnings:
        log.warning(warning)
    return warnings


def read_records(directory: Path, database: str) -> list[dict[str, Any]]:
    """Every record of `database`, the most recently started first. Files that are not a run record as
    RunRecord describes it (unreadable, edited by hand, another tool's) are skipped with a warning naming the
    file and the first field that does not fit, never its value."""
    from pydantic import ValidationError

    from deid.records.record import RunRecord

    found = []
    for path in (directory / database).glob("*.json"):
        if path.name.endswith(".gx.json"):  # a run's GX results, beside its record
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("skipping %s: not a readable run record", path)
            continue
        if not isinstance(record, dict) or record.get("database") != database:
            continue
        try:
            RunRecord.model_validate(record)
        except ValidationError as error:
            where = ".".join(str(part) for part in error.errors()[0]["loc"]) or "(the record)"
            log.warning(
                "skipping %s: not a run record (%s: %s); its schema is rules/schemas/record.schema.json",
                path, where, error.errors()[0]["type"],
            )  # fmt: skip
            continue
        found.append(record)
    return sorted(found, key=lambda r: str(r.get("started_at", "")), reverse=True)


def record_for_copy(
    records: list[dict[str, Any]], run_id: str | None, logical_date: str | None
) -> dict[str, Any] | None:
    """Of `records` (read_records' order), the one of the run that published a copy: the run noted on the copy
    (an Airflow run retried after a failure has both records: the published one wins), else, for a copy
    published before copies named their run, the newest run that published its logical date."""
    if run_id:
        same_run = [r for r in records if r.get("run_id") == run_id]
        return next((r for r in same_run if r.get("outcome") == "published"), next(iter(same_run), None))
    published = (r for r in records if r.get("outcome") == "published")
    return next((r for r in published if r.get("logical_date") == logical_date), None)


def _write_record(record: Mapping[str, Any], directory: Path, relative: str, warnings: list[str]) -> None:
    try:
        # not sort_keys: steps are in the order they ran
        write_private(directory, relative, (json.dumps(record, indent=2, default=str) + "\n").encode())
    except OSError as error:
        warnings.append(f"could not write the run record {directory / relative}: {_reason(error)}")


def _prune(record: Mapping[str, Any], records: RecordsConfig, directory: Path, warnings: list[str]) -> None:
    """Apply records.keep_days to this database's local records, now that this run's are written."""
    from deid.records.retention import prune

    try:
        prune(directory, record["database"], records.keep_days)
    except OSError as error:
        warnings.append(f"could not delete run records older than {records.keep_days} days: {_reason(error)}")


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return type(error).__name__
