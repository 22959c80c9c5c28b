"""Rule files as typed, immutable objects. Loading and checking live in `load.py` and `coverage.py`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from deid.rules.condition import Condition

CopyMode = Literal["full", "schema_only"]


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Waiver:
    """One validation check (deid.expect.waivable) that does not fail one kept column, and why: the
    check still runs and its count is reported, but it lets the column pass."""

    check: str
    reason: str
    line: int


@dataclass(frozen=True)
class ColumnRule:
    name: str
    transformer: str  # always resolved: a rule that names a class gets the policy's transformer here
    params: Mapping[str, Any]  # parsed, defaults filled in
    line: int
    identifier_class: str | None = None
    reason: str | None = None
    waivers: tuple[Waiver, ...] = ()  # only on kept columns (the loader refuses them elsewhere)

    @property
    def source(self) -> str:
        """How the rule chose its transformer, for plans and reports."""
        return f"class {self.identifier_class}" if self.identifier_class else "rule"

    def waiver(self, check: str) -> Waiver | None:
        return next((w for w in self.waivers if w.check == check), None)

    def describe(self) -> dict[str, Any]:
        """The rule as canonical data, without line numbers: two rules that scrub and validate a column
        alike describe alike (for diffs of plans and rule files). Keys with no value are left out."""
        described: dict[str, Any] = {"transformer": self.transformer}
        if self.identifier_class:
            described["class"] = self.identifier_class
        if self.params:
            described["params"] = {k: self.params[k] for k in sorted(self.params)}
        if self.reason:
            described["reason"] = self.reason
        if self.waivers:
            described["waive"] = {w.check: w.reason for w in sorted(self.waivers, key=lambda w: w.check)}
        return described


# A row condition keeps static test data: a handful of labelled accounts, never most of a table. Unless a
# table says otherwise (keep_rows_at_most, with a reason), at most this many rows, or this share if larger,
# and never every row.
DEFAULT_STATIC_ROWS = 10
DEFAULT_STATIC_PERCENT = 1.0


@dataclass(frozen=True)
class RowLimit:
    """How many rows `keep_rows_where` may keep: `rows`, or `percent` of the table, or by default
    DEFAULT_STATIC_ROWS or DEFAULT_STATIC_PERCENT (whichever is larger) and fewer than all."""

    rows: int | None = None
    percent: float | None = None
    reason: str | None = None  # why a table keeps more than the default; required when set

    def allowed(self, total: int) -> int:
        if self.rows is not None:
            return self.rows
        if self.percent is not None:
            return int(total * self.percent / 100)
        default = max(DEFAULT_STATIC_ROWS, int(total * DEFAULT_STATIC_PERCENT / 100))
        return min(default, max(total - 1, 0))

    def allowed_sql(self, total_sql: str) -> str:
        """`allowed` as an SQL expression of the table's row count `total_sql` (for validation's query)."""
        if self.rows is not None:
            return str(int(self.rows))
        if self.percent is not None:
            return f"floor({total_sql} * {float(self.percent)!r} / 100)"
        default = f"greatest({DEFAULT_STATIC_ROWS}, floor({total_sql} * {DEFAULT_STATIC_PERCENT!r} / 100))"
        return f"least({default}, greatest({total_sql} - 1, 0))"

    def describe(self) -> str:
        if self.rows is not None:
            return f"at most {self.rows} rows (keep_rows_at_most)"
        if self.percent is not None:
            return f"at most {self.percent:g}% of the rows (keep_rows_at_most)"
        return (
            f"by default at most {DEFAULT_STATIC_ROWS} rows or {DEFAULT_STATIC_PERCENT:g}% of the table, "
            "whichever is more, and never every row"
        )


TriggerAction = Literal["recompute", "silent"]


@dataclass(frozen=True)
class TriggerRule:
    """What the scrub does with one trigger of the table: `recompute` fires it during the scrub's rewrite
    (a BEFORE ROW trigger then derives its columns from the scrubbed values); `silent` (the default for
    triggers whose effects deid can read) keeps it quiet, and needs a reason when deid cannot read them."""

    name: str
    action: TriggerAction
    line: int
    reason: str | None = None


@dataclass(frozen=True)
class TableRule:
    name: str  # qualified "schema.table"
    columns: tuple[ColumnRule, ...]
    line: int
    copy: CopyMode = "full"
    keep_rows_where: Condition | None = None  # static test data: rows matching it are not scrubbed
    keep_rows_where_line: int = 0
    keep_rows_at_most: RowLimit = field(default_factory=RowLimit)
    triggers: tuple[TriggerRule, ...] = ()
    key: str = ""  # the table's key as written in the file (`users` for public.users), for edits to the file

    def trigger(self, name: str) -> TriggerRule | None:
        return next((t for t in self.triggers if t.name == name), None)

    def column(self, name: str) -> ColumnRule | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class IdentifierClass:
    name: str
    description: str
    citation: str
    transformer: str
    params: Mapping[str, Any]
    line: int


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    file: str
    classes: tuple[IdentifierClass, ...]

    def get(self, name: str) -> IdentifierClass | None:
        return next((c for c in self.classes if c.name == name), None)


@dataclass(frozen=True)
class LargeObjects:
    """What the scrub does with the database's large objects (objects outside any table), which belong to
    no column: `drop` unlinks every one of them in the copy; `keep` keeps them, with the reason their contents
    hold no identifier. None in a RuleFile: not said, which fails a run on a copy that holds any."""

    action: Literal["drop", "keep"]
    line: int
    reason: str | None = None


@dataclass(frozen=True)
class RuleFile:
    file: str
    database: str
    policy: Policy
    tables: tuple[TableRule, ...]
    digest: str = field(default="")  # sha256 of the file's bytes, for run records
    large_objects: LargeObjects | None = None

    def table(self, name: str) -> TableRule | None:
        return next((t for t in self.tables if t.name == name), None)
