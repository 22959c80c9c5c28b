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
# tables without a sensitive column: the scrub reports nothing of them, the copy's plan names them
UNTOUCHED = [f"public.lookup_{i:02d}" for i in range(11)]
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
        "error": "validation of learners failed: 1 of the suite's 7 checks" if failed else None,
        "rules": {"file": "learners.yaml", "sha256": "9f2c" * 16, "git_commit": "4db94cb" + "0" * 33},
        "schema_hash": "ab12" * 16,
        "clone_method": "template",
        "clone_seconds": 0.4,
        "subset": None,
        "steps": steps,
        "plan": {t: "rewritten" for t in TABLES}
        | {"public.courses": "untouched"}
        | {"public.audit_events": "emptied"}
        | dict.fromkeys(UNTOUCHED, "untouched"),
        "tables": copy.deepcopy(TABLES),
        "row_counts": {t: {"rows": n, "expected": n} for t, n in ROW_COUNTS.items()},
        "offsets": {"public.learners_id_seq": {"sequence": "public.learners_id_seq", "offset": 1234567000}},
        "migrations": ["V1__add_staging_flags"],
        "checks": [
            {"name": "row_count", "subject": t, "ok": True, "detail": f"{n} rows, expected {n}", "checked": n}
            for t, n in ROW_COUNTS.items()
        ],
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


def test_hundreds_of_passing_checks_are_folded_below_the_failures():
    record = make_record("failed")
    record["expectations"]["expectations"] += [expectation(f"public.t{i}") for i in range(300)]
    page = render_report(record)
    # one count of every check: the 5 quick checks and the suite's 7 + 300
    assert '<div id="validation-summary">311 of 312 checks passed</div>' in page
    failed_at, fold_at = page.index('class="check suite failed"'), page.index("<details>")
    assert failed_at < fold_at < page.index('class="check suite ok"')


def expected_counts(item: dict) -> str:
    """What the report must show of one check, from the record alone (not from deid.records.counts)."""
    if "expectation" not in item:  # a quick check: its detail says the rest
        return f"{item['checked']:,} checked"
    text = f"{item['unexpected']:,} unexpected of {item['checked']:,} checked"
    return text + (f" (allowed {item['allowed']:,})" if item["allowed"] else "")


def expected_summary(record: dict) -> str:
    every, waived = (
        record["checks"] + record["expectations"]["expectations"],
        record["expectations"].get("waivers"),
    )
    summary = f"{sum(c['ok'] for c in every):,} of {len(every):,} checks passed"
    return summary + (f", {len(waived)} waived" if waived else "")


def test_one_count_of_checks_in_every_view():
    """The run's summary, deid history and status (their run facts) and the report say the same number."""
    from deid.cli import format_status
    from deid.records.history import format_history, summary_lines

    record = make_record("failed")
    summary = expected_summary(record)
    assert summary == "11 of 12 checks passed"
    assert f"validation: {summary}" in summary_lines(record)
    assert summary in format_history([record])
    status = format_status({"published": {"name": "learners_staging", "record": record}, "kept": []})
    assert summary in status
    assert f'<div id="validation-summary">{summary}</div>' in render_report(record)
    for text in (status, format_history([record]), "\n".join(summary_lines(record)), render_report(record)):
        assert "expectations passed" not in text and "7 of 7" not in text


def test_tables_the_scrub_left_untouched_are_counted_from_the_plan():
    from deid.records.history import summary_lines

    record = make_record()
    # 3 rewritten (2,000 + 24,000 + 6,000 rows), audit_events emptied, courses and 11 others untouched
    line = "scrubbed 32,000 rows in 3 tables; 1 emptied, 12 untouched (16 tables)"
    assert line in summary_lines(record)
    assert f'<p id="tables-summary">{line}</p>' in render_report(record)


def test_passing_checks_show_what_they_checked():
    page = render_report(make_record())
    assert "not counted" not in page and "not evaluated" not in page
    for item in make_record()["expectations"]["expectations"]:
        assert f'<td class="counts">{expected_counts(item)}</td>' in page, item


def test_a_copy_is_never_shown_both_kept_and_replaced_or_dropped():
    record = make_record() | {
        "kept": ["learners_staging__20261127"],
        "replaced": ["learners_staging__20261127"],
        "dropped": ["learners_staging__20261120"],
    }
    page = render_report(record)
    assert "<dt>replaced builds</dt><dd><code>learners_staging__20261127</code></dd>" in page
    assert "<dt>dropped copies</dt><dd><code>learners_staging__20261120</code></dd>" in page


def test_the_templates_are_package_data():
    """The wheel ships deid/records/templates (hatchling takes every file under the package)."""
    import subprocess
    from importlib.resources import files

    folder = files("deid.records") / "templates"
    assert {"report.html.j2", "report.css"} <= {p.name for p in folder.iterdir()}
    ignored = subprocess.run(["git", "check-ignore", "-q", str(folder / "report.html.j2")], check=False)
    assert ignored.returncode == 1  # not ignored: hatchling leaves out what git ignores


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


DESKTOP, PHONE = 1280, 390  # CSS pixels: a laptop's browser, a phone's


def open_page(browser, path: Path, width: int = DESKTOP):
    """Open a report file as a person would: (page, the URLs it asked for outside file:, all aborted)."""
    page, outside = browser.new_page(viewport={"width": width, "height": 900}), []

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

    def open_report(record: dict, width: int = DESKTOP):
        path = tmp_path / "report.html"
        path.write_text(render_report(record), encoding="utf-8")
        page, outside = open_page(browser, path, width)
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
    assert page.locator("#validation-summary").inner_text() == "12 of 12 checks passed"
    _check_page(page, record, tmp_path)
    assert outside == []  # self-contained: no font, image, style or script from anywhere else


