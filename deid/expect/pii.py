"""PII scan (b): kept text columns searched for emails, SSNs, phone numbers, card numbers and IPv4 addresses.

Per table, one read of at most `pii_scan_rows` rows (static test rows left out; the engine's dialect spells
it) counts, per kept column and pattern, the rows that match; a count above `pii_max_hits` fails the
column. Only counts leave the database. Card numbers count only when their digits pass the Luhn check,
which filters out most long numbers that are not cards. UUIDs and long hex keys (digests) are blanked out
before the phone and card patterns look: their digit groups read as phones (`…a693-7231859f…`) and, now
and then, as Luhn-valid cards.

A pattern the rule file waives for a column (`waive: {phone: reason}`, deid.expect.waivable) is left out of
that column's test; `waived_counts` counts it in a second read of the same rows, for the report only.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from deid import rawsql
from deid.backends.base import ValidationDialect
from deid.expect.kept import kept_text
from deid.expect.report import Waived
from deid.expect.settings import Settings
from deid.expect.spec import Spec
from deid.expect.waivable import PII_CHECKS
from deid.plan import Plan, TablePlan
from deid.schema import Schema

_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# Regular expressions every engine deid knows reads alike (no backreferences, no engine-only classes).
# Boundaries are spelled out: word-boundary escapes differ between engines, and treat '+' and '(' as
# non-words.
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
WITHOUT_KEYS = ("phone", "card_number")  # the patterns that read the text with its hex keys blanked out
assert set(PATTERNS) | {"card_number"} == set(PII_CHECKS)


def _columns(
    plan: Plan, schema: Schema, waived: bool, d: ValidationDialect
) -> Iterable[tuple[TablePlan, list]]:
    """Per table, its kept text columns with the checks to count: those not waived (or only the waived)."""
    for table_plan in plan.tables:
        table = schema.table(table_plan.table)
        if table is None:
            continue
        actions = {a.column: a for a in table_plan.actions}
        columns = []
        for name, content in kept_text(table, table_plan, d):
            checks = tuple(c for c in PII_CHECKS if (actions[name].waiver(c) is not None) is waived)
            if checks:
                columns.append((name, content, checks))
        if columns:
            yield table_plan, columns


def pii_specs(plan: Plan, schema: Schema, settings: Settings, d: ValidationDialect) -> list[Spec]:
    specs = []
    for table_plan, columns in _columns(plan, schema, False, d):
        query = (
            f"{d.pii_scan_query(table_plan, columns, settings)} WHERE v.unexpected > {settings.pii_max_hits}"
        )
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


def waived_counts(
    work: sa.Connection, plan: Plan, schema: Schema, settings: Settings, d: ValidationDialect
) -> list[Waived]:
    """What each waived pattern matched in its column, over the same rows the scan reads: counts only."""
    waived = []
    for table_plan, columns in _columns(plan, schema, True, d):
        actions = {a.column: a for a in table_plan.actions}
        scan = d.pii_scan_query(table_plan, columns, settings)
        for name, pattern, matched, checked in rawsql.execute(work, scan):
            w = actions[name].waiver(pattern)
            assert w is not None
            waived.append(
                Waived(table_plan.table, name, pattern, w.reason, w.line, int(matched), int(checked))
            )
    return waived
