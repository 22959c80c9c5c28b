"""The HTML report of one run: a single self-contained page to look at rather than read.

Rendered from Jinja2 templates (deid/records/templates, package data) with autoescaping on: table and
column names come from the production schema, which we do not trust to be free of markup. This module
turns the record into plain values (texts, numbers, widths); the template only lays them out. Its counts and
words come from deid.records.counts, as every other view's do. Everything is inline (CSS, no script, no fonts
or images by URL) so the page opens from a file, an S3 object or a mail attachment alike, and makes no
request. The page shows names and counts only, as the record does.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from deid.records.counts import Check, run_counts

FOLD_PASSING = 20  # more passing rows than this go inside a closed <details>, so failures stay in view


@cache
def _template():
    import jinja2  # Airflow's and Great Expectations' dependency already (uv.lock); imported only here

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("deid.records", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a name the view lacks is a bug, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


def render_report(record: dict) -> str:
    """The page for `record`; any key may be missing (a run that failed at its first step has few)."""
    return _template().render(r=view(record or {})).strip() + "\n"


def view(r: dict) -> dict[str, Any]:
    """What the template shows of `r`, as plain values."""
    counts = run_counts(r)
    title = " · ".join(
        str(x) for x in ("deid", r.get("database"), r.get("logical_date"), r.get("outcome")) if x
    )
    return {
        "title": title,
        "database": r.get("database") or "unknown database",
        "logical_date": r.get("logical_date") or "",
        **_verdict(r),
        "meta": _meta(r),
        "error": r.get("error") if r.get("outcome") == "failed" else "",
        **_timeline(r),
        "tables": _tables(r, counts.actions),
        "tables_text": counts.tables_text(),
        **_validation(r, counts.checks),
        "checks_text": counts.checks_text(),
        "facts": _facts(r),
    }


def _num(value: Any) -> float:
    """A number from the record, 0 when absent or not a number (a partial record must still render)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _secs(value: Any) -> str:
    s = _num(value)
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def _count(value: Any) -> str:
    return f"{int(_num(value)):,}"


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _verdict(r: dict) -> dict[str, Any]:
    outcome = r.get("outcome")
    if outcome == "published":
        verdict, other = f"Published {r.get('published') or ''}", False
    elif outcome == "failed":
        verdict, other = f"Failed at {r.get('failed_step') or 'an unknown step'}", False
    elif outcome == "kept":  # older than the published copy: kept for rollback, not published
        kept = _dict(r.get("kept_instead_of_published"))
        verdict, other = f"Kept {kept.get('copy') or ''} for rollback (not published)", True
    else:  # "step": one step run with --only, which neither publishes nor fails the night
        verdict, other = f"Ran {outcome or 'unknown outcome'}", True
    return {"outcome": outcome or "", "verdict": verdict, "verdict_other": other}


def _meta(r: dict) -> list[tuple[str, str]]:
    meta = [("total", _secs(r["seconds"]) if "seconds" in r else "")]
    meta += [
        (k, str(r.get(key) or ""))
        for k, key in (("started", "started_at"), ("via", "via"), ("run", "run_id"))
    ]
    return [(k, v) for k, v in meta if v]


def _timeline(r: dict) -> dict[str, Any]:
    # Airflow records carry seconds only: their steps ran one after another, so place them cumulatively.
    spans, at = [], 0.0
    for name, step in _dict(r.get("steps")).items():
        step = _dict(step)
        start, secs = (_num(step["start"]) if "start" in step else at), _num(step.get("seconds"))
        spans.append((str(name), start, secs, _secs(secs)))
        at = start + secs
    failed = r.get("failed_step") if r.get("outcome") == "failed" else None
    if failed and failed not in {s[0] for s in spans}:  # it failed before its time was recorded
        spans.append((str(failed), at, 0.0, ""))
    total = max([_num(r.get("seconds"))] + [start + secs for _, start, secs, _ in spans])
    rows = [
        {
            "name": name,
            "took": took,
            "failed": name == failed,
            "left": f"{100 * start / (total or 1):.3f}",
            "width": f"{100 * secs / (total or 1):.3f}",
        }
        for name, start, secs, took in spans
    ]
    ticks = [_secs(total * i / 4) for i in range(5)] if total and rows else []
    return {"timeline": rows, "ticks": ticks}


def _width(value: float, biggest: float) -> str:
    # Width relative to the largest table; min-width keeps a small but non-zero value visible.
    return f"width:{100 * value / biggest:.3f}%;min-width:4px" if value > 0 else "width:0"


def _tables(r: dict, actions: dict[str, str]) -> list[dict[str, Any]]:
    tables, counts = _dict(r.get("tables")), _dict(r.get("row_counts"))
    names = list(tables) + [t for t in counts if t not in tables]
    if not names:
        return []
    # Rows in the copy after the scrub (row_counts) when known; the scrub's own count otherwise.
    rows = {t: _num(_dict(counts.get(t)).get("rows", _dict(tables.get(t)).get("rows"))) for t in names}
    secs = {t: _num(_dict(tables.get(t)).get("seconds")) for t in names}
    most_rows, most_secs = max(rows.values()) or 1.0, max(secs.values()) or 1.0
    out = []
    for t in names:
        info, expected = _dict(tables.get(t)), _dict(counts.get(t)).get("expected")
        bad = expected is not None and _num(expected) != rows[t]
        out.append(
            {
                "name": str(t),
                "action": actions.get(str(t)) or "—",
                "rows_width": _width(rows[t], most_rows),
                "rows_text": _count(rows[t]),
                "expected_text": f"expected {_count(expected)}" if bad else "",
                "secs_width": _width(secs[t], most_secs),
                "took": _secs(secs[t]) if "seconds" in info else "",
            }
        )
    return out


