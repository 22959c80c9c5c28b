"""Rule files as typed, immutable objects. Loading and checking live in `load.py` and `coverage.py`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from deid.rules.condition import Condition

CopyMode = Literal["full", "schema_only"]
COPY_MODES: tuple[str, ...] = ("full", "schema_only")


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class ColumnRule:
    name: str
    transformer: str  # always resolved: a rule that names a class gets the policy's transformer here
    params: Mapping[str, Any]  # parsed, defaults filled in
    line: int
    identifier_class: str | None = None
    reason: str | None = None

    @property
    def source(self) -> str:
        """How the rule chose its transformer, for plans and reports."""
        return f"class {self.identifier_class}" if self.identifier_class else "rule"


@dataclass(frozen=True)
class TableRule:
    name: str  # qualified "schema.table"
    columns: tuple[ColumnRule, ...]
    line: int
    copy: CopyMode = "full"
    keep_rows_where: Condition | None = None  # static test data: rows matching it are not scrubbed
    keep_rows_where_line: int = 0

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
class RuleFile:
    file: str
    database: str
    policy: Policy
    tables: tuple[TableRule, ...]
    digest: str = field(default="")  # sha256 of the file's bytes, for run records

    def table(self, name: str) -> TableRule | None:
        return next((t for t in self.tables if t.name == name), None)
