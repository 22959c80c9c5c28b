"""The HTML report of one run: a single self-contained page to look at rather than read.

Everything is inline (CSS, no script, no fonts or images by URL) so the page opens from a file, an S3 object
or a mail attachment alike, and makes no request. Every value taken from the record is HTML-escaped: table
and column names come from the production schema, which we do not trust to be free of markup.
"""

from __future__ import annotations

import html
from typing import Any

FOLD_PASSING = 20  # more passing rows than this go inside a closed <details>, so failures stay in view

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1f2328;background:#f6f8fa;margin:0}
main{max-width:1160px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:16px;margin:0 0 10px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:14px 18px;margin:14px 0}
.muted{color:#59636e}.meta>span{margin-right:18px}.bad{color:#cf222e;font-weight:600}
#verdict{font-size:26px;font-weight:600;color:#fff;padding:14px 18px;border-radius:8px;margin:10px 0}
#verdict[data-outcome=published]{background:#1a7f37}#verdict[data-outcome=failed]{background:#cf222e}
#verdict.other{background:#57606a}
pre{background:#fff1f0;border:1px solid #ffcecb;padding:10px;border-radius:6px;white-space:pre-wrap;margin:0}
.tl-row{display:grid;grid-template-columns:170px 1fr;align-items:center;height:26px}
.track{position:relative;height:18px;background:#f0f3f6;border-radius:3px}
.step{position:absolute;top:0;height:18px;min-width:4px;background:#0969da;border-radius:3px}
.step.failed{background:#cf222e}.tl-row.failed .tl-label{color:#cf222e;font-weight:600}
.axis{display:flex;justify-content:space-between;margin-left:170px;font-size:12px}
table{border-collapse:collapse;width:100%}th{font-size:12px;color:#59636e;font-weight:600}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:middle}
.barcell{display:flex;align-items:center;gap:8px}.bartrack{width:260px;flex:none}
.bar{height:14px;border-radius:2px}.bar.rows{background:#0969da}.bar.seconds{background:#8250df}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}tr.failed td{background:#fff1f0}
.pill{font-size:12px;padding:1px 8px;border-radius:10px;background:#eaeef2}.pill.rewritten{background:#ddf4ff}
.pill.ok{background:#dafbe1;color:#1a7f37}.pill.failed{background:#ffebe9;color:#cf222e}.pill.emptied{background:#fff8c5}
#validation-summary{font-size:16px;font-weight:600}h2.sub{margin-top:14px}
details{margin-top:8px}summary{cursor:pointer;color:#59636e}
dl{display:grid;grid-template-columns:170px 1fr;gap:4px 12px;margin:0}dt{color:#59636e}dd{margin:0}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
"""


def render_report(record: dict) -> str:
    """The page for `record`; any key may be missing (a run that failed at its first step has few)."""
    r = record or {}
    title = " · ".join(
        _e(x) for x in ("deid", r.get("database"), r.get("logical_date"), r.get("outcome")) if x
    )
    body = "".join([_header(r), _error(r), _timeline(r), _tables(r), _validation(r), _facts(r)])
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><main>{body}</main></body></html>\n"
    )


def _e(value: Any) -> str:
    return "" if value is None else html.escape(str(value))


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


def _header(r: dict) -> str:
    outcome = r.get("outcome")
    if outcome == "published":
        verdict, css = f"Published {_e(r.get('published'))}", ""
    elif outcome == "failed":
        verdict, css = f"Failed at {_e(r.get('failed_step') or 'an unknown step')}", ""
    elif outcome == "kept":  # older than the published copy: kept for rollback, not published
        kept = _dict(r.get("kept_instead_of_published"))
        verdict, css = f"Kept {_e(kept.get('copy'))} for rollback (not published)", ' class="other"'
    else:  # "step": one step run with --only, which neither publishes nor fails the night
        verdict, css = f"Ran {_e(outcome or 'unknown outcome')}", ' class="other"'
    meta = {"total": _secs(r["seconds"]) if "seconds" in r else "", "started": _e(r.get("started_at"))}
    meta |= {"via": _e(r.get("via")), "run": _e(r.get("run_id"))}
    spans = "".join(f'<span><span class="muted">{k}</span> {v}</span>' for k, v in meta.items() if v)
    day = f' <span class="muted">· {_e(r["logical_date"])}</span>' if r.get("logical_date") else ""
    return (
        f"<h1>{_e(r.get('database') or 'unknown database')}{day}</h1>"
        f'<div id="verdict" data-outcome="{_e(outcome)}"{css}>{verdict}</div><div class="meta">{spans}</div>'
    )


def _error(r: dict) -> str:
    if r.get("outcome") != "failed" or not r.get("error"):
        return ""
    return f"<section><h2>Error</h2><pre>{_e(r['error'])}</pre></section>"


def _timeline(r: dict) -> str:
    # Airflow records carry seconds only: their steps ran one after another, so place them cumulatively.
    spans, at = [], 0.0
    for name, step in _dict(r.get("steps")).items():
        step = _dict(step)
        start, secs = (_num(step["start"]) if "start" in step else at), _num(step.get("seconds"))
        spans.append((name, start, secs, _secs(secs)))
        at = start + secs
    failed = r.get("failed_step") if r.get("outcome") == "failed" else None
    if failed and failed not in {s[0] for s in spans}:  # it failed before its time was recorded
        spans.append((failed, at, 0.0, ""))
    if not spans:
        return ""
    total = max([_num(r.get("seconds"))] + [start + secs for _, start, secs, _ in spans])
    rows = []
    for name, start, secs, took in spans:
        css = " failed" if name == failed else ""
        place = f"left:{100 * start / (total or 1):.3f}%;width:{100 * secs / (total or 1):.3f}%"
        label = f'<div class="tl-label">{_e(name)} <span class="muted">{took}</span></div>'
        bar = (
            f'<div class="step{css}" data-step="{_e(name)}" title="{_e(name)} {took}" style="{place}"></div>'
        )
        rows.append(f'<div class="tl-row{css}">{label}<div class="track">{bar}</div></div>')
    ticks = "".join(f"<span>{_secs(total * i / 4)}</span>" for i in range(5)) if total else ""
    axis = f'<div class="axis muted">{ticks}</div>'
    return f'<section><h2>Steps</h2><div id="timeline">{"".join(rows)}</div>{axis}</section>'


def _bar(kind: str, value: float, biggest: float, text: str) -> str:
    # Width relative to the largest table; min-width keeps a small but non-zero value visible.
    width = f"width:{100 * value / biggest:.3f}%;min-width:4px" if value > 0 else "width:0"
    return (
        f'<div class="barcell"><div class="bartrack"><div class="bar {kind}" style="{width}"></div></div>'
        f'<span class="num">{text}</span></div>'
    )


def _tables(r: dict) -> str:
    tables, counts = _dict(r.get("tables")), _dict(r.get("row_counts"))
    names = list(tables) + [t for t in counts if t not in tables]
    if not names:
        return ""
    # Rows in the copy after the scrub (row_counts) when known; the scrub's own count otherwise.
    rows = {t: _num(_dict(counts.get(t)).get("rows", _dict(tables.get(t)).get("rows"))) for t in names}
    secs = {t: _num(_dict(tables.get(t)).get("seconds")) for t in names}
    most_rows, most_secs = max(rows.values()) or 1.0, max(secs.values()) or 1.0
    out = []
    for t in names:
        info, expected = _dict(tables.get(t)), _dict(counts.get(t)).get("expected")
        text = _count(rows[t])
        if expected is not None and _num(expected) != rows[t]:
            text += f' <span class="bad">expected {_count(expected)}</span>'
        action, took = _e(info.get("action", "—")), _secs(secs[t]) if "seconds" in info else ""
        out.append(
            f'<tr class="table-row" data-table="{_e(t)}"><td><code>{_e(t)}</code></td>'
            f'<td><span class="pill {action}">{action}</span></td>'
            f"<td>{_bar('rows', rows[t], most_rows, text)}</td>"
            f"<td>{_bar('seconds', secs[t], most_secs, took)}</td></tr>"
        )
    head = "<tr><th>table</th><th>action</th><th>rows in the copy</th><th>scrub time</th></tr>"
    return f'<section><h2>Tables</h2><table id="tables">{head}{"".join(out)}</table></section>'


def _listing(ident: str, head: str, rows: list[tuple[bool, str]]) -> str:
    # Failures first; hundreds of passing rows are folded away so a failure is never scrolled past.
    failed, passing = [h for ok, h in rows if not ok], [h for ok, h in rows if ok]
    table = f'<table id="{ident}">{head}{"".join(failed)}'
    if len(passing) <= FOLD_PASSING:
        return f"{table}{''.join(passing)}</table>"
    fold = f"<details><summary>{len(passing)} passing {ident}</summary><table>{head}{''.join(passing)}"
    return f"{table}</table>{fold}</table></details>"


def _row(kind: str, ok: bool, *cells: str) -> tuple[bool, str]:
    tds = "".join(f"<td>{c}</td>" for c in cells)
    return ok, f'<tr class="{kind} {"ok" if ok else "failed"}"><td>{_pill(ok)}</td>{tds}</tr>'


def _validation(r: dict) -> str:
    exp, checks = _dict(r.get("expectations")), [_dict(c) for c in r.get("checks") or []]
    items = [_dict(x) for x in exp.get("expectations") or []]
    if not exp and not checks:
        return ""
    passed = sum(bool(x.get("ok")) for x in items)
    summary = f"{passed} of {len(items)} expectations passed" if exp else "Expectations did not run"
    timing = " · ".join(f"{_e(k)} {_secs(v)}" for k, v in _dict(exp.get("seconds")).items())
    out = f'<section><h2>Validation</h2><div id="validation-summary">{summary}</div>'
    out += f'<p class="muted">{timing}</p>'
    if items:
        head = "<tr><th></th><th>expectation</th><th>place</th><th>counts</th><th>detail</th></tr>"
        out += _listing("expectations", head, [_expectation(x) for x in items])
    waivers = [_dict(w) for w in exp.get("waivers") or []]
    if waivers:
        out += _waivers(waivers)
    if checks:
        head = "<tr><th></th><th>check</th><th>subject</th><th>detail</th></tr>"
        rows = [
            _row("check", bool(c.get("ok")), _e(c.get("name")), _code(c.get("subject")), _e(c.get("detail")))
            for c in checks
        ]
        out += f"<h2 class='sub'>{sum(ok for ok, _ in rows)} of {len(checks)} checks passed</h2>"
        out += _listing("checks", head, rows)
    return out + "</section>"


def _expectation(x: dict) -> tuple[bool, str]:
    place = _code(".".join(str(p) for p in (x.get("table"), x.get("column")) if p))
    counts = f"{_count(x.get('unexpected'))} unexpected of {_count(x.get('checked'))} checked"
    counts += f" (allowed {_count(x.get('allowed'))})"
    counts = counts if x.get("ok") else f'<span class="bad">{counts}</span>'
    return _row(
        "expectation", bool(x.get("ok")), _e(x.get("expectation")), place, counts, _e(x.get("detail"))
    )


def _waivers(waivers: list[dict]) -> str:
    """What the rule file let pass: never folded away, so a reviewer sees every waiver of the run."""
    head = "<tr><th>place</th><th>check</th><th>matched</th><th>reason (rules line)</th></tr>"
    rows = "".join(
        f'<tr class="waiver"><td>{_code(".".join(str(p) for p in (w.get("table"), w.get("column")) if p))}'
        f"</td><td>{_e(w.get('check'))}</td><td class='num'>{_count(w.get('matched'))} of "
        f"{_count(w.get('checked'))} checked</td><td>{_e(w.get('reason'))} ({_e(w.get('line'))})</td></tr>"
        for w in waivers
    )
    title = f"{len(waivers)} waiver(s) from the rule file: counted, not failing"
    return f"<h2 class='sub'>{title}</h2><table id=\"waivers\">{head}{rows}</table>"


def _pill(ok: bool, yes: str = "pass", no: str = "FAIL") -> str:
    return f'<span class="pill ok">{yes}</span>' if ok else f'<span class="pill failed">{no}</span>'


def _code(value: Any, size: int | None = None) -> str:
    """A name or digest in monospace; a digest is cut to `size` characters, enough to recognise it."""
    return f"<code>{_e(str(value)[:size])}</code>" if value else ""


def _facts(r: dict) -> str:
    rules, subset = _dict(r.get("rules")), r.get("subset")
    offsets = [_num(_dict(o).get("offset")) for o in _dict(r.get("offsets")).values()]
    low, high = min(offsets, default=0), max(offsets, default=0)
    span = _count(low) + (f" – {_count(high)}" if low != high else "")
    clone_took = _clone_cost(r)
    facts = [
        ("rules", _code(rules.get("file"))),
        ("rules sha256", _code(rules.get("sha256"), 12)),
        (
            "git commit",
            _code(rules.get("git_commit"), 7)
            + (" (with uncommitted changes)" if rules.get("git_dirty") else ""),
        ),
        ("schema hash", _code(r.get("schema_hash"), 12)),
        ("clone", _e(r.get("clone_method")) + clone_took if r.get("clone_method") else ""),
        ("offsets", f"{len(offsets)} sequence{'s' * (len(offsets) > 1)}, offset {span}" if offsets else ""),
        ("migrations", _list(r.get("migrations"), "none") if "migrations" in r else ""),
        ("subset", _list(subset, "") if subset else ("none (full copy)" if "subset" in r else "")),
        ("kept copies", _list(r.get("kept"), "none") if "kept" in r else ""),
        ("dropped copies", _list(r.get("dropped"), "")),
        ("upload", _upload(r["upload"]) if isinstance(r.get("upload"), dict) else ""),
        ("finished", _e(r.get("finished_at"))),
        ("deid version", _e(r.get("deid_version"))),
    ]
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts if v)
    return f"<section><h2>Facts</h2><dl>{rows}</dl></section>" if rows else ""


def _clone_cost(r: dict) -> str:
    """(0.03 s, file_copy_method=clone: blocks shared, 0.2 MB extra): what the snapshot's clone took."""
    parts = [_secs(r["clone_seconds"])] if "clone_seconds" in r else []
    shared = r.get("clone_shared")
    how = [_e(r.get("clone_method_detail")), "blocks shared" if shared is True else ""]
    how.append("blocks copied" if shared is False else "")
    if any(how):
        parts.append(": ".join(x for x in how if x))
    extra = r.get("clone_extra_bytes")
    if isinstance(extra, int) and not isinstance(extra, bool):
        parts.append(f"{extra / 2**20:,.1f} MB extra")
    return f" ({', '.join(parts)})" if parts else ""


def _list(values: Any, empty: str) -> str:
    values = values if isinstance(values, list | tuple) else [values] if values else []
    return ", ".join(_code(v) for v in values) or empty


def _upload(up: dict) -> str:
    where = f" to {_code(up.get('where'))}" if up.get("where") else ""
    keys = f" ({len(up['keys'])} files: {_list(up['keys'], '')})" if up.get("keys") else ""
    error = f' <span class="bad">{_e(up.get("error"))}</span>' if up.get("error") else ""
    return f"{_pill(bool(up.get('ok')), 'uploaded', 'upload failed')}{where}{keys}{error}"