def _validation(r: dict, checks: tuple[Check, ...]) -> dict[str, Any]:
    suite = _dict(r.get("expectations"))
    if not suite and not r.get("checks"):
        return {"validation": False, "failing": [], "passing": [], "fold": False, "waivers": [], "timing": ""}
    rows = [_check(c) for c in checks]
    passing = [c for c in rows if c["ok"]]
    return {
        "validation": True,
        # failures first; hundreds of passing rows are folded away so a failure is never scrolled past
        "failing": [c for c in rows if not c["ok"]],
        "passing": passing,
        "fold": len(passing) > FOLD_PASSING,
        "waivers": [_waiver(_dict(w)) for w in suite.get("waivers") or []],
        "timing": " · ".join(f"{k} {_secs(v)}" for k, v in _dict(suite.get("seconds")).items()),
    }


def _check(c: Check) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "name": c.name,
        "place": c.place,
        "ok": c.ok,
        "counts": counts_text(c),
        "detail": c.detail,
    }


def counts_text(c: Check) -> str:
    """What one check looked at: 0 unexpected of 2,000 checked (allowed 5), 2,000 checked, not evaluated."""
    if c.checked is None and c.unexpected is None:
        return "not evaluated" if not c.ok else "not counted"
    seen = f"{c.checked:,} checked" if c.checked is not None else "not counted"
    if c.unexpected is None:
        return seen
    text = f"{c.unexpected:,} unexpected of {seen}"
    return text + (f" (allowed {c.allowed:,})" if c.allowed else "")


def _waiver(w: dict) -> dict[str, str]:
    place = ".".join(str(p) for p in (w.get("table"), w.get("column")) if p)
    return {
        "place": place,
        "check": str(w.get("check") or ""),
        "matched": _count(w.get("matched")),
        "checked": _count(w.get("checked")),
        "reason": str(w.get("reason") or ""),
        "line": str(w.get("line") or ""),
    }


Parts = list[tuple[str, str]]  # (kind, text): kind "code", "text", "bad", or a pill's class


def _code(value: Any, size: int | None = None) -> Parts:
    """A name or digest in monospace; a digest is cut to `size` characters, enough to recognise it."""
    return [("code", str(value)[:size])] if value else []


def _facts(r: dict) -> list[tuple[str, Parts]]:
    rules, subset = _dict(r.get("rules")), r.get("subset")
    offsets = [_num(_dict(o).get("offset")) for o in _dict(r.get("offsets")).values()]
    low, high = min(offsets, default=0), max(offsets, default=0)
    span = _count(low) + (f" – {_count(high)}" if low != high else "")
    commit = _code(rules.get("git_commit"), 7)
    if commit and rules.get("git_dirty"):
        commit.append(("text", " (with uncommitted changes)"))
    facts: list[tuple[str, Parts]] = [
        ("rules", _code(rules.get("file"))),
        ("rules sha256", _code(rules.get("sha256"), 12)),
        ("git commit", commit),
        ("schema hash", _code(r.get("schema_hash"), 12)),
        ("clone", [("text", f"{r['clone_method']}{_clone_cost(r)}")] if r.get("clone_method") else []),
        (
            "offsets",
            [("text", f"{len(offsets)} sequence{'s' * (len(offsets) > 1)}, offset {span}")]
            if offsets
            else [],
        ),
        ("migrations", _list(r.get("migrations"), "none") if "migrations" in r else []),
        (
            "subset",
            _list(subset, "") if subset else ([("text", "none (full copy)")] if "subset" in r else []),
        ),
        ("kept copies", _list(r.get("kept"), "none") if "kept" in r else []),
        ("replaced builds", _list(r.get("replaced"), "")),
        ("dropped copies", _list(r.get("dropped"), "")),
        ("upload", _upload(r["upload"]) if isinstance(r.get("upload"), dict) else []),
        ("finished", [("text", str(r["finished_at"]))] if r.get("finished_at") else []),
        ("deid version", [("text", str(r["deid_version"]))] if r.get("deid_version") else []),
    ]
    return [(k, v) for k, v in facts if v]


def _clone_cost(r: dict) -> str:
    """(0.03 s, file_copy_method=clone: blocks shared, 0.2 MB extra): what the snapshot's clone took."""
    parts = [_secs(r["clone_seconds"])] if "clone_seconds" in r else []
    shared = r.get("clone_shared")
    how = [str(r.get("clone_method_detail") or ""), "blocks shared" if shared is True else ""]
    how.append("blocks copied" if shared is False else "")
    if any(how):
        parts.append(": ".join(x for x in how if x))
    extra = r.get("clone_extra_bytes")
    if isinstance(extra, int) and not isinstance(extra, bool):
        parts.append(f"{extra / 2**20:,.1f} MB extra")
    return f" ({', '.join(parts)})" if parts else ""


def _list(values: Any, empty: str) -> Parts:
    values = values if isinstance(values, list | tuple) else [values] if values else []
    out: Parts = []
    for i, v in enumerate(values):
        out += ([("text", ", ")] if i else []) + _code(v)
    return out or ([("text", empty)] if empty else [])


def _upload(up: dict) -> Parts:
    parts: Parts = [("ok", "uploaded") if up.get("ok") else ("failed", "upload failed")]
    if up.get("where"):
        parts += [("text", " to "), *_code(up.get("where"))]
    if up.get("keys"):
        parts += [("text", f" ({len(up['keys'])} files: "), *_list(up["keys"], ""), ("text", ")")]
    if up.get("error"):
        parts += [("text", " "), ("bad", str(up["error"]))]
    return parts
