"""PII scan (b): kept text columns searched for emails, SSNs, phone numbers, card numbers and IPv4 addresses.

Per table, one read of at most `pii_scan_rows` rows (static test rows left out) counts, per kept column and
pattern, the rows that match; a count above `pii_max_hits` fails the column. Only counts leave the
database. Card numbers count only when their digits pass the Luhn check, which filters out most long
numbers that are not cards.
"""

from __future__ import annotations

from deid.expect.kept import kept_text
from deid.expect.settings import Settings
from deid.expect.spec import Spec
from deid.expect.sql import literal, not_static, quote_table, regex_literal
from deid.plan import Plan
from deid.schema import Schema

_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# PostgreSQL regular expressions (ARE). Boundaries are spelled out: \m and \M treat '+' and '(' as non-words.
PATTERNS = {
    "email": r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    # the SSA never issues area 000, 666 or 9xx, group 00 or serial 0000
    "ssn": r"(^|[^0-9])(?!000|666|9[0-9]{2})[0-9]{3}[- ](?!00)[0-9]{2}[- ](?!0000)[0-9]{4}([^0-9]|$)",
    "phone": r"(^|[^0-9+])(\+?1[ .-]?)?(\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ .-]?"
    r"[2-9][0-9]{2}[ .-]?[0-9]{4}([^0-9]|$)",
    "ipv4": rf"(^|[^0-9.]){_OCTET}(\.{_OCTET}){{3}}([^0-9.]|$)",
}
CARD = r"[0-9]([ -]?[0-9]){12,18}"


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


def pii_specs(plan: Plan, schema: Schema, settings: Settings) -> list[Spec]:
    specs = []
    for table_plan in plan.tables:
        table = schema.table(table_plan.table)
        if table is None:
            continue
        columns = list(kept_text(table, table_plan))
        if not columns:
            continue
        selected, counts, values = [], [], []
        for i, (name, content) in enumerate(columns):
            selected.append(f"{content} AS c{i}")
            tests = {p: f"c{i} ~ {regex_literal(regex)}" for p, regex in PATTERNS.items()}
            tests["card_number"] = card_number(f"c{i}")
            for pattern, test in tests.items():
                alias = f"c{i}_{pattern}"
                counts.append(f"count(*) FILTER (WHERE {test}) AS {alias}")
                values.append(f"({literal(name)}, {literal(pattern)}, s.{alias})")
        limit = f" LIMIT {settings.pii_scan_rows}" if settings.pii_scan_rows is not None else ""
        query = (
            f"SELECT v.column_name, v.pattern, v.unexpected, s.n AS checked FROM (SELECT count(*) AS n, "
            f"{', '.join(counts)} FROM (SELECT {', '.join(selected)} FROM {quote_table(table_plan.table)} "
            f"{not_static(table_plan)}{limit}) AS r) AS s CROSS JOIN LATERAL (VALUES {', '.join(values)}) "
            f"AS v(column_name, pattern, unexpected) WHERE v.unexpected > {settings.pii_max_hits}"
        )
        specs.append(
            Spec(
                "kept_text_without_pii",
                table_plan.table,
                tuple(name for name, _ in columns),
                query,
                f"patterns {', '.join([*PATTERNS, 'card_number'])}; more than {settings.pii_max_hits} "
                "matching rows fail",
            )
        )
    return specs
