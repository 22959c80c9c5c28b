"""The PII patterns and the Luhn check of the validation gate, evaluated by PostgreSQL itself."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from deid.backends.postgresql.validation.names import regex_literal
from deid.backends.postgresql.validation.pii import card_number
from deid.expect.pii import PATTERNS

CASES = [
    ("email", "write to jane.doe+news@mail.example.org today", True),
    ("email", "no address here @ all", False),
    ("ssn", "ssn 123-45-6789.", True),
    ("ssn", "ssn 123 45 6789", True),
    ("ssn", "never issued: 666-12-3456, 900-12-3456, 123-00-4567", False),
    ("ssn", "part of a longer number 9123-45-67890", False),
    ("phone", "call (415) 555-2671 now", True),
    ("phone", "call +1 415.555.2671", True),
    ("phone", "invoice INV-100001", False),
    ("ipv4", "from 10.1.2.3 at noon", True),
    ("ipv4", "version 1.2.3 or 1.2.3.4.5", False),
    ("ipv4", "not an address 300.1.2.3", False),
]


@pytest.mark.parametrize("pattern, text, hit", CASES)
def test_patterns(pg_engine: sa.Engine, pattern: str, text: str, hit: bool):
    with pg_engine.connect() as c:
        found = c.execute(sa.text(f"SELECT :t ~ {regex_literal(PATTERNS[pattern])}"), {"t": text}).scalar()
    assert found is hit


@pytest.mark.parametrize(
    "text, hit",
    [
        ("card 4242 4242 4242 4242 on file", True),  # passes Luhn
        ("card 4111-1111-1111-1111", True),
        ("card 4242 4242 4242 4241 on file", False),  # one digit off: fails Luhn
        ("order 1234567890123", False),
        ("short 4242 4242", False),
    ],
)
def test_card_numbers_count_only_when_they_pass_luhn(pg_engine: sa.Engine, text: str, hit: bool):
    with pg_engine.connect() as c:
        found = c.execute(
            sa.text(f"SELECT {card_number('v')} FROM (SELECT CAST(:t AS text) AS v) AS s"), {"t": text}
        )
    assert found.scalar() is hit


def test_the_scan_counts_rows_not_distinct_values(pg_engine: sa.Engine):
    """Patterns are tested once per distinct value, and each value counts for all its rows: a phone number
    repeated 7 times is 7 unexpected rows, and every sampled row is counted as checked."""
    from types import SimpleNamespace

    from deid.backends.postgresql.validation.pii import pii_scan_query as _scan_sql
    from deid.expect.settings import Settings

    with pg_engine.begin() as c:
        c.execute(sa.text("CREATE TEMP TABLE notes (body text, memo text)"))
        c.execute(
            sa.text(
                "INSERT INTO notes SELECT CASE WHEN i <= 7 THEN 'call (415) 555-2671' WHEN i <= 12 THEN "
                "'nothing' END, CASE WHEN i % 2 = 0 THEN 'mail a@b.example.org' ELSE 'x' END "
                "FROM generate_series(1, 15) AS i"
            )
        )
        table = SimpleNamespace(table="pg_temp.notes", keep_rows_where=None)
        columns = [("body", "body", ("phone", "email")), ("memo", "memo", ("email", "card_number"))]
        rows = c.execute(sa.text(_scan_sql(table, columns, Settings()))).all()
    assert sorted(tuple(r) for r in rows) == [
        ("body", "email", 0, 15),
        ("body", "phone", 7, 15),
        ("memo", "card_number", 0, 15),
        ("memo", "email", 7, 15),
    ]
