"""deid.records.report: the HTML page of one run, checked as text and in headless Chromium."""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

import pytest

from deid.records.report import render_report

TABLES = {
    "public.learners": {"rows": 2000, "seconds": 0.41, "action": "rewritten", "sessions": 1},
    "public.enrollments": {"rows": 24000, "seconds": 1.9, "action": "rewritten", "sessions": 1},
    "public.payments": {"rows": 6000, "seconds": 0.8, "action": "rewritten", "sessions": 1},
    "public.courses": {"rows": 0, "seconds": 0.0, "action": "untouched", "sessions": 1},
    "public.audit_events": {"rows": 0, "seconds": 0.02, "action": "emptied", "sessions": 1},
}
ROW_COUNTS = {
    "public.learners": 2000,
    "public.enrollments": 24000,
    "public.payments": 6000,
    "public.courses": 40,
    "public.audit_events": 0,
}
STEPS = {"snapshot": 0.4, "scrub": 3.3, "rebase": 0.3, "migrate": 0.2, "validate": 26.1, "publish": 0.9}


def expectation(
    table: str, column: str | None = None, ok: bool = True, name: str = "row_count", **kw
) -> dict:
    fields = {"unexpected": 0 if ok else 3, "checked": 2000, "allowed": 0, "detail": ""} | kw
    return {"expectation": name, "table": table, "column": column, "ok": ok} | fields


def make_record(outcome: str = "published", failed_step: str = "validate", timed: bool = True) -> dict:
    """A run record shaped like deid's (format 1); `timed=False` gives steps without start, as Airflow's."""
    failed = outcome == "failed"
    steps, at = {}, 0.0
    for name, seconds in STEPS.items():
        if failed and name == "publish":
            break
        steps[name] = {"start": round(at, 3), "seconds": seconds} if timed else {"seconds": seconds}
        at += seconds
    exps = [expectation(t, checked=n) for t, n in ROW_COUNTS.items()]
    exps += [
        expectation("public.learners", "email", name="values_match_transformer_shape", detail="fake.email"),
        expectation("public.learners", "bio", ok=not failed, name="pii_scan_kept_text", detail="ssn"),
    ]
    return {
        "record_format": 1,
        "deid_version": "0.1.0",
        "via": "cli" if timed else "airflow",
        "run_id": "cli-20261128T120000Z",
        "database": "learners",
        "logical_date": "2026-11-28",
        "started_at": "2026-11-28T12:00:00Z",
        "finished_at": "2026-11-28T12:00:31Z",
        "seconds": 31.2,
        "outcome": outcome,
        "failed_step": failed_step if failed else None,
        "error": "validation of learners failed: 1 of 7 expectations" if failed else None,
        "rules": {"file": "learners.yaml", "sha256": "9f2c" * 16, "git_commit": "4db94cb" + "0" * 33},
        "schema_hash": "ab12" * 16,
        "clone_method": "template",
        "clone_seconds": 0.4,
        "subset": None,
        "steps": steps,
        "tables": copy.deepcopy(TABLES),
        "row_counts": {t: {"rows": n, "expected": n} for t, n in ROW_COUNTS.items()},
        "offsets": {"public.learners_id_seq": {"sequence": "public.learners_id_seq", "offset": 1234567000}},
        "migrations": ["V1__add_staging_flags"],
        "checks": [{"name": "row_count", "subject": t, "ok": True, "detail": "n rows"} for t in ROW_COUNTS],
        "expectations": {"ok": not failed, "seconds": {"suite": 20.1, "leaks": 4.0}, "expectations": exps},
        "published": None if failed else "learners_staging",
        "kept": [] if failed else ["learners_staging__20261127"],
        "dropped": [],
        "upload": {
            "ok": True,
            "error": None,
            "where": "s3://deid-runs/nightly",
            "keys": ["learners/2026-11-28/run.json"],
        },
    }


FIRST_STEP_FAILURE = {
    "database": "learners",
    "logical_date": "2026-11-28",
    "outcome": "failed",
    "failed_step": "snapshot",
    "error": "cannot connect to the production database learners",
    "started_at": "2026-11-28T12:00:00Z",
    "steps": {},
}


# Pure tests: the HTML text.


def test_names_from_the_record_are_escaped():
    record = make_record("failed")
    evil = "<script>alert(1)</script>"
    record["tables"][evil] = {"rows": 5, "seconds": 0.1, "action": "rewritten"}
    record["row_counts"][evil] = {"rows": 5, "expected": 5}
    record["expectations"]["expectations"].append(expectation(evil, '"><img src=x>', ok=False))
    record["error"] = f"FAIL {evil}"
    record["database"] = "<b>db</b>"
    page = render_report(record)
    assert "<script" not in page.lower()
    assert "<img" not in page and "<b>db" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-table="&lt;script&gt;alert(1)&lt;/script&gt;"' in page


def test_a_record_of_a_run_that_failed_at_its_first_step_renders():
    page = render_report(copy.deepcopy(FIRST_STEP_FAILURE))
    assert 'id="verdict" data-outcome="failed"' in page
    assert "Failed at snapshot" in page
    assert "cannot connect to the production database learners" in page
    assert 'class="step failed" data-step="snapshot"' in page  # shown though it has no time


