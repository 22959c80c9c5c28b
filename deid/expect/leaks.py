"""Leak check (a): scrubbed values compared with production's, row by row and column-wide, as keyed digests.

For each table with a primary key (all of whose columns are kept) and scrubbed columns, a sample of rows is
read from the working copy: the key, the keyed digest of each scrubbed value, and for shift_date and noise
the scrubbed value itself (a de-identified value: what staging will hold). Production then reports, for the
same keys, only counts: how many sampled values equal production's own (`value_differs_from_production`),
how many shifted dates or noised numbers left their promised window (`value_within_promised_window`).
For transformers whose output is built unlike any real value (tagged fakes, hashes, reserved domains and
ranges), production also counts how many of the sampled digests occur anywhere in the same column
(`value_not_found_in_production`), scanning that column once per table.

Key values travel between the databases (IDs, kept unchanged by the rules); nothing else does but digests,
counts and the scrubbed values named above. Static test rows are left out on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from deid.expect.digests import KEY_PARAM, keyed
from deid.expect.report import Outcome
from deid.expect.settings import Settings
from deid.expect.sql import not_static, quote_ident, quote_table
from deid.names import column_key
from deid.plan import ColumnAction, Plan, TablePlan
from deid.schema import Column, Kind, Schema, Table
from deid.steps.validate import MAY_COINCIDE

# fake.ipv4 is not here: its 768 documentation addresses are also used by real systems (and by test data)
_UNLIKE_ANY_REAL_VALUE = ("fake.email", "fake.url", "fake.ipv6", "fake.phone")


@dataclass(frozen=True)
class _Compared:
    action: ColumnAction
    column: Column

    @property
    def relative(self) -> bool:
        return self.action.transformer in ("shift_date", "noise")


def leak_outcomes(
    production: sa.Connection,
    work: sa.Connection,
    plan: Plan,
    schema: Schema,
    key: bytes,
    settings: Settings,
    tallied: frozenset[str] = frozenset(),
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for table_plan in plan.tables:
        table = schema.table(table_plan.table)
        if table is None or table_plan.copy != "full" or not table.primary_key:
            continue
        if any(a.rewrites for a in table_plan.actions if a.column in table.primary_key):
            continue  # a rewritten key cannot match rows across the databases
        compared = [
            _Compared(a, c)
            for a in table_plan.rewritten
            if a.transformer != "null" and (c := table.column(a.column)) is not None and not c.generated
        ]
        # columns the stream counted every row of (expect.tallied) keep only the window checks here
        compared = [
            c for c in compared if c.relative or column_key(table_plan.table, c.action.column) not in tallied
        ]
        if compared:
            outcomes += _table(production, work, table, table_plan, compared, key, settings)
    return outcomes


def _sample_sql(table: Table, table_plan: TablePlan, compared: list[_Compared], size: int) -> str:
    keys = [f"({quote_ident(k)})::text" for k in table.primary_key]
    values = [
        f"({quote_ident(c.action.column)})::text" if c.relative else keyed(quote_ident(c.action.column))
        for c in compared
    ]
    sample = ""
    if table.row_estimate > 10 * size:
        # whole random blocks, spread over the table, instead of the first rows by key (often the oldest)
        percent = min(100.0, 300.0 * size / table.row_estimate)
        sample = f" TABLESAMPLE SYSTEM ({percent:.6f}) REPEATABLE (0)"
    return (
        f"SELECT {', '.join(keys + values)} FROM {quote_table(table.qualified)}{sample} "
        f"{not_static(table_plan)} LIMIT {size}"
    )


def _table(
    production: sa.Connection,
    work: sa.Connection,
    table: Table,
    table_plan: TablePlan,
    compared: list[_Compared],
    key: bytes,
    settings: Settings,
) -> list[Outcome]:
    rows = work.execute(
        sa.text(_sample_sql(table, table_plan, compared, settings.sample_rows)), {KEY_PARAM: key}
    ).all()
    if not rows:
        return []
    width = len(table.primary_key)
    params: dict[str, object] = {KEY_PARAM: key}
    unnest, names = [], []
    for i, name in enumerate(table.primary_key):
        column = table.column(name)
        assert column is not None
        params[f"k{i}"] = [r[i] for r in rows]
        unnest.append(f"CAST(:k{i} AS {column.data_type}[])")
        names.append(f"k{i}")
    for j, c in enumerate(compared):
        params[f"v{j}"] = [r[width + j] for r in rows]
        unnest.append(f"CAST(:v{j} AS {'text' if c.relative else 'bytea'}[])")
        names.append(f"v{j}")
    join = " AND ".join(f"t.{quote_ident(k)} = s.k{i}" for i, k in enumerate(table.primary_key))
    counts = ["count(*)"]
    for j, c in enumerate(compared):
        value = f"t.{quote_ident(c.action.column)}"
        counts.append(f"count({value})")
        counts.append(_broken(c, value, f"s.v{j}"))
    query = (
        f"SELECT {', '.join(counts)} FROM unnest({', '.join(unnest)}) AS s({', '.join(names)}) "
        f"JOIN {quote_table(table.qualified)} AS t ON {join}"
    )
    found = production.execute(sa.text(query), params).one()
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
        outcomes += _found_in_production(production, table, table_plan, compared, rows, width, key)
    return outcomes


def _broken(c: _Compared, value: str, sampled: str) -> str:
    """count(...) of sampled rows where the scrubbed value breaks the promise relative to production's."""
    if not c.relative:
        return f"count(*) FILTER (WHERE {keyed(value)} = {sampled})"
    scrubbed = f"CAST({sampled} AS {c.column.data_type})"
    presence = f"(({value}) IS NULL) <> ({sampled} IS NULL)"
    if c.action.transformer == "shift_date":
        days = (
            f"({scrubbed} - {value})"
            if c.column.kind is Kind.DATE
            else f"(extract(epoch FROM {scrubbed} - {value}) / 86400)"
        )
        inside = f"abs({days}) BETWEEN 1 AND {int(c.action.params['days'])} AND {days} = trunc({days})"
    else:  # noise: |scrubbed - value| <= relative * |value|, plus rounding for integers
        slack = 0.5 if c.column.kind is Kind.INTEGER else 1e-9
        inside = (
            f"abs(({scrubbed})::numeric - ({value})::numeric) "
            f"<= {float(c.action.params['relative'])!r} * abs(({value})::numeric) + {slack!r}"
        )
    return f"count(*) FILTER (WHERE {presence} OR ({value} IS NOT NULL AND NOT ({inside})))"


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
    compared: list[_Compared],
    rows: list,
    width: int,
    key: bytes,
) -> list[Outcome]:
    checked: Mapping[int, _Compared] = {
        j: c for j, c in enumerate(compared) if not c.relative and _searchable(c.action)
    }
    if not checked:
        return []
    pairs = sorted({(j, r[width + j]) for j in checked for r in rows if r[width + j] is not None})
    values = ", ".join(f"({j}, {keyed('t.' + quote_ident(c.action.column))})" for j, c in checked.items())
    query = (
        f"SELECT v._deid_col, count(DISTINCT v._deid_d) FROM {quote_table(table.qualified)} AS t "
        f"CROSS JOIN LATERAL (VALUES {values}) AS v(_deid_col, _deid_d) "
        f"JOIN unnest(CAST(:cols AS int[]), CAST(:digests AS bytea[])) AS s(_deid_col, _deid_d) "
        f"ON s._deid_col = v._deid_col AND s._deid_d = v._deid_d {not_static(table_plan)} "
        "GROUP BY v._deid_col"
    )
    found = dict(
        production.execute(
            sa.text(query), {KEY_PARAM: key, "cols": [p[0] for p in pairs], "digests": [p[1] for p in pairs]}
        ).all()
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
