"""A real run's counts, the same in every view: `deid run`'s summary, `deid history`, `deid status`, and
the HTML report in headless Chromium at a desktop's and a phone's width (no card overflows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deid.records.store import read_records
from tests.test_records_cli import records  # noqa: F401  (the fixture)
from tests.test_report_html import DESKTOP, OVERFLOWING, PHONE, browser, open_page, png_width  # noqa: F401
from tests.test_run_pipeline import pipeline  # noqa: F401  (the fixture)

# what is counted and shown does not depend on PostgreSQL's version: the first server only
pytestmark = pytest.mark.one_server


def test_every_view_of_a_real_run_shows_the_records_counts(records, browser, pipeline, tmp_path):
    run = pipeline["run"]("run", "learners", "--date", "2026-11-27")
    assert run.returncode == 0, run.stderr
    (record,) = read_records(records, "learners")

    # every check says what it looked at, passing ones too; a scan of a table looked at its rows
    suite, quick = record["expectations"]["expectations"], record["checks"]
    every = quick + suite
    assert [c for c in every if c.get("checked") is None] == []
    rows = {table: counts["rows"] for table, counts in record["row_counts"].items()}
    for c in suite:
        if c["expectation"] in ("row_count_unchanged", "unique_values", "foreign_key_without_orphans"):
            assert c["checked"] == rows[c["table"]], c
        if c["expectation"] == "sequence_above_production":
            assert c["checked"] == 1, c
    assert all(c["checked"] == rows[c["subject"]] for c in quick if c["name"] == "row_count")

    # one count of checks, in the same words, wherever the run is shown
    summary = f"{len(every)} of {len(every)} checks passed"
    assert f"validation: {summary}" in run.stdout
    assert summary in pipeline["run"]("history", "learners").stdout
    assert summary in pipeline["run"]("status", "learners").stdout
    # every table of the copy counted, the untouched ones too (the scrub reports only what it rewrote)
    actions = dict(record["plan"]) | {t: fact["action"] for t, fact in record["tables"].items()}
    untouched = sum(a == "untouched" for a in actions.values())
    assert untouched > 0 and len(actions) == len(rows)
    assert f"{untouched} untouched ({len(rows)} tables)" in run.stdout

    for width in (DESKTOP, PHONE):
        page, outside = open_page(browser, Path(record["files"]["report"]), width)
        try:
            for fold in page.locator("details summary").all():
                fold.click()
            assert page.evaluate(OVERFLOWING) == [], width
            shot = tmp_path / f"report-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert png_width(shot) == width  # nothing wider than the window
            assert page.locator("#validation-summary").inner_text() == summary
            assert page.locator("tr.check").count() == len(every)
            assert page.locator("tr.check td.counts", has_text="not counted").count() == 0
            assert f"{untouched} untouched" in page.locator("#tables-summary").inner_text()
            assert outside == []
        finally:
            page.close()
