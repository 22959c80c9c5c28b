"""A run keeps its validation in Great Expectations' own format beside its record, and `deid report
--data-docs` builds GX's Data Docs from it into the records dir: GX's built-ins and deid's custom
expectations, counts and names only (no production value in the results nor in the pages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deid.records.store import read_records
from deid.transformers.dictionaries import NAMES, entries
from tests.test_records_cli import production_values, records  # noqa: F401  (records: the fixture)
from tests.test_run_pipeline import SALT, pipeline  # noqa: F401  (the fixture)

pytestmark = pytest.mark.one_server


def test_a_runs_gx_results_are_kept_and_data_docs_built_on_request(records, pipeline, postgres):  # noqa: F811
    result = pipeline["run"]("run", "learners", "--date", "2026-11-26")
    assert result.returncode == 0, result.stderr
    (record,) = read_records(records, "learners")  # the GX file beside it is not read as a record
    assert "gx_validation" not in record
    kept = Path(record["files"]["gx"])
    assert kept.name == Path(record["files"]["record"]).name.removesuffix(".json") + ".gx.json"
    suites = json.loads(kept.read_text())
    types = {r["expectation_config"]["type"] for suite in suites for r in suite["results"]}
    assert {"expect_table_row_count_to_equal", "expect_column_values_to_be_unique"} <= types
    assert {"expect_foreign_key_without_orphans", "expect_sequence_above_production"} <= types
    assert all(suite["success"] for suite in suites)
    evaluated = sum(suite["statistics"]["evaluated_expectations"] for suite in suites)
    # a row count per table at least (the suites hold the other checks too)
    assert evaluated > len(record["row_counts"]) > 0

    docs = pipeline["run"]("report", "learners", "--data-docs")
    assert docs.returncode == 0, docs.stderr
    index = Path(docs.stdout.strip().splitlines()[-1])
    assert index == records / "learners" / "data-docs" / "index.html" and index.exists()
    pages = [p for p in index.parent.rglob("*.html") if p != index]
    assert "deid.learners" in index.read_text()
    # a page per suite: each table's built-ins, and deid's custom expectations
    assert any("deid checks" in str(p) for p in pages) and any("public.learners" in str(p) for p in pages)
    text = kept.read_text() + "".join(p.read_text() for p in pages)
    assert "expect_table_row_count_to_equal" in text or "row count" in text.lower()
    assert SALT not in text
    # the shape checks' SQL, in GX's expectation configs, lists deid's name dictionaries, whose words the
    # demo's production names share: only a value outside them would have come from a row
    dictionary = {w for name in NAMES for w in entries(name)}
    production = [v for v in production_values(postgres.url(pipeline["prod"])) if v not in dictionary]
    assert production and [v for v in production if v in text] == []


def test_data_docs_without_results_name_the_step_that_writes_them(records, pipeline):  # noqa: F811
    docs = pipeline["run"]("report", "learners", "--data-docs", "--run", "2020-01-01")
    assert docs.returncode != 0
    assert "Great Expectations results" in docs.stderr and "deid run learners" in docs.stderr