def test_failed_run_in_the_browser(show, tmp_path):
    record = make_record("failed")
    page, outside = show(record)
    verdict = page.locator("#verdict")
    assert verdict.is_visible() and "Failed at validate" in verdict.inner_text()
    assert page.locator("pre").is_visible()
    failed = page.locator("#checks tr.check.failed")
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
    assert page.locator("tr.check.failed").is_visible()
    assert not page.locator("details tr.check.ok").first.is_visible()  # folded until opened
    page.locator("details summary").first.click()
    assert page.locator("details tr.check.ok").first.is_visible()
    assert outside == []


def test_first_step_failure_in_the_browser(show, tmp_path):
    page, outside = show(copy.deepcopy(FIRST_STEP_FAILURE))
    assert "Failed at snapshot" in page.locator("#verdict").inner_text()
    assert page.locator('#timeline .step[data-step="snapshot"]').is_visible()
    assert outside == []


# What sticks out of its box: the document, a card (section) or a scroll box in one. scrollWidth counts what
# overflows even where overflow is visible, so a wide table or a long name shows here.
OVERFLOWING = """() => {
    const wide = e => e.scrollWidth > e.clientWidth + 1;
    const root = document.documentElement;
    const found = wide(root) ? [`document ${root.scrollWidth} > ${root.clientWidth}`] : [];
    for (const e of document.querySelectorAll("main > *, section *")) {
        if (e.tagName === "SECTION" || e.classList.contains("scroll") || e.tagName === "PRE" ||
            e.tagName === "DL" || e.tagName === "TABLE") {
            if (wide(e)) found.push(`${e.tagName}.${e.className} ${e.scrollWidth} > ${e.clientWidth}`);
        }
    }
    const card = s => s.getBoundingClientRect();
    for (const s of document.querySelectorAll("section")) {
        const box = card(s);
        for (const e of s.querySelectorAll("*")) {
            const r = e.getBoundingClientRect();
            if (r.width && (r.right > box.right + 1 || r.left < box.left - 1))
                found.push(`${e.tagName}.${e.className} sticks out of its card: ${r.right} > ${box.right}`);
        }
    }
    return found;
}"""


def png_width(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # the IHDR chunk's width


def hostile_record() -> dict:
    """A failed run with names no layout expects: 63-character identifiers without a break, a long error,
    hundreds of checks, a waiver."""
    record = make_record("failed")
    long_table = "public." + "x" * 63
    long_column = "y" * 63
    record["tables"][long_table] = {"rows": 123456789, "seconds": 12.5, "action": "rewritten", "sessions": 1}
    record["row_counts"][long_table] = {"rows": 123456789, "expected": 123456790}
    record["plan"][long_table] = "rewritten"
    exps = record["expectations"]["expectations"]
    found = {"unexpected": 1234567, "checked": 123456789, "allowed": 61728, "detail": "z" * 200}
    exps.append(expectation(long_table, long_column, False, "value_not_found_in_production", **found))
    exps += [expectation(f"public.t{i}", "c" * 40, checked=1000 * i) for i in range(60)]
    record["checks"].append({"name": "values_changed", "subject": f"{long_table}.{long_column}", "ok": True,
                             "detail": "0 of 1000 sampled values equal production's (allowed 0)",
                             "checked": 1000})  # fmt: skip
    record["expectations"]["waivers"] = [
        {"table": long_table, "column": long_column, "check": "phone", "reason": "w" * 150, "line": 42,
         "matched": 12, "checked": 123456789, "place": f"{long_table}.{long_column}"}
    ]  # fmt: skip
    record["error"] = "validation of learners failed: " + "v" * 500
    record["upload"]["keys"] = [f"learners/2026-11-28/{'k' * 120}.json"]
    return record


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
@pytest.mark.parametrize("kind", ["published", "hostile"])
def test_no_card_overflows_and_the_counts_are_the_records(show, tmp_path, width, kind):
    """At a desktop's and a phone's width: nothing wider than its card or the page (the full-page
    screenshot is exactly as wide as the window), and every count shown is the record's."""
    record = make_record() if kind == "published" else hostile_record()
    page, outside = show(record, width)
    for summary in page.locator("details summary").all():
        summary.click()  # the folded passing checks open, as someone looking for one would
    assert page.evaluate(OVERFLOWING) == []
    shot = tmp_path / f"report-{kind}-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert png_width(shot) == width

    assert page.locator("#validation-summary").inner_text() == expected_summary(record)
    every = record["checks"] + record["expectations"]["expectations"]
    rows = page.locator("tr.check")
    assert rows.count() == len(every)
    shown = sorted(
        (r.get_attribute("data-name"), r.get_attribute("data-place"), r.locator("td.counts").inner_text())
        for r in rows.all()
    )
    wanted = sorted(
        (
            c.get("expectation") or c["name"],
            c.get("subject") or ".".join(p for p in (c["table"], c["column"]) if p),
            expected_counts(c),
        )
        for c in every
    )
    assert shown == wanted
    for table, counts in record["row_counts"].items():
        cell = page.locator(f'tr.table-row[data-table="{table}"] .num').first
        assert cell.inner_text() == f"{counts['rows']:,}", table
    assert outside == []
