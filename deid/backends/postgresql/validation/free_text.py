"""PostgreSQL's queries of the free-text check (deid.expect.free_text says what is compared): tokens of kept
text split by regular expressions in the copy, keyed there; production's identifiers keyed in production,
the copy's token digests bound as an array."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from deid.backends.postgresql.validation.names import keyed, literal, quote_ident, quote_table, regex_literal
from deid.expect.digests import KEY_PARAM
from deid.expect.free_text import EMAIL, Identifier
from deid.expect.sql import not_static
from deid.plan import TablePlan

_WORD_BREAK = r"[^[:alpha:]'-]+"


def identifier_sql(identifier: Identifier) -> str:
    if identifier.path is not None:
        path = ", ".join(literal(s) for s in identifier.path)
        return f"(({quote_ident(identifier.columns[0])})::jsonb #>> ARRAY[{path}]::text[])"
    if len(identifier.columns) == 2:
        first, last = identifier.columns
        return f"({quote_ident(first)} || ' ' || {quote_ident(last)})"
    return f"({quote_ident(identifier.columns[0])})::text"


def _normal(sql: str) -> str:
    # lower-cased and trimmed; no regexp_replace of inner blanks: it would cost more than the hashing
    return f"lower(btrim({sql}))"


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


def token_digests(
    work: sa.Connection, table_plan: TablePlan, content: str, rows: int | None, key: bytes
) -> Iterable[bytes]:
    return (
        bytes(d)
        for d in work.execute(sa.text(_tokens_sql(table_plan, content, rows)), {KEY_PARAM: key}).scalars()
    )


def identifiers_found(
    production: sa.Connection,
    table_plan: TablePlan,
    identifiers: Sequence[str],
    tokens: Sequence[bytes],
    key: bytes,
) -> set[bytes]:
    values = ", ".join(f"({keyed(_normal(e))})" for e in identifiers)
    where = not_static(table_plan) or "WHERE true"
    query = (
        f"SELECT DISTINCT v._deid_d FROM {quote_table(table_plan.table)} "
        f"CROSS JOIN LATERAL (VALUES {values}) AS v(_deid_d) {where} "
        f"AND v._deid_d = ANY(CAST(:tokens AS bytea[]))"
    )
    return {
        bytes(d)
        for d in production.execute(sa.text(query), {KEY_PARAM: key, "tokens": list(tokens)}).scalars()
    }
