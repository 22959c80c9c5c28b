"""Waivers: `waive: {check: reason}` on a kept column lets one validation check pass on that column only.

The loader refuses unknown checks, empty reasons and waivers on transformed columns (naming file:line);
a real run fails on a kept column of phone numbers, passes once the rule waives `phone`, and still fails on
an e-mail in the same column or a phone in another one. UUIDs and hex keys never read as phones or cards.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.backends.postgresql.validation.names import regex_literal
from deid.backends.postgresql.validation.pii import pii_test, without_hex_keys
from deid.errors import RuleProblems
from deid.expect.pii import PATTERNS
from deid.records.store import read_records
from deid.rules.load import load_rules

RULES = """version: 1
database: shop
tables:
  public.carriers:
    columns:
      id: keep
      phone: {transformer: keep, reason: "published numbers", waive: {phone: "published by the carrier"}}
      notes: {transformer: keep, waive: {phnoe: "typo"}}
      fax: {transformer: keep, waive: {email: "  "}}
      contact: {transformer: fake.email, waive: {email: "nothing to waive"}}
"""


def test_the_loader_names_each_bad_waiver_by_file_and_line(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(RULES)
    with pytest.raises(RuleProblems) as raised:
        load_rules(path)
    problems = {p.line: p for p in raised.value.problems}
    assert set(problems) == {8, 9, 10}, [str(p) for p in raised.value.problems]
    assert "unknown key 'phnoe' in tables.public.carriers.columns.notes.waive. Did you mean 'phone'?" in (
        problems[8].message
    )
    assert "allowed keys: email, ssn, phone, ipv4, card_number, production_identifiers" in problems[8].fix
    assert "columns.fax.waive.email must be a reason (a sentence saying why)" in problems[9].message
    assert "waive on a column transformed by fake.email" in problems[10].message
    assert all(p.file.endswith("shop.yaml") for p in raised.value.problems)
    assert f"{path}:8: unknown key 'phnoe'" in str(raised.value)


def test_a_good_waiver_loads_with_its_line_and_describes_canonically(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text("\n".join(RULES.splitlines()[:7]) + "\n")
    rule = load_rules(path).table("public.carriers").column("phone")
    (waiver,) = rule.waivers
    assert (waiver.check, waiver.reason, waiver.line) == ("phone", "published by the carrier", 7)
    assert rule.describe() == {
        "transformer": "keep",
        "reason": "published numbers",
        "waive": {"phone": "published by the carrier"},
    }
    assert "waive" not in load_rules(path).table("public.carriers").column("id").describe()


def _phone_in_a_digest() -> str:
    """A sha256 hex digest whose digits read as a phone number (the first of sha256('key0'), ...)."""
    phone = re.compile(PATTERNS["phone"])
    return next(d for i in range(10_000) if phone.search(d := hashlib.sha256(f"key{i}".encode()).hexdigest()))


UUID_AS_PHONE = "5f1d2c3a-9b8e-4c1d-a693-7231859f2e4b"  # …a693-7231859f… reads as (693) 723-1859


@pytest.mark.parametrize(
    "check, text, hit",
    [
        ("phone", UUID_AS_PHONE, False),
        ("phone", UUID_AS_PHONE.upper(), False),
        ("phone", "digest", False),  # replaced by _phone_in_a_digest()
        ("card_number", "key deadbeef4242424242424242cafe", False),  # a card's digits inside a hex key
        ("phone", f"order {UUID_AS_PHONE} call (415) 555-2671", True),
        ("phone", f"{UUID_AS_PHONE}:4155552671", True),
        ("card_number", f"ref {UUID_AS_PHONE} card 4242 4242 4242 4242", True),
        ("card_number", "4242424242424242", True),  # digits alone are no hex key
        ("ssn", f"{UUID_AS_PHONE} ssn 123-45-6789", True),
    ],
)
def test_uuids_and_hex_keys_never_read_as_phones_or_cards(pg_engine: sa.Engine, check, text, hit):
    text = _phone_in_a_digest() if text == "digest" else text
    with pg_engine.connect() as c:
        raw = c.execute(sa.text(f"SELECT :t ~ {regex_literal(PATTERNS['phone'])}"), {"t": text}).scalar()
        found = c.execute(
            sa.text(
                f"SELECT {pii_test(check, 't', 'k')} FROM (SELECT CAST(:t AS text) AS t) AS s, "
                f"LATERAL (SELECT {without_hex_keys('s.t')} AS k) AS x"
            ),
            {"t": text},
        ).scalar()
    assert found is hit
    if check == "phone" and not hit:
        assert raw is True  # without the blanking, the key did read as a phone


CARRIERS = """
CREATE TABLE carriers (id text PRIMARY KEY, phone text NOT NULL, notes text NOT NULL);
INSERT INTO carriers
SELECT md5(i::text)::uuid::text, '(415) 555-' || lpad(i::text, 4, '0'), 'carrier ' || i
FROM generate_series(1, 50) AS i;
"""
KEPT = '{transformer: keep, reason: "carriers\' published numbers"'
WAIVED = KEPT + ', waive: {phone: "published by the carrier"}}'


def carriers_rules(phone_rule: str) -> str:
    return f"  public.carriers:\n    columns:\n      id: keep\n      phone: {phone_rule}\n      notes: keep\n"


def test_a_waiver_lets_one_check_pass_on_one_column_only(refresh):
    refresh.setup(CARRIERS, carriers_rules(KEPT + "}"))
    failed = refresh.run("2026-11-27")
    assert failed.code == 1
    assert "FAIL kept_text_without_pii public.carriers.phone: 50 unexpected" in failed.err, failed.err
    assert "phone: 50 rows" in failed.err
    assert "public.carriers.id" not in failed.err  # UUID text keys are not phone numbers
    assert refresh.staging not in refresh.copies()

    refresh.write_rules(carriers_rules(WAIVED))
    plan = refresh.cli("plan", "shop", "--no-sql")
    assert plan.code == 0, plan.err
    assert "validation waives phone: published by the carrier (rules line 7)" in plan.out
    assert "1 validation waiver(s)" in plan.out

    done = refresh.run("2026-11-28")
    assert done.code == 0, done.err
    assert "waived by the rule file: phone on public.carriers.phone (50 matched of 50 checked)" in done.out
    (record, *_) = read_records(refresh.folder / "records", "shop")
    assert record["outcome"] == "published"
    assert record["expectations"]["waivers"] == [
        {
            "table": "public.carriers",
            "column": "phone",
            "check": "phone",
            "reason": "published by the carrier",
            "line": 7,
            "matched": 50,
            "checked": 50,
            "place": "public.carriers.phone",
        }
    ]
    # every other check of the column still ran and passed
    pii = [e for e in record["expectations"]["expectations"] if e["expectation"] == "kept_text_without_pii"]
    assert {e["column"] for e in pii} == {"id", "phone", "notes"} and all(e["ok"] for e in pii)
    report = Path(record["files"]["report"])
    html = (report if report.is_absolute() else refresh.folder / "records" / report).read_text()
    assert 'id="waivers"' in html and "published by the carrier" in html
    assert "<code>public.carriers.phone</code></td><td>phone</td>" in html

    # narrow: an e-mail in the waived column, and a phone in another kept column, still fail
    refresh.sql(
        refresh.production,
        "UPDATE carriers SET phone = phone || ' ops@carrier-mail.example.org' WHERE notes = 'carrier 1';"
        "UPDATE carriers SET notes = 'call (212) 555-2671' WHERE notes = 'carrier 2';",
    )
    failed = refresh.run("2026-11-29")
    assert failed.code == 1
    lines = failed.err.splitlines()
    phone_line = next(line for line in lines if "FAIL kept_text_without_pii public.carriers.phone" in line)
    assert "1 unexpected" in phone_line and "email: 1 rows" in phone_line
    assert not re.search(r"phone: [0-9]+ rows", phone_line)  # the waived pattern is not what failed
    notes_line = next(line for line in lines if "FAIL kept_text_without_pii public.carriers.notes" in line)
    assert "phone: 1 rows" in notes_line
    assert "ops@carrier-mail" not in failed.err and "555-2671" not in failed.err  # counts, never values
    assert "waived phone public.carriers.phone: 50 matched of 50 checked" in failed.err


def test_lint_notes_a_database_wide_pii_threshold_and_points_to_waivers(refresh):
    refresh.setup(CARRIERS, carriers_rules(WAIVED), extra="    validation: {pii_max_hits: 3}\n")
    linted = refresh.cli("lint", str(refresh.folder / "rules" / "shop.yaml"))
    assert linted.code == 0, linted.err  # a note, not a failure: existing setups keep working
    assert "note: deid.yaml sets validation.pii_max_hits: 3 for shop" in linted.out
    assert 'waive: {phone: "why"}' in linted.out
    (refresh.folder / "deid.yaml").write_text(
        (refresh.folder / "deid.yaml").read_text().replace("pii_max_hits: 3", "pii_max_hits: 0")
    )
    assert "pii_max_hits" not in refresh.cli("lint", str(refresh.folder / "rules" / "shop.yaml")).out


@pytest.mark.parametrize(
    "rule, accepted",
    [
        ({"transformer": "keep", "waive": {"phone": "published by the carrier"}}, True),
        ({"transformer": "keep", "waive": {"phnoe": "typo"}}, False),
        ({"transformer": "keep", "waive": {"phone": ""}}, False),
        ({"transformer": "fake.email", "waive": {"email": "nothing to waive"}}, False),
    ],
)
def test_the_editors_schema_takes_waivers_on_kept_columns_only(rule, accepted):
    import json

    import jsonschema

    from tests.refresh import ROOT

    schema = json.loads((ROOT / "rules" / "rules.schema.json").read_text())
    document = {"version": 1, "database": "shop", "tables": {"public.carriers": {"columns": {"phone": rule}}}}
    valid = jsonschema.Draft202012Validator(schema).is_valid(document)
    assert valid is accepted


def test_a_column_added_by_migrations_keeps_the_waiver_its_waiting_rule_states(tmp_path):
    """The applied plan was built before the migrations, without the rules that waited for them; validation
    of the migrated copy still reads those rules' waivers (and only those columns')."""
    from deid.expect.scope import ADDED_BY_MIGRATIONS, for_copy
    from deid.plan import build_plan
    from deid.rules.coverage import awaiting_migrations
    from deid.schema import Column, Kind, Schema, Table

    path = tmp_path / "shop.yaml"
    path.write_text(
        "version: 1\ndatabase: shop\ntables:\n  public.carriers:\n    columns:\n      id: keep\n"
        '      hotline: {transformer: keep, reason: "published", waive: {phone: "printed on every parcel"}}\n'
        "      memo: keep\n"
    )
    rules = load_rules(path)
    text = Column("id", "integer", Kind.INTEGER), Column("memo", "text", Kind.TEXT)
    cloned = Schema("shop", "postgresql", (Table("public", "carriers", text, primary_key=("id",)),))
    hotline = Column("hotline", "text", Kind.TEXT)
    migrated = Schema(
        "shop", "postgresql", (Table("public", "carriers", (*text, hotline), primary_key=("id",)),)
    )
    waiting_rules, waiting = awaiting_migrations(rules, cloned, True)
    assert waiting == {"public.carriers.hotline"}
    applied = build_plan(waiting_rules, cloned)

    (table,) = for_copy(applied, migrated, rules).tables
    actions = {a.column: a for a in table.actions}
    assert actions["hotline"].source == ADDED_BY_MIGRATIONS
    assert [(w.check, w.reason) for w in actions["hotline"].waivers] == [("phone", "printed on every parcel")]
    assert actions["memo"].waivers == ()
    # without the rule file (as before), the added column had no waiver: the scan would fail it
    (bare,) = for_copy(applied, migrated).tables
    assert {a.column: a for a in bare.actions}["hotline"].waivers == ()
