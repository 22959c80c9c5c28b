"""Free text (c): kept text columns must not mention production's emails or full names.

Identifiers come from the scrubbed columns, by their transformer: emails (fake.email, hash with format
email, and fake.email inside json), full names (fake.name, and fake.first_name with fake.last_name of the
same row as "first last"). Tokens come from at most `free_text_rows` rows of each kept text column of the
working copy: every email-shaped word, and every pair of adjacent words (a full name is two words).

Both sides are lower-cased with blanks collapsed, then hashed with the run's key in their own database (the
engine's dialect spells the tokens and the digests: ValidationDialect.token_digests, identifiers_found). The
working copy's token digests go to production, which returns the ones it also holds; the column fails when
more than `free_text_max_hits` distinct identifiers match. Guarantee: a production email, or a full name
written as its first and last name next to each other, in a sampled row of a kept column is found. A
first name alone, a misspelled or reordered name, or a mention outside the sampled rows is not.

A column whose rule waives `production_identifiers` (deid.expect.waivable) is still read and counted, but
reported as waived instead of failing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from deid.backends.base import ValidationDialect
from deid.expect.kept import kept_text
from deid.expect.report import Outcome, Waived
from deid.expect.settings import Settings
from deid.expect.waivable import PRODUCTION_IDENTIFIERS
from deid.plan import Plan, TablePlan
from deid.schema import Schema

EMAIL = r"([A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"


@dataclass(frozen=True)
class Identifier:
    """A production identifier a row held in its scrubbed columns: one column's text, the text at a `path`
    of one json column, or two columns' texts as "first last"."""

    columns: tuple[str, ...]
    path: tuple[str, ...] | None = None


def identifier_sources(table_plan: TablePlan) -> list[Identifier]:
    """The production identifiers this table's scrubbed columns held."""
    if table_plan.copy != "full":
        return []
    by_name = {a.column: a for a in table_plan.rewritten}
    sources = []
    for action in by_name.values():
        fmt = action.params.get("format")
        if action.transformer in ("fake.email", "fake.name") or (
            action.transformer == "hash" and fmt == "email"
        ):
            sources.append(Identifier((action.column,)))
        elif action.transformer == "json":
            from deid.transformers.structured import nested

            for _, steps, transformer, _ in nested(action.params["paths"]):
                if transformer.name in ("fake.email", "fake.name"):
                    sources.append(Identifier((action.column,), tuple(steps)))
    firsts = [c for c, a in by_name.items() if a.transformer == "fake.first_name"]
    lasts = [c for c, a in by_name.items() if a.transformer == "fake.last_name"]
    for first in firsts:
        for last in lasts:
            sources.append(Identifier((first, last)))
    return sources


def free_text_outcomes(
    production: sa.Connection,
    work: sa.Connection,
    plan: Plan,
    schema: Schema,
    key: bytes,
    settings: Settings,
    compared: Plan | None = None,
    dialect: ValidationDialect | None = None,
) -> tuple[list[Outcome], list[Waived]]:
    """`plan` describes the copy, whose kept text is read; `compared` the part production can answer for,
    whose identifiers are looked for (default: all of `plan`). Returns the outcomes of the columns, and the
    counts of the columns whose rule waives the check."""
    from deid.expect.sql import dialect_of

    d = dialect or dialect_of(production)
    compared = compared or plan
    sources = {tp.table: s for tp in compared.tables if (s := identifier_sources(tp))}
    if not sources:
        return [], []
    owners: dict[bytes, set[tuple[str, str]]] = defaultdict(set)
    targets: list[tuple[str, str, int]] = []
    for table_plan in plan.tables:
        table = schema.table(table_plan.table)
        if table is None:
            continue
        for column, content in kept_text(table, table_plan, d):
            count = 0
            for digest in d.token_digests(work, table_plan, content, settings.free_text_rows, key):
                owners[digest].add((table_plan.table, column))
                count += 1
            targets.append((table_plan.table, column, count))
    if not targets:
        return [], []
    found: set[bytes] = set()
    if owners:
        tokens = list(owners)
        plans = {tp.table: tp for tp in compared.tables}
        for table_name, identifiers in sources.items():
            expressions = [d.identifier_sql(i) for i in identifiers]
            found |= d.identifiers_found(production, plans[table_name], expressions, tokens, key)
    hits: dict[tuple[str, str], int] = defaultdict(int)
    for digest in found:
        for owner in owners[digest]:
            hits[owner] += 1
    waivers = {
        (tp.table, a.column): w
        for tp in plan.tables
        for a in tp.actions
        if (w := a.waiver(PRODUCTION_IDENTIFIERS))
    }
    outcomes, waived = [], []
    for table, column, count in targets:
        found_here = hits[(table, column)]
        waiver = waivers.get((table, column))
        if waiver is not None:
            waived.append(Waived(table, column, waiver.check, waiver.reason, waiver.line, found_here, count))
            continue
        outcomes.append(
            Outcome(
                "kept_text_without_production_identifiers",
                table,
                column,
                found_here <= settings.free_text_max_hits,
                found_here,
                count,
                settings.free_text_max_hits,
                "distinct production emails or full names among the sampled rows' tokens (keyed digests)",
            )
        )
    return outcomes, waived
