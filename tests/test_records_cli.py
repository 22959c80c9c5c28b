"""`deid run` saves a record of every run, published or failed; `deid history` and `deid status` read them.

The records hold deid's facts only: the tests look for production's own values and the salt in every file a
run leaves, and find none.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.records.metrics import read_metrics
from deid.records.store import read_records
from deid.run import STEPS
from tests.test_records_s3 import aws_env, bucket, endpoint, s3  # noqa: F401  (fixtures)
from tests.test_report_html import browser, open_page  # noqa: F401  (browser: the fixture)
from tests.test_run_pipeline import ROOT, SALT, pipeline  # noqa: F401  (the fixture)

# records, reports and metrics do not depend on PostgreSQL's version: the first server only
pytestmark = pytest.mark.one_server


@pytest.fixture
def records(tmp_path, monkeypatch) -> Path:
    """This test's own records dir (requested before `pipeline`, whose CLI inherits the environment)."""
    folder = tmp_path / "records"
    monkeypatch.setenv("DEID_RECORDS_DIR", str(folder))
    return folder


def production_values(url: str) -> list[str]:
    """Identifiers of a few production learners: none may appear in anything a run saves."""
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            sa.text("SELECT email, ssn, last_name, phone FROM learners WHERE NOT is_test_account LIMIT 20")
        ).all()
    engine.dispose()
    return [value for row in rows for value in row if value and len(value) >= 6]


def saved_text(record: dict) -> str:
    files = record["files"]
    return Path(files["record"]).read_text() + Path(files["report"]).read_text()


def test_a_published_run_saves_its_record_report_and_metrics(records, pipeline, postgres):
    result = pipeline["run"]("run", "learners", "--date", "2026-11-27")
    assert result.returncode == 0, result.stderr
    (record,) = read_records(records, "learners")
    assert f"record: {record['files']['record']}" in result.stdout

    assert (record["outcome"], record["via"], record["logical_date"]) == ("published", "cli", "2026-11-27")
    assert record["published"] == pipeline["staging"] and record["failed_step"] is None
    rules = (ROOT / "rules" / "learners.yaml").read_bytes()
    assert record["rules"]["sha256"] == hashlib.sha256(rules).hexdigest()
    assert record["rules"]["file"] == "rules/learners.yaml" and len(record["rules"]["git_commit"]) == 40
    assert len(record["schema_hash"]) == 64 and record["clone_method"] == "template"
    assert list(record["steps"]) == list(STEPS)  # in the order they ran
    starts = [step["start"] for step in record["steps"].values()]
    assert starts == sorted(starts) and record["seconds"] >= sum(
        s["seconds"] for s in record["steps"].values()
    )
    assert record["migrations"] == ["V1__flags.sql"] and record["offsets"]
    assert record["expectations"]["ok"] and record["tables"]["public.learners"]["action"] == "rewritten"

    engine = sa.create_engine(postgres.url(pipeline["prod"]))
    with engine.connect() as c:
        production_rows = c.execute(sa.text("SELECT count(*) FROM learners")).scalar()
    engine.dispose()
    assert record["row_counts"]["public.learners"] == {"rows": production_rows, "expected": production_rows}

    text = saved_text(record)
    assert SALT not in text and postgres.url(pipeline["prod"]) not in text
    leaked = [value for value in production_values(postgres.url(pipeline["prod"])) if value in text]
    assert leaked == []

    metrics = read_metrics(records / "metrics").to_pylist()
    assert {m["table"]: m["rows"] for m in metrics} == {
        table: counts["rows"] for table, counts in record["row_counts"].items()
    }
    assert {m["outcome"] for m in metrics} == {"published"}

    history = pipeline["run"]("history", "learners").stdout
    assert "2026-11-27  published " + pipeline["staging"] in history
    assert f"report: {record['files']['report']}" in history
    status = pipeline["run"]("status", "learners").stdout
    checks = len(record["checks"]) + len(record["expectations"]["expectations"])
    assert (
        f"{checks} of {checks} checks passed" in status and f"{checks} of {checks} checks passed" in history
    )


@pytest.mark.one_server  # the browser reads the HTML file
def test_a_real_runs_report_shows_its_tables_and_verdict_in_chromium(records, browser, pipeline):
    """The report of an actual run, opened from its file as a person would: verdict, every table, the
    validation summary; and nothing fetched from anywhere."""
    assert pipeline["run"]("run", "learners", "--date", "2026-11-27").returncode == 0
    (record,) = read_records(records, "learners")
    page, outside = open_page(browser, Path(record["files"]["report"]))
    try:
        verdict = page.locator("#verdict")
        assert verdict.is_visible() and f"Published {pipeline['staging']}" in verdict.inner_text()
        for table in record["row_counts"]:
            assert page.locator(f'tr.table-row[data-table="{table}"]').is_visible(), table
        checks = len(record["checks"]) + len(record["expectations"]["expectations"])
        assert page.locator("#validation-summary").inner_text() == f"{checks} of {checks} checks passed"
        assert page.locator("#timeline .step").count() == len(record["steps"])
        assert outside == []
    finally:
        page.close()


