"""The counts of a run, in one vocabulary, from one function over its record.

Every view of a run (the summary `deid run` prints, `deid status`, `deid history`, the HTML report, the
Airflow task logs) takes its numbers from `run_counts` and its words from the `*_text` methods, so that no
two of them can disagree about the same run.

The word is **check**: anything validation verified before publish. The record keeps two lists of them,
deid's quick checks (`checks`: row counts, sampled values changed) and the suite's (`expectations`: Great
Expectations' suite and the leak checks); a reader is told one number, their sum, since publish needs every
one of them to pass and an on-call reader has no use for which engine ran which. "Expectation" stays GX's
word, in GX's own files and in the record's key. Each check says how many rows or values it looked at
(`checked`).

Tables: every table of the copy's plan (`plan`, the verdict per table) and every table the scrub reported
(`tables`): scrubbed (rewritten, streamed, rebuilt), emptied (schema_only or a subset) or untouched (no
sensitive column: shared with the clone, not rewritten).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NOT_SCRUBBED = ("untouched", "emptied")


@dataclass(frozen=True)
class Check:
    """One check of a run, from either of the record's lists, for display."""

    kind: str  # "quick" (deid's own) or "suite" (the expectation suite and the leak checks)
    name: str
    place: str  # table, table.column or sequence
    ok: bool
    unexpected: int | None  # rows or values that broke it; None: the check says it in its detail
    checked: int | None  # rows or values it looked at; None: not evaluated, or not counted
    allowed: int
    detail: str


@dataclass(frozen=True)
class RunCounts:
    checks: tuple[Check, ...]
    waived: int  # checks the rule file waives for a kept column: counted, not failing
    actions: dict[str, str]  # table -> scrubbed action, "emptied" or "untouched"
    rows_scrubbed: int
    sequences: int

    @property
    def passed(self) -> int:
        return sum(c.ok for c in self.checks)

    @property
    def failed(self) -> int:
        return len(self.checks) - self.passed

    @property
    def scrubbed(self) -> int:
        return sum(a not in NOT_SCRUBBED for a in self.actions.values())

    @property
    def emptied(self) -> int:
        return sum(a == "emptied" for a in self.actions.values())

    @property
    def untouched(self) -> int:
        return sum(a == "untouched" for a in self.actions.values())

    def checks_text(self) -> str:
        """The one way any view says the checks: 127 of 129 checks passed (and the waivers)."""
        text = f"{self.passed:,} of {len(self.checks):,} checks passed"
        return text + (f", {self.waived} waived" if self.waived else "")

    def tables_text(self) -> str:
        """The tables: scrubbed 30,000 rows in 3 tables; 1 emptied, 11 untouched (15 tables)."""
        text = f"scrubbed {self.rows_scrubbed:,} rows in {self.scrubbed} tables"
        rest = [f"{n} {word}" for n, word in ((self.emptied, "emptied"), (self.untouched, "untouched")) if n]
        rest_text = f"; {', '.join(rest)}" if rest else ""
        return f"{text}{rest_text} ({len(self.actions)} tables)"


def run_counts(record: Mapping[str, Any]) -> RunCounts:
    """The counts of `record`; any key may be missing or malformed (a run that failed early has few)."""
    suite = _dict(record.get("expectations"))
    checks = [_quick(c) for c in _list(record.get("checks"))]
    checks += [_suite(x) for x in _list(suite.get("expectations"))]
    tables = _dict(record.get("tables"))
    actions = {str(t): str(v) for t, v in _dict(record.get("plan")).items()}
    for table, fact in tables.items():
        actions[str(table)] = str(_dict(fact).get("action") or actions.get(str(table)) or "unknown")
    rows = sum(
        _int(_dict(tables.get(t)).get("rows")) or 0 for t, a in actions.items() if a not in NOT_SCRUBBED
    )
    return RunCounts(
        checks=tuple(checks),
        waived=len(_list(suite.get("waivers"))),
        actions=actions,
        rows_scrubbed=rows,
        sequences=len(_dict(record.get("offsets"))),
    )


def _quick(c: Mapping[str, Any]) -> Check:
    # deid's quick checks say their counts in words ("10 of 1000 sampled values equal production's")
    name, place = str(c.get("name") or "?"), str(c.get("subject") or "")
    return Check("quick", name, place, bool(c.get("ok")), None, _int(c.get("checked")), 0, _text(c, "detail"))


def _suite(x: Mapping[str, Any]) -> Check:
    place = ".".join(str(p) for p in (x.get("table"), x.get("column")) if p)
    return Check(
        "suite",
        str(x.get("expectation") or "?"),
        place,
        bool(x.get("ok")),
        _int(x.get("unexpected")),
        _int(x.get("checked")),
        _int(x.get("allowed")) or 0,
        _text(x, "detail"),
    )


def _text(d: Mapping[str, Any], key: str) -> str:
    return "" if d.get(key) is None else str(d[key])


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[dict]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list | tuple) else []
