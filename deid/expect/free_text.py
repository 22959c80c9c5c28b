"""Free text (c): kept text columns must not mention production's emails or full names.

Identifiers come from the scrubbed columns, by their transformer: emails (fake.email, hash with format
email, and fake.email inside json), full names (fake.name, and fake.first_name with fake.last_name of the
same row as "first last"). Tokens come from at most `free_text_rows` rows of each kept text column of the
working copy: every email-shaped word, and every pair of adjacent words (a full name is two words).

Both sides are lower-cased with blanks collapsed, then hashed with the run's key in their own database. The
working copy's token digests go to production, which returns the ones it also holds; the column fails when
more than `free_text_max_hits` distinct identifiers match. Guarantee: a production email, or a full name
written as its first and last name next to each other, in a sampled row of a kept column is found. A
first name alone, a misspelled or reordered name, or a mention outside the sampled rows is not.

A column whose rule waives `production_identifiers` (deid.expect.waivable) is still read and counted, but
reported as waived instead of failing.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from deid.expect.digests import KEY_PARAM, keyed
from deid.expect.kept import kept_text
from deid.expect.report import Outcome, Waived
from deid.expect.settings import Settings
from deid.expect.sql import literal, not_static, quote_ident, quote_table, regex_literal
from deid.expect.waivable import PRODUCTION_IDENTIFIERS
from deid.plan import Plan, TablePlan
from deid.schema import Schema

EMAIL = r"([A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
_WORD_BREAK = r"[^[:alpha:]'-]+"


def _normal(sql: str) -> str:
    # lower-cased and trimmed; no regexp_replace of inner blanks: it would cost more than the hashing
    return f"lower(btrim({sql}))"


def identifier_sources(table_plan: TablePlan) -> list[str]:
    """SQL expressions of the production identifiers this table's scrubbed columns held."""
    if table_plan.copy != "full":
        return []
    by_name = {a.column: a for a in table_plan.rewritten}
    sources = []
    for action in by_name.values():
        column = quote_ident(action.column)
        fmt = action.params.get("format")
        if action.transformer in ("fake.email", "fake.name") or (
            action.transformer == "hash" and fmt == "email"
        ):
            sources.append(f"({column})::text")
        elif action.transformer == "json":
            from deid.transformers.structured import nested

            for _, steps, transformer, _ in nested(action.params["paths"]):
                if transformer.name in ("fake.email", "fake.name"):
                    path = ", ".join(literal(s) for s in steps)
                    sources.append(f"(({column})::jsonb #>> ARRAY[{path}]::text[])")
    firsts = [c for c, a in by_name.items() if a.transformer == "fake.first_name"]
    lasts = [c for c, a in by_name.items() if a.transformer == "fake.last_name"]
    for first in firsts:
        for last in lasts:
            sources.append(f"({quote_ident(first)} || ' ' || {quote_ident(last)})")
    return sources


def _tokens_sql(table_plan: TablePlan, content: str, rows: int | None) -> str:
    limit = f" LIMIT {rows}" if rows is not None else ""
    # each distinct text tokenized once: kept text repeats (statuses, cities), and the regexes cost the most
    return (
        f"SELECT DISTINCT {keyed('x.token')} FROM (SELECT DISTINCT s.v FROM (SELECT {content} AS v FROM "
        f"{quote_table(table_plan.table)} {not_static(table_plan)}{limit}) AS s) AS r, LATERAL ("
        f"SELECT lower(m.found[1]) FROM regexp_matches(r.v, {regex_literal(EMAIL)}, 'g') AS m(found) "
        f"UNION ALL SELECT w.words[i] || ' ' || w.words[i + 1] "
        f"FROM regexp_split_to_array(lower(r.v), {regex_literal(_WORD_BREAK)}) AS w(words), "
        f"generate_subscripts(w.words, 1) AS i WHERE i < array_length(w.words, 1)) AS x(token)"
    )


def free_text_outcomes(
    production: sa.Connection,
    work: sa.Connection,
    plan: Plan,
    schema: Schema,
    key: bytes,
    settings: Settings,
    compared: Plan | None = None,
) -> tuple[list[Outcome], list[Waived]]:
    """`plan` describes the copy, whose kept text is read; `compared` the part production can answer for,
    whose identifiers are looked for (default: all of `plan`). Returns the outcomes of the columns, and the
    counts of the columns whose rule waives the check."""
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
        for column, content in kept_text(table, table_plan):
            digests = work.execute(
                sa.text(_tokens_sql(table_plan, content, settings.free_text_rows)), {KEY_PARAM: key}
            ).scalars()
            count = 0
            for digest in digests:
                owners[bytes(digest)].add((table_plan.table, column))
                count += 1
            targets.append((table_plan.table, column, count))
    if not targets:
        return [], []
    found: set[bytes] = set()
    if owners:
        tokens = list(owners)
        plans = {tp.table: tp for tp in compared.tables}
        for table_name, expressions in sources.items():
            values = ", ".join(f"({keyed(_normal(e))})" for e in expressions)
            where = not_static(plans[table_name]) or "WHERE true"
            query = (
                f"SELECT DISTINCT v._deid_d FROM {quote_table(table_name)} "
                f"CROSS JOIN LATERAL (VALUES {values}) AS v(_deid_d) {where} "
                f"AND v._deid_d = ANY(CAST(:tokens AS bytea[]))"
            )
            matched = production.execute(sa.text(query), {KEY_PARAM: key, "tokens": tokens}).scalars()
            found |= {bytes(d) for d in matched}
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
