"""PostgreSQL's PII scan of kept text (deid.expect.pii says which patterns and why): regular expressions
(ARE), the Luhn check in SQL, and one read of the sampled rows per table, each distinct value tested once."""

from __future__ import annotations

from collections.abc import Sequence

from deid.backends.postgresql.validation.names import literal, quote_ident, quote_table, regex_literal
from deid.expect.pii import CARD, HEX_KEY, PATTERNS, WITHOUT_KEYS
from deid.expect.settings import Settings
from deid.expect.sql import not_static
from deid.plan import TablePlan


def kept_text(column: str, array: bool) -> str:
    name = quote_ident(column)
    return f"array_to_string({name}, ' ')" if array else f"({name})::text"


def _luhn(digits: str) -> str:
    """SQL: true when the digit string passes the Luhn check (every second digit from the right doubled)."""
    x = "substr(reverse(" + digits + "), i, 1)::int"
    return (
        f"(SELECT mod(sum(CASE WHEN mod(i, 2) = 0 THEN {x} * 2 - CASE WHEN {x} >= 5 THEN 9 ELSE 0 END "
        f"ELSE {x} END), 10) = 0 FROM generate_series(1, length({digits})) AS i)"
    )


def card_number(value: str) -> str:
    """SQL: true when the text holds a 13- to 19-digit number (blanks or dashes allowed) passing Luhn."""
    digits = "regexp_replace(m.found[1], '[^0-9]', '', 'g')"
    return (
        f"{value} ~ {regex_literal(CARD)} AND EXISTS (SELECT 1 FROM regexp_matches({value}, "
        f"{regex_literal('(' + CARD + ')')}, 'g') AS m(found) WHERE {_luhn(digits)})"
    )


def without_hex_keys(value: str) -> str:
    """SQL: the text with each UUID and hex key replaced by a blank (a blank keeps a neighbour's boundary)."""
    return f"regexp_replace({value}, {regex_literal(HEX_KEY)}, ' ', 'g')"


def pii_test(check: str, text: str, keyless: str) -> str:
    """SQL: true when `text` matches the pattern `check`; phone and card read `keyless` (without_hex_keys)."""
    if check == "card_number":
        return card_number(keyless)
    return f"{keyless if check in WITHOUT_KEYS else text} ~ {regex_literal(PATTERNS[check])}"


def pii_scan_query(
    table_plan: TablePlan, columns: Sequence[tuple[str, str, tuple[str, ...]]], settings: Settings
) -> str:
    """One read of the table's sampled rows: a row (column_name, pattern, unexpected, checked) per column
    and check of `columns` (name, SQL of its text, the checks to count). Each column's patterns are tested
    once per distinct value and weighted by its rows: kept text repeats (statuses, cities, currencies), and
    the regexes are what the scan costs (2.3 s of the benchmark's validation, 0.1 s grouped)."""
    selected, grouped, values = [], [], []
    for i, (name, content, checks) in enumerate(columns):
        selected.append(f"{content} AS c{i}")
        keyless = f", {without_hex_keys(f'c{i}')} AS k{i}" if any(c in WITHOUT_KEYS for c in checks) else ""
        sums = []
        for check in checks:
            sums.append(
                f"coalesce(sum(g.w) FILTER (WHERE {pii_test(check, f'g.c{i}', f'g.k{i}')}), 0) AS {check}"
            )
            values.append(f"({literal(name)}, {literal(check)}, s{i}.{check})")
        grouped.append(
            f"CROSS JOIN (SELECT {', '.join(sums)} FROM (SELECT c{i}{keyless}, count(*) AS w FROM r "
            f"GROUP BY c{i}) AS g) AS s{i}"
        )
    limit = f" LIMIT {settings.pii_scan_rows}" if settings.pii_scan_rows is not None else ""
    return (
        f"WITH r AS MATERIALIZED (SELECT {', '.join(selected)} FROM {quote_table(table_plan.table)} "
        f"{not_static(table_plan)}{limit}) "
        "SELECT v.column_name, v.pattern, v.unexpected, s.n AS checked "
        "FROM (SELECT count(*) AS n FROM r) AS s "
        f"{' '.join(grouped)} CROSS JOIN LATERAL (VALUES {', '.join(values)}) "
        f"AS v(column_name, pattern, unexpected)"
    )
