"""`deid plan --diff BASE HEAD`: what a change to a rule file changes for each column and table, as Markdown
for a pull-request comment.

Both versions are loaded (`load_rules`), never compared as text: a moved line, a comment or a class spelled
instead of its transformer changes nothing here, and a policy's class resolves to what deid will run. Each
rule becomes one canonical dict (`column_facts`, `table_facts`, `file_facts`); the comparison is generic over
those dicts, so a new kind of fact (such as per-column waivers) shows up by being added to its dict alone.
Changes that can let identifiers through (a column now kept as is, a waiver, rows kept unscrubbed, rows
now copied) are marked ⚠ and listed first.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deid.errors import UsageError
from deid.rules.load import load_rules
from deid.rules.model import ColumnRule, RuleFile, TableRule
from deid.transformers import get

RISK = "⚠"
ITEMISED = ("waivers", "triggers")  # facts compared item by item (one row per waiver, per trigger)


def column_facts(rule: ColumnRule) -> dict[str, Any]:
    """Everything a column rule decides (its canonical description), in one comparable dict."""
    described = rule.describe()
    return {
        "transformer": described["transformer"],
        "kept": not get(rule.transformer).rewrites,
        "params": json.loads(json.dumps(described.get("params", {}), sort_keys=True, default=str)),
        "class": described.get("class"),
        "reason": described.get("reason"),
        "waivers": described.get("waive", {}),
    }


def table_facts(rule: TableRule) -> dict[str, Any]:
    limit = rule.keep_rows_at_most
    return {
        "copy": rule.copy,
        "keep_rows_where": rule.keep_rows_where.text if rule.keep_rows_where else None,
        "keep_rows_at_most": None if limit.rows is None and limit.percent is None else limit.describe(),
        "keep_rows_at_most reason": limit.reason,
        "triggers": {t.name: t.action + (f' ("{t.reason}")' if t.reason else "") for t in rule.triggers},
    }


def file_facts(rules: RuleFile) -> dict[str, Any]:
    lo = rules.large_objects
    return {
        "policy": rules.policy.name,
        "large_objects": None if lo is None else lo.action + (f' ("{lo.reason}")' if lo.reason else ""),
    }


@dataclass(frozen=True)
class Row:
    table: str  # "" for the file's own settings
    column: str  # "" for a table's settings
    change: str
    before: str
    after: str
    risky: bool = False


def compare(base: RuleFile | None, head: RuleFile | None) -> list[Row]:
    """Every difference from base to head; None stands for a file that does not exist in that version."""
    rows = _compare_facts("", "", file_facts(base) if base else {}, file_facts(head) if head else {})
    old = {t.name: t for t in base.tables} if base else {}
    new = {t.name: t for t in head.tables} if head else {}
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            what = "table added" if a is None else "table removed"
            rows.append(Row(name, "", what, "" if a is None else "present", "present" if a is None else ""))
        rows += _compare_facts(name, "", table_facts(a) if a else {}, table_facts(b) if b else {})
        before = {c.name: c for c in a.columns} if a else {}
        after = {c.name: c for c in b.columns} if b else {}
        for column in sorted(before.keys() | after.keys()):
            x, y = before.get(column), after.get(column)
            rows += _compare_column(
                name, column, column_facts(x) if x else None, column_facts(y) if y else None
            )
    return sorted(rows, key=lambda r: not r.risky)  # stable: risky first, otherwise in file order


def _compare_facts(table: str, column: str, old: dict[str, Any], new: dict[str, Any]) -> list[Row]:
    rows = []
    for key in old.keys() | new.keys():
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key in ITEMISED:
            a, b = a or {}, b or {}
            for item in sorted(a.keys() | b.keys()):
                if a.get(item) != b.get(item):
                    change = f"{key} {item}: " + _verb(a.get(item), b.get(item))
                    rows.append(
                        Row(
                            table,
                            column,
                            change,
                            _show(a.get(item)),
                            _show(b.get(item)),
                            _risky(key, a.get(item), b.get(item)),
                        )
                    )
            continue
        rows.append(Row(table, column, f"{key} {_verb(a, b)}", _show(a), _show(b), _risky(key, a, b)))
    return sorted(rows, key=lambda r: r.change)


def _compare_column(table: str, column: str, old: dict | None, new: dict | None) -> list[Row]:
    if old is None or new is None:
        facts = new or old
        assert facts is not None
        kept = facts["kept"] and new is not None
        change = "new rule: kept as is" if kept else ("new rule" if new is not None else "rule removed")
        text = _describe(facts)
        return [Row(table, column, change, "" if new else text, text if new else "", kept)]
    rows = []
    if old["kept"] != new["kept"]:
        change = "now kept as is" if new["kept"] else "now transformed"
        rows.append(Row(table, column, change, _describe(old), _describe(new), new["kept"]))
        # the row above shows the whole rule on both sides: only waivers remain to compare
        described = dict.fromkeys(("transformer", "params", "class", "reason"))
        old, new = {**old, **described}, {**new, **described}
    rest = {k: v for k, v in old.items() if k != "kept"}, {k: v for k, v in new.items() if k != "kept"}
    return rows + _compare_facts(table, column, *rest)


def _verb(a: Any, b: Any) -> str:
    return "added" if a in (None, "", {}) else "removed" if b in (None, "", {}) else "changed"


def _risky(key: str, a: Any, b: Any) -> bool:
    """Changes that can let more production values through to staging."""
    if key == "waivers":
        return b is not None
    if key == "copy":
        return b == "full"
    if key in ("keep_rows_where", "keep_rows_at_most"):
        return b is not None
    if key == "large_objects":
        return isinstance(b, str) and b.startswith("keep")
    if key == "triggers":
        return isinstance(b, str) and b.startswith("silent")
    return False


def _describe(facts: dict[str, Any]) -> str:
    text = facts["transformer"]
    if facts["class"]:
        text = f"class {facts['class']} ({text})"
    if facts["params"]:
        text += " " + json.dumps(facts["params"], sort_keys=True)
    if facts["reason"]:
        text += f' — reason: "{facts["reason"]}"'
    return text


def _show(value: Any) -> str:
    if value in (None, "", {}):
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def render(rows: list[Row], base_label: str, head_label: str) -> str:
    """Markdown: a summary line, the risky changes, then one table per rule-file table."""
    risky = [r for r in rows if r.risky]
    tables = {r.table for r in rows}
    title = f"### deid plan diff: `{head_label}`\n\nfrom `{base_label}`\n"
    if not rows:
        return title + "\nNo change to what deid does with any table or column.\n"
    summary = f"**{len(rows)} change(s) in {len(tables)} table(s)**"
    summary += f", {RISK} {len(risky)} to review closely" if risky else ", none marked risky"
    out = [title, summary, ""]
    if risky:
        out.append(f"#### {RISK} Review closely\n")
        out += [
            f"- {RISK} `{_where(r)}`: {r.change} ({_cell(r.before) or '—'} → {_cell(r.after) or '—'})"
            for r in risky
        ]
        out.append("")
    for table in sorted(tables):
        out.append(f"#### {'`' + table + '`' if table else 'the whole file'}\n")
        out.append("| column | change | before | after |\n| --- | --- | --- | --- |")
        for r in (r for r in rows if r.table == table):
            mark = f"{RISK} " if r.risky else ""
            column = f"`{r.column}`" if r.column else "(table)"
            out.append(f"| {mark}{column} | {_cell(r.change)} | {_cell(r.before)} | {_cell(r.after)} |")
        out.append("")
    return "\n".join(out)


def _where(row: Row) -> str:
    return ".".join(p for p in (row.table, row.column) if p) or "(file)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def load_version(spec: str) -> RuleFile | None:
    """A rule file path, or `git:REF:PATH` (PATH from the repository's root) read with `git show` without
    checking REF out; None when REF has no such file (a rule file the change adds). Policies are read
    from beside the working tree's rule file (or deid's own), as the head version's are."""
    if not spec.startswith("git:"):
        if not Path(spec).is_file():
            raise UsageError(f"{spec}: no such rule file (use git:REF:PATH for a committed version)")
        return load_rules(spec)
    ref, _, path = spec[4:].partition(":")
    if not ref or not path:
        raise UsageError(f"{spec}: write git:REF:PATH, e.g. git:origin/main:rules/learners.yaml")
    shown = subprocess.run(["git", "show", f"{ref}:{path}"], capture_output=True)
    if shown.returncode != 0:
        err = shown.stderr.decode(errors="replace")
        if "does not exist" in err or "exists on disk, but not in" in err:
            return None
        raise UsageError(f"{spec}: git show failed: {err.strip().splitlines()[-1] if err.strip() else '?'}")
    with tempfile.TemporaryDirectory(prefix="deid-base-") as folder:
        copy = Path(folder) / Path(path).name
        copy.write_bytes(shown.stdout)
        policies = Path(path).parent / "policies"
        if policies.is_dir():
            (Path(folder) / "policies").symlink_to(policies.resolve(), target_is_directory=True)
        return load_rules(copy, display=f"{ref}:{path}")