@pytest.mark.parametrize("key", sorted(make_record("failed")))
def test_any_key_may_be_missing(key):
    for outcome in ("published", "failed"):
        record = make_record(outcome)
        del record[key]
        page = render_report(record)
        assert page.startswith("<!DOCTYPE html>") and 'id="verdict"' in page and page.endswith("</html>\n")
    assert 'id="verdict"' in render_report({})


def test_steps_without_start_are_placed_one_after_another():
    page = render_report(make_record(timed=False))
    lefts = [
        float(x) for x in re.findall(r'class="step[^"]*" data-step="[^"]+"[^>]*style="left:([\d.]+)%', page)
    ]
    assert len(lefts) == len(STEPS)
    assert lefts == sorted(lefts) and len(set(lefts)) == len(lefts)


def test_the_page_references_nothing_outside_itself():
    page = render_report(make_record("failed"))
    for url in re.findall(r"""(?:src|href|action)\s*=\s*["']?([^"'\s>]*)""", page, re.I):
        assert not re.match(r"(https?:)?//", url), url
    assert "@import" not in page and "url(" not in page
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page


def test_hundreds_of_passing_expectations_are_folded_below_the_failures():
    record = make_record("failed")
    record["expectations"]["expectations"] += [expectation(f"public.t{i}") for i in range(300)]
    page = render_report(record)
    assert "306 of 307 expectations passed" in page
    failed_at, fold_at = page.index('class="expectation failed"'), page.index("<details>")
    assert failed_at < fold_at < page.index('class="expectation ok"')


# Browser tests: the page as people see it, in headless Chromium.


def _chromium() -> str:
    found = os.environ.get("DEID_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if not found:
        message = "no Chromium for the report tests: apt-get install chromium (or set DEID_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser():
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    args += ["--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        yield browser
        browser.close()


def open_page(browser, path: Path):
    """Open a report file as a person would: (page, the URLs it asked for outside file:, all aborted)."""
    page, outside = browser.new_page(viewport={"width": 1200, "height": 900}), []

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    return page, outside


@pytest.fixture
def show(browser, tmp_path):
    """Open a record's report rendered to a file: (page, URLs asked for outside file:)."""
    pages = []

    def open_report(record: dict):
        path = tmp_path / "report.html"
        path.write_text(render_report(record), encoding="utf-8")
        page, outside = open_page(browser, path)
        pages.append(page)
        return page, outside

    yield open_report
    for page in pages:
        page.close()


def _check_page(page, record: dict, tmp_path):
    for table in record["tables"]:
        assert page.locator(f'tr.table-row[data-table="{table}"]').is_visible(), table
    widths = {}
    for table in record["tables"]:
        bar = page.locator(f'tr.table-row[data-table="{table}"] .bar.rows')
        widths[table] = bar.bounding_box()["width"] if bar.is_visible() else 0
        if record["row_counts"][table]["rows"] > 0:
            assert widths[table] > 0, table
    assert widths["public.enrollments"] > widths["public.courses"] > 0  # biggest vs smallest non-zero

    steps = page.locator("#timeline .step")
    assert steps.count() == len(record["steps"])
    xs = []
    for i, name in enumerate(record["steps"]):
        step = steps.nth(i)
        assert step.get_attribute("data-step") == name and step.is_visible(), name
        xs.append(step.bounding_box()["x"])
    assert xs == sorted(xs) and len(set(xs)) == len(xs), xs

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_published_run_in_the_browser(show, tmp_path):
    record = make_record("published")
    page, outside = show(record)
    verdict = page.locator("#verdict")
    assert verdict.is_visible() and "learners_staging" in verdict.inner_text()
    assert verdict.get_attribute("data-outcome") == "published"
    assert page.locator("#validation-summary").inner_text() == "7 of 7 expectations passed"
    _check_page(page, record, tmp_path)
    assert outside == []  # self-contained: no font, image, style or script from anywhere else


def test_failed_run_in_the_browser(show, tmp_path):
    record = make_record("failed")
    page, outside = show(record)
    verdict = page.locator("#verdict")
    assert verdict.is_visible() and "Failed at validate" in verdict.inner_text()
    assert page.locator("pre").is_visible()
    failed = page.locator("#expectations tr.expectation.failed")
    assert failed.count() == 1 and failed.is_visible()
    assert "pii_scan_kept_text" in failed.inner_text() and "public.learners.bio" in failed.inner_text()
    color = page.locator('#timeline .step[data-step="validate"]').evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert color == "rgb(207, 34, 46)"  # the failed step is red
    _check_page(page, record, tmp_path)
    assert outside == []  # self-contained: no font, image, style or script from anywhere else


def test_folded_passing_expectations_stay_out_of_the_way(show):
    record = make_record("failed")
    record["expectations"]["expectations"] += [expectation(f"public.t{i}") for i in range(300)]
    page, outside = show(record)
    assert page.locator("tr.expectation.failed").is_visible()
    assert not page.locator("details tr.expectation.ok").first.is_visible()  # folded until opened
    page.locator("details summary").first.click()
    assert page.locator("details tr.expectation.ok").first.is_visible()
    assert outside == []


def test_first_step_failure_in_the_browser(show, tmp_path):
    page, outside = show(copy.deepcopy(FIRST_STEP_FAILURE))
    assert "Failed at snapshot" in page.locator("#verdict").inner_text()
    assert page.locator('#timeline .step[data-step="snapshot"]').is_visible()
    assert outside == []
