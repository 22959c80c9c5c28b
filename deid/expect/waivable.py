"""The validation checks a rule file may waive for one kept column (`waive: {check: reason}`).

Only checks that read what a *kept* column holds can be waived: the PII scan's patterns and the free-text
check. A kept column may hold values the owners know are public (a carrier's published phone numbers, a
vendor's support address), and the waiver says so for that column and that check alone. The checks that
prove the scrub happened (shapes, uniqueness, values changed, leak checks of transformed columns) and the
table checks (row counts, static rows, foreign keys, sequences) are never waivable: waiving them would let
a failed scrub publish. This module is the one list; the loader checks `waive:` keys against it.
"""

from __future__ import annotations

# The PII scan's patterns (deid.expect.pii checks it has exactly these).
PII_CHECKS = ("email", "ssn", "phone", "ipv4", "card_number")
# The free-text check (deid.expect.free_text): production's emails and full names in a kept column.
PRODUCTION_IDENTIFIERS = "production_identifiers"

WAIVABLE: dict[str, str] = {
    "email": "e-mail addresses in a kept text column (PII scan)",
    "ssn": "US social security numbers in a kept text column (PII scan)",
    "phone": "North American phone numbers in a kept text column (PII scan)",
    "ipv4": "IPv4 addresses in a kept text column (PII scan)",
    "card_number": "payment card numbers (Luhn-valid) in a kept text column (PII scan)",
    PRODUCTION_IDENTIFIERS: "production's e-mails or full names in a kept text column (free-text check)",
}
assert set(PII_CHECKS) | {PRODUCTION_IDENTIFIERS} == set(WAIVABLE)
