"""Content evidence for `deid scan`: per column, how many sampled values match each identifier format.

Counting happens in the database, so only counts leave it. The exception is documents (json, jsonb, and
text or xml holding them), whose key paths only Python walks well: `documents()` yields their text for the
caller to parse in memory, never to print or keep. Every query reads at most `rows` rows of one table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sqlalchemy as sa

from deid.backends.postgresql.validation.names import quote_ident, quote_table, regex_literal
from deid.backends.postgresql.validation.pii import pii_test, without_hex_keys
from deid.expect.pii import PATTERNS
from deid.schema import Column, Kind, Table

# A value holding one of these is an identifier or a key; PATTERNS are the validation's own (deid.expect.pii)
_UUID = "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_WHOLE = {
    "uuid": f"^{_UUID}$",
    "hex_key": "^[A-Za-z]{0,8}[_-]?[0-9A-Fa-f]{16,}$",
    "url": r"^(https?://|www\.)[^ ]+$",
    "ipv6": r"^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}$",
    "zip": "^[0-9]{5}(-[0-9]{4})?$",
    "date": "^(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]",
}
DOCUMENT_START = r"^\s*[\[{<]"


def _sampled(table: Table, rows: int, where: str = "") -> str:
    """FROM clause of a bounded sample: up to `rows` rows from blocks spread over the whole table (a
    repeatable TABLESAMPLE, so a scan reads the same rows twice), not its first rows, which hold the oldest
    data of a large table. A small table is read from the start."""
    source = quote_table(table.qualified)
    if table.row_estimate > 2 * rows:
        # about `rows` rows in all: the sample comes in block order, so a larger one cut by LIMIT would
        # again be the table's first part
        percent = 100.0 * rows / table.row_estimate
        source += f" TABLESAMPLE SYSTEM ({percent:.6f}) REPEATABLE (0)"
    return f"{source}{where} LIMIT {int(rows)}"


def _tests(v: str) -> dict[str, str]:
    """pattern -> SQL predicate on the text value `v` (never NULL where it is used)."""
    # validation's own tests (deid.expect.pii): phone and card numbers read the text with its UUIDs and hex
    # keys blanked out, as a key's digits are never a phone number
    keyless = without_hex_keys(v)
    tests = {check: pii_test(check, v, keyless) for check in ("email", "ssn", "phone", "card_number")}
    tests |= {
        "ipv4": f"{v} ~ {regex_literal('^' + PATTERNS['ipv4'].removeprefix('(^|[^0-9.])'))}",
        "person_first": f"lower({v}) = ANY(:first_names)",
        "person_last": f"lower({v}) = ANY(:last_names)",
        "person_full": f"{v} ~ '^[^ ]+ [^ ]+$' AND lower(split_part({v}, ' ', 1)) = ANY(:first_names) "
        f"AND lower(split_part({v}, ' ', 2)) = ANY(:last_names)",
        "document": f"{v} ~ {regex_literal(DOCUMENT_START)}",
    }
    tests.update({name: f"{v} ~ {regex_literal(regex)}" for name, regex in _WHOLE.items()})
    return tests


def _text_of(column: Column) -> str | None:
    """SQL for the column's value as text, or None when its kind holds no text worth sampling."""
    q = quote_ident(column.name)
    if column.kind is Kind.ARRAY:
        return f"array_to_string({q}, ' ')" if column.element_kind in (Kind.TEXT, Kind.OTHER) else None
    if column.kind in (Kind.TEXT, Kind.OTHER, Kind.JSON):
        return f"{q}::text"
    return None


def text_counts(
    connection: sa.Connection,
    table: Table,
    columns: Sequence[Column],
    rows: int,
    first_names: Sequence[str],
    last_names: Sequence[str],
) -> dict[str, dict[str, int]]:
    """column name -> {"sampled": non-NULL values read, pattern: values matching it} for text columns."""
    texts = [(c, _text_of(c)) for c in columns]
    texts = [(c, t) for c, t in texts if t is not None]
    if not texts:
        return {}
    selected, counts, keys = [], [], []
    for i, (column, text) in enumerate(texts):
        selected.append(f"{text} AS c{i}")
        counts.append(f"count(c{i})")
        keys.append((column.name, "sampled"))
        for pattern, test in _tests(f"c{i}").items():
            counts.append(f"count(*) FILTER (WHERE c{i} IS NOT NULL AND {test})")
            keys.append((column.name, pattern))
    query = (
        f"SELECT {', '.join(counts)} FROM (SELECT {', '.join(selected)} FROM {_sampled(table, rows)}) AS r"
    )
    values = connection.execute(
        sa.text(query), {"first_names": list(first_names), "last_names": list(last_names)}
    ).one()
    out: dict[str, dict[str, int]] = {}
    for (name, pattern), value in zip(keys, values, strict=True):
        out.setdefault(name, {})[pattern] = int(value)
    return out


def date_counts(connection: sa.Connection, table: Table, columns: Sequence[Column], rows: int) -> dict:
    """column name -> {"sampled": n, "birth_range": dates 10 to 110 years before today} for date columns."""
    dated = [c for c in columns if c.kind in (Kind.DATE, Kind.TIMESTAMP)]
    if not dated:
        return {}
    parts = []
    for c in dated:
        q = quote_ident(c.name)
        parts += [
            f"count({q})",
            f"count(*) FILTER (WHERE {q}::date BETWEEN current_date - interval '110 years' "
            "AND current_date - interval '10 years')",
        ]
    query = f"SELECT {', '.join(parts)} FROM (SELECT * FROM {_sampled(table, rows)}) r"
    values = connection.execute(sa.text(query)).one()
    return {
        c.name: {"sampled": int(values[2 * i]), "birth_range": int(values[2 * i + 1])}
        for i, c in enumerate(dated)
    }


def documents(connection: sa.Connection, table: Table, column: Column, rows: int) -> Iterator[str]:
    """The text of up to `rows` sampled documents of the column, for parsing in memory only."""
    q = quote_ident(column.name)
    query = f"SELECT {q}::text FROM " + _sampled(
        table, rows, f" WHERE {q} IS NOT NULL AND {q}::text ~ {regex_literal(DOCUMENT_START)}"
    )
    for (text,) in connection.execute(sa.text(query)):
        yield text


def large_objects(connection: sa.Connection) -> int:
    from deid.backends.postgresql.large_objects import count

    return count(connection)