def test_a_failed_run_is_recorded_with_its_step_and_reason(records, pipeline, postgres):
    engine = sa.create_engine(postgres.url(pipeline["prod"]))
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE learners ADD COLUMN nickname text")
    engine.dispose()
    result = pipeline["run"]("run", "learners", "--date", "2026-11-28")
    assert result.returncode == 1 and "public.learners.nickname" in result.stderr

    (record,) = read_records(records, "learners")
    # the snapshot checks the rules against the copy it made, so the run stops there, before any scrub
    assert (record["outcome"], record["failed_step"]) == ("failed", "snapshot")
    assert "public.learners.nickname" in record["error"] and "published" not in record
    assert list(record["steps"]) == []  # the steps that finished
    assert "Failed at snapshot" in Path(record["files"]["report"]).read_text()
    assert SALT not in saved_text(record)

    history = pipeline["run"]("history", "learners").stdout
    assert "2026-11-28  FAILED at snapshot" in history and "public.learners.nickname" in history


def test_validation_settings_come_from_deid_yaml(records, pipeline):
    config = pipeline["config"]
    config.write_text(config.read_text() + "    validation: {sample_rows: 7, search_production: false}\n")
    assert pipeline["run"]("run", "learners", "--date", "2026-11-27").returncode == 0
    (record,) = read_records(records, "learners")
    outcomes = record["expectations"]["expectations"]
    # sampled: columns the stream did not count (learners.profile, json, is computed by its SQL form)
    same_row = [o for o in outcomes if o["expectation"] == "value_differs_from_production"]
    sampled = [o for o in same_row if "sampled" in o["detail"]]
    assert sampled and max(o["checked"] for o in sampled) <= 7
    assert all("every row" in o["detail"] for o in same_row if o not in sampled)
    # no scan of production; the stream's lookups, made in the copy as rows passed, stay
    found = [o for o in outcomes if o["expectation"] == "value_not_found_in_production"]
    assert found and all("every scrubbed value" in o["detail"] for o in found)


def test_history_of_an_unknown_database_names_the_configured_ones(records, pipeline):
    result = pipeline["run"]("history", "learnrs")
    assert result.returncode == 3 and "Did you mean 'learners'?" in result.stderr
    assert pipeline["run"]("history", "learners").stdout.startswith("no runs of learners")
    assert json.loads(pipeline["run"]("history", "learners", "--json").stdout) == []


@pytest.mark.one_server  # the upload reads files, not the database
def test_records_go_to_s3_and_a_failed_upload_does_not_fail_the_run(
    records,
    aws_env,
    s3,
    bucket,
    endpoint,
    pipeline,  # after aws_env: the CLI's environment is taken when the pipeline is set up)
):
    config, original = pipeline["config"], pipeline["config"].read_text()

    def run_with_bucket(name: str, day: str):
        config.write_text(
            original + f"records:\n  s3: {{bucket: {name}, prefix: nightly, endpoint_url: '{endpoint}', "
            "region: us-east-1}\n"
        )
        return pipeline["run"]("run", "learners", "--date", day)

    good = run_with_bucket(bucket, "2026-11-27")
    assert good.returncode == 0, good.stderr
    (record,) = read_records(records, "learners")
    assert record["upload"]["ok"] and "warning" not in good.stdout
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    # the record, its report, its metrics and its validation results in GX's format
    assert keys == set(record["upload"]["keys"]) and len(keys) == 4
    assert {k.rsplit(".", 1)[-1] for k in keys} == {"json", "html", "parquet"}
    assert sum(k.endswith(".gx.json") for k in keys) == 1
    assert all(k.startswith("nightly/") for k in keys)

    bad = run_with_bucket(bucket + "-missing", "2026-11-28")
    assert bad.returncode == 0, bad.stderr  # published all the same
    assert f"warning: upload to s3://{bucket}-missing/nightly failed: NoSuchBucket" in bad.stdout
    latest = read_records(records, "learners")[0]
    assert latest["outcome"] == "published" and latest["upload"]["ok"] is False
    assert "upload FAILED" in pipeline["run"]("history", "learners").stdout
