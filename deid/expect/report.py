"""What validation found: one Outcome per expectation, with names and counts only, never values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

from deid.errors import TerminalError
from deid.names import column_key


@dataclass(frozen=True)
class Outcome:
    expectation: str  # what was expected, e.g. "values_match_transformer_shape"
    table: str  # qualified table, or the sequence for sequence checks
    column: str | None
    ok: bool
    unexpected: int | None  # rows, values or tokens that broke the expectation
    checked: int | None = None  # how many were looked at, when known
    allowed: int = 0  # how many may break it by chance (sampled comparisons)
    detail: str = ""  # names and counts only

    @property
    def place(self) -> str:
        return column_key(self.table, self.column) if self.column else self.table

    def __str__(self) -> str:
        counts = f"{self.unexpected} unexpected" if self.unexpected is not None else "not evaluated"
        if self.checked is not None:
            counts += f" of {self.checked} checked"
        if self.allowed:
            counts += f" (allowed {self.allowed})"
        text = f"{'ok  ' if self.ok else 'FAIL'} {self.expectation} {self.place}: {counts}"
        return f"{text}; {self.detail}" if self.detail else text


@dataclass(frozen=True)
class Waived:
    """A check the rule file waives for one kept column (deid.expect.waivable), and what it found there:
    counted and reported, never failing. Every other check of the column, and of other columns, still runs."""

    table: str
    column: str
    check: str  # e.g. "phone", "production_identifiers"
    reason: str  # the rule file's words
    line: int  # of the waiver in the rule file
    matched: int | None  # rows (PII scan) or distinct identifiers (free text) it let pass; None: not counted
    checked: int | None = None

    @property
    def place(self) -> str:
        return column_key(self.table, self.column)

    def __str__(self) -> str:
        counts = "not counted" if self.matched is None else f"{self.matched} matched"
        if self.checked is not None:
            counts += f" of {self.checked} checked"
        return f"waived {self.check} {self.place}: {counts}; {self.reason} (rules line {self.line})"


@dataclass
class Report:
    database: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: suite, leaks, free_text
    waived: list[Waived] = field(default_factory=list)
    # Great Expectations' results in its own format (ExpectationSuiteValidationResult.to_json_dict(), one per
    # suite), kept beside the run record (deid.records.store), not in it
    gx_results: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def as_dict(self) -> dict:
        """For the run record: every expectation with its result."""
        return {
            "database": self.database,
            "ok": self.ok,
            "seconds": dict(self.seconds),
            "expectations": [asdict(o) for o in self.outcomes],
            "waivers": [{**asdict(w), "place": w.place} for w in self.waived],
        }


# expectations that read one sequence, not rows of a table
ONE_SEQUENCE = frozenset({"sequence_above_production"})


def with_checked(outcomes: list[Outcome], rows: Mapping[str, int]) -> list[Outcome]:
    """Every evaluated outcome with how many it looked at. A suite query returns its counts only when it
    fails (deid.expect.spec), so a passing one says nothing of what it read: a scan of a table read its
    rows, which the copy's own count (`rows`, table -> rows counted in the copy) gives; a sequence check
    read one sequence. An outcome that was not evaluated, or of a table with no count, keeps None."""
    done = []
    for o in outcomes:
        if o.checked is None and o.unexpected is not None:
            n = 1 if o.expectation in ONE_SEQUENCE else rows.get(o.table)
            o = replace(o, checked=n) if n is not None else o
        done.append(o)
    return done


def raise_on_failure(report: Report) -> None:
    """TerminalError naming each failed expectation's table, column and counts; nothing else."""
    failed = report.failed
    if failed:
        lines = "\n".join(f"  {o}" for o in failed)
        if report.waived:  # what the rule file let pass, so no one reads a failure as waived
            lines += "\nwaived by the rule file (not failing):\n" + "\n".join(f"  {w}" for w in report.waived)
        raise TerminalError(
            f"validation of {report.database} failed: {len(failed)} of the suite's {len(report.outcomes)} "
            f"checks; nothing was published.\n{lines}"
        )
