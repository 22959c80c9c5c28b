"""MySQL's and MariaDB's queries of the free-text check (deid.expect.free_text says what is compared).

Tokens are cut in the copy without arrays: a text becomes a JSON array of its words (runs of letters,
apostrophes and hyphens, lower-cased) or of its email-shaped chunks, which JSON_TABLE turns into rows;
adjacent words pair up by their ordinals. An email is the first match of the email pattern in a chunk of
the characters an address may hold (a chunk holding two addresses side by side gives only its first).
Production's identifiers are keyed in production; the copy's token digests reach it as IN lists of bound
values, CHUNK at a time (a statement stays well under max_allowed_packet), one scan of the table per
identifier and chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from deid.backends.mysql.validation.names import digest, key_params, keyed, literal, quote_ident, quote_table
from deid.backends.mysql.validation.shapes import json_text_at
from deid.expect.free_text import EMAIL, Identifier
from deid.expect.sql import not_static
from deid.plan import TablePlan

CHUNK = 20_000  # digests per statement: about 1.5 MB of SQL
_WORD_BREAK = r"[^\p{L}'-]+"  # Unicode letters, as PostgreSQL's [:alpha:] in a UTF-8 database
_NOT_EMAIL = r"[^A-Za-z0-9._+@-]+"  # characters no address holds


def identifier_sql(identifier: Identifier) -> str:
    if identifier.path is not None:
        return json_text_at(quote_ident(identifier.columns[0]), identifier.path)
    if len(identifier.columns) == 2:
        first, last = identifier.columns
        return f"CONCAT({quote_ident(first)}, ' ', {quote_ident(last)})"
    return f"CONVERT({quote_ident(identifier.columns[0])} USING utf8mb4)"


def _items(text: str, breaks: str, name: str) -> str:
    """JSON_TABLE of the parts of `text` between runs of `breaks` (parts hold no quote or backslash)."""
    parts = f"REPLACE(TRIM(REGEXP_REPLACE({text}, {literal(breaks)}, ' ')), ' ', '\",\"')"
    return (
        f"JSON_TABLE(CONCAT('[\"', {parts}, '\"]'), '$[*]' "
        f"COLUMNS (i FOR ORDINALITY, w VARCHAR(4000) PATH '$')) AS {name}"
    )


def _tokens_sql(table_plan: TablePlan, content: str, rows: int | None) -> str:
    limit = f" LIMIT {rows}" if rows is not None else ""
    email = literal(EMAIL)
    return (
        f"WITH r AS (SELECT DISTINCT s.v FROM (SELECT {content} AS v FROM {quote_table(table_plan.table)} "
        f"{not_static(table_plan)}{limit}) AS s) "
        f"SELECT DISTINCT {keyed('x.token')} FROM ("
        f"SELECT LOWER(REGEXP_SUBSTR(e.w, {email})) AS token FROM r, {_items('r.v', _NOT_EMAIL, 'e')} "
        f"WHERE e.w REGEXP {email} "
        f"UNION ALL SELECT CONCAT(a.w, ' ', b.w) FROM r, {_items('LOWER(r.v)', _WORD_BREAK, 'a')}, "
        f"{_items('LOWER(r.v)', _WORD_BREAK, 'b')} WHERE b.i = a.i + 1) AS x"
    )


def token_digests(
    work: sa.Connection, table_plan: TablePlan, content: str, rows: int | None, key: bytes
) -> Iterable[bytes]:
    found = work.execute(sa.text(_tokens_sql(table_plan, content, rows)), key_params(key)).scalars()
    return (digest(d) for d in found if d is not None)


def identifiers_found(
    production: sa.Connection,
    table_plan: TablePlan,
    identifiers: Sequence[str],
    tokens: Sequence[bytes],
    key: bytes,
) -> set[bytes]:
    found: set[bytes] = set()
    for expression in identifiers:
        query = sa.text(
            f"SELECT DISTINCT x.d FROM (SELECT {keyed(f'LOWER(TRIM({expression}))')} AS d "
            f"FROM {quote_table(table_plan.table)} {not_static(table_plan)}) AS x WHERE x.d IN :tokens"
        ).bindparams(sa.bindparam("tokens", expanding=True))
        for start in range(0, len(tokens), CHUNK):
            params = key_params(key) | {"tokens": [t.hex() for t in tokens[start : start + CHUNK]]}
            found |= {bytes.fromhex(d) for d in production.execute(query, params).scalars()}
    return found
