"""PII scan (b): kept text columns searched for emails, SSNs, phone numbers, card numbers and IPv4 addresses.

Per table, one read of at most `pii_scan_rows` rows (static test rows left out) counts, per kept column and
pattern, the rows that match; a count above `pii_max_hits` fails the column. Only counts leave the
database. Card numbers count only when their digits pass the Luhn check, which filters out most long
numbers that are not cards. UUIDs and long hex keys (digests) are blanked out before the phone and card
patterns look: their digit groups read as phones (`…a693-7231859f…`) and, now and then, as Luhn-valid cards.

A pattern the rule file waives for a column (`waive: {phone: reason}`, deid.expect.waivable) is left out of
that column's test; `waived_counts` counts it in a second read of the same rows, for the report only.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from deid import rawsql
from deid.expect.kept import kept_text
from deid.expect.report import Waived
from deid.expect.settings import Settings
from deid.expect.spec import Spec
from deid.expect.sql import literal, not_static, quote_table, regex_literal
from deid.expect.waivable import PII_CHECKS
from deid.plan import Plan, TablePlan
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
# A UUID (8-4-4-4-12 hex digits), or a run of 16 or more hex digits holding a letter a-f (sha digests, hex
# keys). A run of digits alone is no hex key (a card number is one), so it stays.
HEX_KEY = (
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{16,}"
)
_WITHOUT_KEYS = ("phone", "card_number")  # the patterns that read the text with its hex keys blanked out
assert set(PATTERNS) | {"card_number"} == set(PII_CHECKS)


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
    return f"{keyless if check in _WITHOUT_KEYS else text} ~ {regex_literal(PATTERNS[check])}"


def _scan_sql(
    table_plan: TablePlan, columns: list[tuple[str, str, tuple[str, ...]]], settings: Settings
) -> str:
    """One read of the table's sampled rows: a row (column_name, pattern, unexpected, checked) per column
    and check of `columns` (name, SQL of its text, the checks to count). Each column's patterns are tested
    once per distinct value and weighted by its rows: kept text repeats (statuses, cities, currencies), and
    the regexes are what the scan costs (2.3 s of the benchmark's validation, 0.1 s grouped)."""
    selected, grouped, values = [], [], []
    for i, (name, content, checks) in enumerate(columns):
        selected.append(f"{content} AS c{i}")
        keyless = f", {without_hex_keys(f'c{i}')} AS k{i}" if any(c in _WITHOUT_KEYS for c in checks) else ""
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


def _columns(plan: Plan, schema: Schema, waived: bool) -> Iterable[tuple[TablePlan, list]]:
    """Per table, its kept text columns with the checks to count: those not waived (or only the waived)."""
    for table_plan in plan.tables:
        table = schema.table(table_plan.table)
        if table is None:
            continue
        actions = {a.column: a for a in table_plan.actions}
        columns = []
        for name, content in kept_text(table, table_plan):
            checks = tuple(c for c in PII_CHECKS if (actions[name].waiver(c) is not None) is waived)
            if checks:
                columns.append((name, content, checks))
        if columns:
            yield table_plan, columns


def pii_specs(plan: Plan, schema: Schema, settings: Settings) -> list[Spec]:
    specs = []
    for table_plan, columns in _columns(plan, schema, waived=False):
        query = f"{_scan_sql(table_plan, columns, settings)} WHERE v.unexpected > {settings.pii_max_hits}"
        waived = sorted({c for a in table_plan.actions for w in a.waivers if (c := w.check) in PII_CHECKS})
        note = f"; waived on some columns: {', '.join(waived)}" if waived else ""
        if settings.pii_max_hits:  # database-wide: kept for existing setups, waivers say it per column
            note += "; pii_max_hits applies to every kept column (prefer waive: in the rule file)"
        specs.append(
            Spec(
                "kept_text_without_pii",
                table_plan.table,
                tuple(name for name, _, _ in columns),
                query,
                f"patterns {', '.join(PII_CHECKS)}; "
                f"more than {settings.pii_max_hits} matching rows fail{note}",
            )
        )
    return specs


def waived_counts(work: sa.Connection, plan: Plan, schema: Schema, settings: Settings) -> list[Waived]:
    """What each waived pattern matched in its column, over the same rows the scan reads: counts only."""
    waived = []
    for table_plan, columns in _columns(plan, schema, waived=True):
        actions = {a.column: a for a in table_plan.actions}
        for name, pattern, matched, checked in rawsql.execute(work, _scan_sql(table_plan, columns, settings)):
            w = actions[name].waiver(pattern)
            assert w is not None
            waived.append(
                Waived(table_plan.table, name, pattern, w.reason, w.line, int(matched), int(checked))
            )
    return waived
