"""MySQL's and MariaDB's PII scan of kept text (deid.expect.pii says which patterns and why).

One read of the sampled rows per table: each row's text tested against each pattern (no grouping by
distinct value, which would read the rows again per column: a CTE referenced twice is computed twice on
MariaDB). Card numbers: the first two 13- to 19-digit runs of a value are held to the Luhn check, spelled
as arithmetic on the digits (no generate_series, no array of matches on these servers).
"""

from __future__ import annotations

from collections.abc import Sequence

from deid.backends.mysql.validation.names import literal, quote_ident, quote_table, text, unpivot
from deid.expect.pii import CARD, HEX_KEY, PATTERNS, WITHOUT_KEYS
from deid.expect.settings import Settings
from deid.expect.sql import not_static
from deid.plan import TablePlan

_LONGEST_CARD = 19


def kept_text(column: str, array: bool) -> str:
    return text(quote_ident(column))  # no arrays on these servers


def without_hex_keys(value: str) -> str:
    """SQL: the text with each UUID and hex key replaced by a blank (a blank keeps a neighbour's boundary)."""
    return f"REGEXP_REPLACE({value}, {literal(HEX_KEY)}, ' ')"


def luhn(digits: str) -> str:
    """SQL: true when the digit string (13 to 19 digits) passes the Luhn check."""
    terms = []
    for i in range(1, _LONGEST_CARD + 1):
        x = f"CAST(SUBSTRING(REVERSE({digits}), {i}, 1) AS UNSIGNED)"
        term = x if i % 2 else f"({x} * 2 - CASE WHEN {x} >= 5 THEN 9 ELSE 0 END)"
        terms.append(f"CASE WHEN CHAR_LENGTH({digits}) >= {i} THEN {term} ELSE 0 END")
    return f"(CHAR_LENGTH({digits}) BETWEEN 13 AND {_LONGEST_CARD} AND MOD({' + '.join(terms)}, 10) = 0)"


def card_digits(value: str) -> tuple[str, str]:
    """SQL for the digits of the first and of the second card-like run of the text ('' when none)."""
    pattern = literal(CARD)
    first = f"REGEXP_SUBSTR({value}, {pattern})"
    rest = f"SUBSTRING({value}, REGEXP_INSTR({value}, {pattern}) + CHAR_LENGTH({first}))"
    second = f"REGEXP_SUBSTR({rest}, {pattern})"
    return tuple(f"COALESCE(REGEXP_REPLACE({m}, '[^0-9]', ''), '')" for m in (first, second))  # type: ignore


def pii_test(check: str, value: str, keyless: str, cards: tuple[str, str] = ("", "")) -> str:
    """SQL: true when the text matches the pattern `check`; phone reads `keyless`, card the digits of
    `keyless`'s first two card-like runs (`cards`, names of columns computed by card_digits)."""
    if check == "card_number":
        return f"({luhn(cards[0])} OR {luhn(cards[1])})"
    return f"{keyless if check in WITHOUT_KEYS else value} REGEXP {literal(PATTERNS[check])}"


def pii_scan_query(
    table_plan: TablePlan, columns: Sequence[tuple[str, str, tuple[str, ...]]], settings: Settings
) -> str:
    selected, derived, sums, rows = [], [], [], []
    for i, (name, content, checks) in enumerate(columns):
        selected.append(f"{content} AS c{i}")
        derived.append(f"r.c{i}")
        if any(c in WITHOUT_KEYS for c in checks):
            selected.append(f"{without_hex_keys(content)} AS k{i}")
            derived.append(f"r.k{i}")
        if "card_number" in checks:
            first, second = card_digits(f"r.k{i}")
            derived += [f"{first} AS a{i}", f"{second} AS b{i}"]
        for check in checks:
            test = pii_test(check, f"g.c{i}", f"g.k{i}", (f"g.a{i}", f"g.b{i}"))
            sums.append(f"COALESCE(SUM(CASE WHEN {test} THEN 1 ELSE 0 END), 0) AS h{len(rows)}")
            rows.append((name, check, f"h{len(rows)}"))
    limit = f" LIMIT {settings.pii_scan_rows}" if settings.pii_scan_rows is not None else ""
    sample = (
        f"SELECT {', '.join(selected)} FROM {quote_table(table_plan.table)} {not_static(table_plan)}{limit}"
    )
    derive = f"SELECT {', '.join(derived)} FROM ({sample}) AS r"
    scan = f"SELECT COUNT(*) AS n, {', '.join(sums)} FROM ({derive}) AS g"
    return (
        "SELECT v.column_name, v.pattern, v.unexpected, v.checked "
        f"FROM ({unpivot(scan, rows, ('column_name', 'pattern'), 'unexpected')}) AS v"
    )
