"""deid.records.store and deid.records.metrics: run records, reports and Parquet metrics on local disk."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from deid.records.config import RecordsConfig
from deid.records.metrics import read_metrics
from deid.records.store import read_records, record_for_copy, relative_paths, save_run

STEP_ORDER = ("snapshot", "scrub", "rebase", "validate", "publish")
TABLES = {
    "public.learners": {"rows": 2000, "seconds": 0.4, "action": "rewritten", "sessions": 1},
    "public.enrollments": {"rows": 24000, "seconds": 1.9, "action": "rewritten", "sessions": 2},
    "public.payments": {"rows": 6000, "seconds": 0.8, "action": "rebuilt", "parts": 4},  # split in parts
}


def make_record(
    started_at: str = "2026-11-28T03:00:00.000Z",
    outcome: str = "published",
    failed_step: str | None = None,
    logical_date: str = "2026-11-28",
    database: str = "learners",
    tables: dict | None = None,
) -> dict:
    """A run record shaped like deid's (format 1). A failed run stops at `failed_step` and has no tables
    unless given; a published one has TABLES."""
    tables = dict(TABLES if tables is None and outcome == "published" else tables or {})
    steps, at = {}, 0.0
    for name in STEP_ORDER:
        steps[name] = {"start": round(at, 3), "seconds": 1.5}
        at += 1.5
        if name == failed_step:
            break
    stamp = "".join(ch for ch in started_at[:19] if ch.isdigit())
    return {
        "record_format": 1,
        "deid_version": "0.1.0",
        "run_id": f"cli-{stamp}",
        "via": "cli",
        "database": database,
        "logical_date": logical_date,
        "started_at": started_at,
        "seconds": round(at, 3),
        "outcome": outcome,
        "failed_step": failed_step,
        "error": f"{failed_step} of {database} failed" if failed_step else None,
        "steps": steps,
        "tables": tables,
        "row_counts": {t: {"rows": info["rows"], "expected": info["rows"]} for t, info in tables.items()},
        "expectations": {
            "ok": outcome == "published",
            "seconds": {"suite": 2.0},
            "expectations": [
                {"expectation": "row_count", "table": t, "ok": True, "unexpected": 0, "checked": i["rows"]}
                for t, i in tables.items()
            ],
        },
        "rules": {"file": f"{database}.yaml", "sha256": "9f2c" * 16, "git_commit": None, "git_dirty": None},
        "schema_hash": "ab12" * 16,
        "published": f"{database}_staging" if outcome == "published" else None,
        "kept": [f"{database}_staging__20261127"] if outcome == "published" else [],
    }


def test_save_run_writes_the_three_files_and_the_record_round_trips(tmp_path: Path):
    """Without S3, save_run writes record, report and metrics where relative_paths says; the JSON loads back
    equal to the record (with its new `files`), steps in the order they ran."""
    record = make_record()
    warnings = save_run(record, RecordsConfig(), tmp_path)

    assert warnings == []
    paths = relative_paths(record)
    assert paths == {
        "record": "learners/2026-11-28__20261128030000000.json",
        "report": "learners/2026-11-28__20261128030000000.html",
        "metrics": "metrics/database=learners/2026-11-28__20261128030000000.parquet",
    }
    for relative in paths.values():
        assert (tmp_path / relative).is_file(), relative
    assert record["files"] == {kind: str(tmp_path / relative) for kind, relative in paths.items()}
    assert "upload" not in record

    loaded = json.loads((tmp_path / paths["record"]).read_text())
    assert loaded == record
    assert list(loaded["steps"]) == list(STEP_ORDER)
    assert (tmp_path / paths["report"]).read_text().startswith("<!DOCTYPE html>")
    assert not list(tmp_path.rglob("*.partial"))  # every write was completed by its rename


def test_read_metrics_gives_one_row_per_table_and_one_for_a_run_without_tables(tmp_path: Path):
    """Two runs' metrics read as one typed table: three rows for the published run, one (table null) for
    the run that failed at validate; pyarrow.compute can filter it."""
    failed = make_record("2026-11-28T03:00:00.000Z", outcome="failed", failed_step="validate")
    published = make_record("2026-11-28T05:30:00.000Z")
    assert save_run(failed, RecordsConfig(), tmp_path) == []
    assert save_run(published, RecordsConfig(), tmp_path) == []

    metrics = read_metrics(tmp_path / "metrics")

    assert metrics.num_rows == 4
    assert metrics.column("database").to_pylist() == ["learners"] * 4
    assert metrics.schema.field("rows").type == pa.int64()
    assert metrics.schema.field("expected_rows").type == pa.int64()
    assert metrics.schema.field("logical_date").type == pa.date32()
    assert set(metrics.column("logical_date").to_pylist()) == {dt.date(2026, 11, 28)}

    by_run = {
        run: metrics.filter(pc.equal(metrics["run_id"], run))
        for run in (failed["run_id"], published["run_id"])
    }
    failed_rows = by_run[failed["run_id"]].to_pylist()
    assert len(failed_rows) == 1
    assert failed_rows[0]["table"] is None
    assert failed_rows[0]["outcome"] == "failed"
    assert failed_rows[0]["failed_step"] == "validate"
    assert failed_rows[0]["rows"] is None

    done = by_run[published["run_id"]]
    assert sorted(done["table"].to_pylist()) == sorted(TABLES)
    assert set(done["outcome"].to_pylist()) == {"published"}
    assert pc.sum(done["rows"]).as_py() == 32000
    assert pc.sum(done["expected_rows"]).as_py() == 32000
    sessions = dict(zip(done["table"].to_pylist(), done["sessions"].to_pylist(), strict=True))
    assert sessions == {"public.learners": 1, "public.enrollments": 2, "public.payments": 4}
    assert done["started_at"][0].as_py() == dt.datetime(2026, 11, 28, 5, 30, tzinfo=dt.UTC)


def test_read_records_newest_first_skipping_corrupt_and_foreign_files(tmp_path: Path):
    """read_records: most recently started first; a corrupt JSON file and a record of another database
    (even one misplaced in this database's folder) are left out without raising."""
    runs = [
        make_record("2026-11-27T03:00:00.000Z", logical_date="2026-11-27"),
        make_record("2026-11-28T05:00:00.000Z"),
        make_record("2026-11-28T03:00:00.000Z", outcome="failed", failed_step="scrub"),
    ]
    for record in runs:
        assert save_run(record, RecordsConfig(), tmp_path) == []
    other = make_record("2026-11-28T09:00:00.000Z", database="payments")
    assert save_run(other, RecordsConfig(), tmp_path) == []
    (tmp_path / "learners" / "misplaced.json").write_text(json.dumps(other))
    (tmp_path / "learners" / "2026-11-28__corrupt.json").write_text('{"database": "learners", "outc')

    found = read_records(tmp_path, "learners")

    assert [r["started_at"] for r in found] == [
        "2026-11-28T05:00:00.000Z",
        "2026-11-28T03:00:00.000Z",
        "2026-11-27T03:00:00.000Z",
    ]
    assert {r["database"] for r in found} == {"learners"}
    assert [r["started_at"] for r in read_records(tmp_path, "payments")] == ["2026-11-28T09:00:00.000Z"]
    assert read_records(tmp_path, "nothing_here") == []


def test_a_copy_finds_the_record_of_the_run_that_published_it(tmp_path: Path):
    """record_for_copy: by the run noted on the copy, preferring its published record over a failed try of
    the same run; without a noted run, the newest published run of the copy's date (failed runs and other
    dates do not count)."""
    retried = make_record("2026-11-28T09:00:00.000Z", outcome="failed", failed_step="validate")
    retried["run_id"] = "scheduled__2026-11-28"
    for record in [
        make_record("2026-11-28T03:00:00.000Z"),
        make_record("2026-11-28T05:00:00.000Z"),  # a rerun of the same date
        make_record("2026-11-28T07:00:00.000Z", outcome="failed", failed_step="validate"),
        make_record("2026-11-27T03:00:00.000Z", logical_date="2026-11-27"),
        {**make_record("2026-11-28T08:00:00.000Z"), "run_id": "scheduled__2026-11-28"},
        retried,  # started later than the published try of the same run
    ]:
        assert save_run(record, RecordsConfig(), tmp_path) == []
    records = read_records(tmp_path, "learners")

    by_run = record_for_copy(records, "scheduled__2026-11-28", "2026-11-28")
    assert (by_run["started_at"], by_run["outcome"]) == ("2026-11-28T08:00:00.000Z", "published")
    assert record_for_copy(records, "cli-20261128050000", None)["started_at"] == "2026-11-28T05:00:00.000Z"
    assert record_for_copy(records, "no-such-run", "2026-11-28") is None
    newest = record_for_copy(records, None, "2026-11-28")
    assert (newest["started_at"], newest["outcome"]) == ("2026-11-28T08:00:00.000Z", "published")
    assert record_for_copy(records, None, "2026-11-27")["started_at"] == "2026-11-27T03:00:00.000Z"
    assert record_for_copy(records, None, "2026-11-29") is None


def test_a_date_whose_runs_all_failed_has_no_record_for_a_copy(tmp_path: Path):
    save_run(make_record(outcome="failed", failed_step="snapshot"), RecordsConfig(), tmp_path)
    assert record_for_copy(read_records(tmp_path, "learners"), None, "2026-11-28") is None


def test_a_report_that_cannot_be_written_is_a_warning_and_the_record_is_still_written(tmp_path: Path):
    """The report's path is taken by a directory: save_run warns, naming the report file, and still writes
    the record and the metrics."""
    record = make_record()
    paths = relative_paths(record)
    (tmp_path / paths["report"]).mkdir(parents=True)

    warnings = save_run(record, RecordsConfig(), tmp_path)

    assert len(warnings) == 1
    assert "report" in warnings[0]
    assert str(tmp_path / paths["report"]) in warnings[0]
    assert json.loads((tmp_path / paths["record"]).read_text()) == record
    assert (tmp_path / paths["metrics"]).is_file()
    assert read_records(tmp_path, "learners")[0]["run_id"] == record["run_id"]


def test_a_leftover_partial_file_does_not_break_read_metrics(tmp_path: Path):
    """A half-written metrics file (a crash between write and rename) is hidden: read_metrics skips it."""
    record = make_record()
    assert save_run(record, RecordsConfig(), tmp_path) == []
    partition = (tmp_path / relative_paths(record)["metrics"]).parent
    (partition / ".2026-11-29__20261129030000000.parquet.partial").write_bytes(b"PAR1 not really parquet")

    metrics = read_metrics(tmp_path / "metrics")

    assert metrics.num_rows == len(TABLES)
    assert set(metrics["run_id"].to_pylist()) == {record["run_id"]}


def test_a_record_holding_the_salt_its_key_or_a_password_is_refused():
    from deid.errors import DeidError
    from deid.records.record import check_clean
    from deid.run import secrets_of
    from deid.steps.context import RunContext
    from deid.transformers.keying import prf_key

    salt = "a-salt-for-this-test"
    ctx = RunContext(
        config=None,
        database=None,
        logical_date=None,
        production_url="postgresql://deid:pw-of-prod@db/prod",
        staging_server_url="postgresql://deid@db/postgres",
        salt=salt,
    )
    check_clean({"database": "learners", "note": "nothing secret"}, secrets_of(ctx))
    for leaked in (salt, prf_key(salt).hex(), "pw-of-prod", ctx.staging_server_url):
        with pytest.raises(DeidError, match="holds a secret"):
            check_clean({"error": f"… {leaked} …"}, secrets_of(ctx))


# Records are private: they name production's tables, and a failed run's error names its servers. Files
# 0600, the folders deid makes 0700, whatever the umask of the process that writes them.


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_records_are_private_whatever_the_umask(tmp_path: Path, umask):
    root = tmp_path / "not" / "yet" / "records"  # deid makes it, and the folders above it
    record = make_record()
    assert save_run(record, RecordsConfig(), root) == []
    for relative in relative_paths(record).values():
        assert mode(root / relative) == 0o600, relative
    for folder in (tmp_path / "not", tmp_path / "not" / "yet", root, root / "learners", root / "metrics"):
        assert mode(folder) == 0o700, folder
    assert mode(root / "metrics" / "database=learners") == 0o700


def test_deid_tightens_its_own_folders_but_leaves_a_records_dir_it_did_not_make(tmp_path: Path, umask):
    """A records dir made by someone else keeps its mode (docs/records.md says so); the database and metrics
    folders are deid's, so a looser mode there (an older deid, a copy) is tightened; so are old files it
    rewrites."""
    record = make_record()
    paths = relative_paths(record)
    tmp_path.chmod(0o755)
    for folder in ("learners", "metrics", "metrics/database=learners"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder).chmod(0o755)
    (tmp_path / paths["record"]).write_text("{}")
    (tmp_path / paths["record"]).chmod(0o644)

    assert save_run(record, RecordsConfig(), tmp_path) == []

    assert mode(tmp_path) == 0o755
    for folder in ("learners", "metrics", "metrics/database=learners"):
        assert mode(tmp_path / folder) == 0o700, folder
    assert {relative: mode(tmp_path / relative) for relative in paths.values()} == dict.fromkeys(
        paths.values(), 0o600
    )


def test_a_partial_file_is_private_before_a_byte_is_written(tmp_path: Path, monkeypatch, umask):
    """The .partial file is created 0600, not made so after its data is in it: no reader can open it
    in between."""
    from deid.records import files

    seen = []
    write = os.write

    def watching_write(fd: int, data) -> int:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return write(fd, data)

    monkeypatch.setattr(files.os, "write", watching_write)
    assert save_run(make_record(), RecordsConfig(), tmp_path) == []
    assert len(seen) >= 3 and set(seen) == {0o600}
