"""Leak check (a): scrubbed values compared with production's, row by row and column-wide, as keyed digests.

For each table with a primary key (all of whose columns are kept) and scrubbed columns, a sample of rows is
read from the working copy: the key, the keyed digest of each scrubbed value, and for shift_date and noise
the scrubbed value itself (a de-identified value: what staging will hold). Production then reports, for the
same keys, only counts: how many sampled values equal production's own (`value_differs_from_production`),
how many shifted dates or noised numbers left their promised window (`value_within_promised_window`).
For transformers whose output is built unlike any real value (tagged fakes, hashes, reserved domains and
ranges), production also counts how many of the sampled digests occur anywhere in the same column
(`value_not_found_in_production`), scanning that column once per table.

The engine's dialect spells and runs the queries (ValidationDialect.leak_sample, leak_counts,
found_in_production). Key values travel between the databases (IDs, kept unchanged by the rules); nothing
else does but digests, counts and the scrubbed values named above. Static test rows are left out on both
sides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa

from deid.backends.base import ValidationDialect
from deid.expect.report import Outcome
from deid.expect.settings import Settings
from deid.names import column_key
from deid.plan import ColumnAction, Plan, TablePlan
from deid.schema import Column, Kind, Schema, Table
from deid.steps.validate import MAY_COINCIDE

# fake.ipv4 is not here: its 768 documentation addresses are also used by real systems (and by test data)
_UNLIKE_ANY_REAL_VALUE = ("fake.email", "fake.url", "fake.ipv6", "fake.phone")


@dataclass(frozen=True)
class Window:
    """How far a relative transformer may move a value from production's: shift_date by whole days, at
    least 1 and at most `days`; noise by at most `factor` * |value| + `slack` (rounding, for integers)."""

    days: int | None = None
    factor: float = 0.0
    slack: float = 0.0


@dataclass(frozen=True)
class Compared:
    """A scrubbed column compared with production on the key sample."""

    action: ColumnAction
    column: Column

    @property
    def relative(self) -> bool:
        return self.action.transformer in ("shift_date", "noise")

    @property
    def window(self) -> Window:
        if self.action.transformer == "shift_date":
            return Window(days=int(self.action.params["days"]))
        slack = 0.5 if self.column.kind is Kind.INTEGER else 1e-9
        return Window(factor=float(self.action.params["relative"]), slack=slack)


def leak_outcomes(
    production: sa.Connection,
    work: sa.Connection,
    plan: Plan,
    schema: Schema,
    key: bytes,
    settings: Settings,
    tallied: frozenset[str] = frozenset(),
    dialect: ValidationDialect | None = None,
) -> list[Outcome]:
    from deid.expect.sql import dialect_of

    d = dialect or dialect_of(production)
    outcomes: list[Outcome] = []
    for table_plan in plan.tables:
        table = schema.table(table_plan.table)
        if table is None or table_plan.copy != "full" or not table.primary_key:
            continue
        if any(a.rewrites for a in table_plan.actions if a.column in table.primary_key):
            continue  # a rewritten key cannot match rows across the databases
        compared = [
            Compared(a, c)
            for a in table_plan.rewritten
            if a.transformer != "null" and (c := table.column(a.column)) is not None and not c.generated
        ]
        # columns the stream counted every row of (expect.tallied) keep only the window checks here
        compared = [
            c for c in compared if c.relative or column_key(table_plan.table, c.action.column) not in tallied
        ]
        if compared:
            outcomes += _table(production, work, table, table_plan, compared, key, settings, d)
    return outcomes


def _table(
    production: sa.Connection,
    work: sa.Connection,
    table: Table,
    table_plan: TablePlan,
    compared: list[Compared],
    key: bytes,
    settings: Settings,
    d: ValidationDialect,
) -> list[Outcome]:
    rows = d.leak_sample(work, table, table_plan, compared, settings.sample_rows, key)
    if not rows:
        return []
    width = len(table.primary_key)
    found = d.leak_counts(production, table, compared, rows, key)
    matched = found[0]
    outcomes = []
    for j, c in enumerate(compared):
        pairs, broken = found[1 + 2 * j], found[2 + 2 * j]
        if c.relative:
            outcomes.append(
                Outcome(
                    "value_within_promised_window",
                    table.qualified,
                    c.action.column,
                    broken == 0,
                    broken,
                    matched,
                    0,
                    f"{c.action.transformer}: sampled rows matched by primary key",
                )
            )
            continue
        allowed = int(MAY_COINCIDE.get(c.action.transformer, 0.0) * pairs)
        outcomes.append(
            Outcome(
                "value_differs_from_production",
                table.qualified,
                c.action.column,
                broken <= allowed,
                broken,
                pairs,
                allowed,
                "sampled rows matched by primary key, compared as keyed digests",
            )
        )
    if settings.search_production:
        outcomes += _found_in_production(production, table, table_plan, compared, rows, width, key, d)
    return outcomes


def allowance(action: ColumnAction, sampled: int, production_rows: int) -> int | None:
    """How many sampled values may occur in production's column by chance; None: not checked, because the
    transformer picks from values real data also holds (dictionary names, ZIP3s, shifted dates)."""
    name, params = action.transformer, action.params
    if name == "hash" and params["format"] == "digits":
        # n-digit outputs are drawn from 10^n: a few may equal another real number by chance
        expected = sampled * production_rows / 10 ** params["pattern"].count("#")
        return math.ceil(expected + 4 * math.sqrt(expected))
    tagged = name.startswith("fake.") and params.get("unique")
    if name == "hash" or name in _UNLIKE_ANY_REAL_VALUE or tagged:
        return 0
    return None


def _searchable(action: ColumnAction) -> bool:
    """Whether finding a scrubbed value in production's column says something (see _allowance)."""
    return allowance(action, sampled=1, production_rows=1) is not None


def _found_in_production(
    production: sa.Connection,
    table: Table,
    table_plan: TablePlan,
    compared: list[Compared],
    rows: list,
    width: int,
    key: bytes,
    d: ValidationDialect,
) -> list[Outcome]:
    checked = {j: c for j, c in enumerate(compared) if not c.relative and _searchable(c.action)}
    if not checked:
        return []
    pairs = sorted({(j, bytes(r[width + j])) for j in checked for r in rows if r[width + j] is not None})
    found = d.found_in_production(
        production, table, table_plan, {j: c.column for j, c in checked.items()}, pairs, key
    )
    outcomes = []
    for j, c in checked.items():
        sampled = sum(1 for p in pairs if p[0] == j)
        allowed = allowance(c.action, sampled, max(table.row_estimate, 0)) or 0
        hits = found.get(j, 0)
        outcomes.append(
            Outcome(
                "value_not_found_in_production",
                table.qualified,
                c.action.column,
                hits <= allowed,
                hits,
                sampled,
                allowed,
                "distinct sampled values looked up in production's whole column, as keyed digests",
            )
        )
    return outcomes
