"""`deid scan` on real PostgreSQL: the demo's planted hard cases are all found with no false alarm, the
drafted rule file lints clean and publishes with validation green untouched, and no sampled value is ever
printed."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest
import sqlalchemy as sa

from deid.cli import main
from deid.demo.seed import seed

# The planted identifiers of the demo, with the class scan must give them.
IDENTIFIERS = {
    "public.legacy_contacts.user_id": "email",  # an e-mail under a key's name
    "public.legacy_contacts.notes": "email",  # an e-mail under an innocent name
    "public.legacy_contacts.ref": "ssn",  # an SSN under an innocent name
    "public.legacy_contacts.emailaddress": "email",
    "public.legacy_contacts.phonenumber": "phone",
    "public.legacy_contacts.passwordhash": "password",
    "public.legacy_contacts.extra": "json",  # $.callback.phone
    "public.learners.profile": "json",
    "public.audit_events.details": "json",
    "public.learners.accessibility_notes": "free_text",
    "public.instructors.bio": "free_text",
    "public.refunds.reason": "free_text",
    "public.learners.email": "email",
    "public.learners.ssn": "ssn",
    "public.payments.card_pan": "card_number",
    "public.instructors.name": "name",
    "partners.partner_staff.employee_number": "person_number",
}
# Columns that hold no identifier, by kind: scan must say nothing of them (a key is not an alarm).
NEGATIVES = {
    "count": ["public.legacy_contacts.visits", "public.degrees.graduation_year"],
    "price": ["public.courses.price", "public.payments.amount", "public.legacy_contacts.credit"],
    "timestamp": [
        "public.legacy_contacts.imported_at",
        "public.learners.signup_at",
        "public.enrollments.enrolled_at",
    ],
    "enum": ["public.legacy_contacts.tier", "public.courses.level", "public.enrollments.status"],
    "uuid": ["public.legacy_contacts.contact_uuid"],
    "catalogue name": [
        "public.categories.name",
        "public.courses.title",
        "partners.partner_staff.partner_name",
    ],
}
NOT_ALARMS = {"-", "key"}


@pytest.fixture
def demo(postgres, tmp_path, staging, monkeypatch):
    """The demo production database (300 learners); deid.yaml's rule file is tmp/rules/learners.yaml."""
    prod = postgres.create_database("deid_scan")
    seed(postgres.url(prod), learners=300)
    (tmp_path / "rules").mkdir()
    config = tmp_path / "deid.yaml"
    config.write_text(
        "databases:\n  learners:\n    production: prod\n    staging_server: stg\n"
        f"    staging_name: {staging}\n    salt_secret: salt\n"
        f"    rules: {tmp_path / 'rules' / 'learners.yaml'}\n"
    )
    monkeypatch.setenv("DEID_CONFIG", str(config))
    monkeypatch.setenv("DEID_CONN_PROD", postgres.url(prod))
    monkeypatch.setenv("DEID_CONN_STG", postgres.admin_url)
    monkeypatch.setenv("DEID_SECRET_SALT", "scan-test-salt-not-a-secret")
    monkeypatch.setenv("DEID_RECORDS_DIR", str(tmp_path / "records"))
    yield {"url": postgres.url(prod), "rules": tmp_path / "rules" / "learners.yaml"}
    postgres.drop_database(prod)


def deid(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def configure_shop(folder, monkeypatch, production_url: str) -> None:
    """deid.yaml with one database, `shop`, whose production is `production_url` (scan reads only that)."""
    config = folder / "deid.yaml"
    config.write_text(
        "databases:\n  shop:\n    production: prod\n    staging_server: stg\n    staging_name: x_stg\n"
        f"    salt_secret: salt\n    rules: {folder / 'shop.yaml'}\n"
    )
    monkeypatch.setenv("DEID_CONFIG", str(config))
    monkeypatch.setenv("DEID_CONN_PROD", production_url)


def classes(report: str) -> dict[str, str]:
    """column key -> class, from scan's report lines `key  class  confidence  evidence`."""
    out = {}
    for line in report.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].count(".") >= 2:
            out[parts[0]] = parts[1]
    return out


def test_scan_finds_every_planted_identifier_and_raises_no_false_alarm(demo):
    code, out, err = deid("scan", "learners", "--rows", "500")
    assert code == 0, err
    found = classes(out)
    assert len(found) == 102  # every column of every table is reported
    hits = [k for k, cls in IDENTIFIERS.items() if found[k] == cls]
    false_alarms = {kind: [k for k in keys if found[k] not in NOT_ALARMS] for kind, keys in NEGATIVES.items()}
    labelled_negatives = [k for keys in NEGATIVES.values() for k in keys]
    flagged = [k for k in [*IDENTIFIERS, *labelled_negatives] if found[k] not in NOT_ALARMS]
    recall = len(hits) / len(IDENTIFIERS)
    precision = len(hits) / len(flagged)
    assert recall == 1.0, {k: found[k] for k in IDENTIFIERS if found[k] != IDENTIFIERS[k]}
    assert false_alarms == {kind: [] for kind in NEGATIVES}
    assert precision == 1.0
    assert found["public.legacy_contacts.contact_uuid"] == "key"  # judged, so kept with a reason
    assert "$.callback.phone phone" in out and "content: ssn" in out


def test_the_drafted_rule_file_lints_clean_and_publishes_with_validation_green(demo):
    code, out, err = deid("scan", "learners", "--write", str(demo["rules"]))
    assert code == 0, err
    text = demo["rules"].read_text()
    assert "version: 1\ndatabase: learners\npolicy: hipaa_limited_data_set\n" in text
    assert "      ref: {class: ssn}" in text
    assert "$.callback.phone: fake.phone" in text
    # keys are kept with a reason, and a foreign key like the key it references
    assert "      category_id: {transformer: keep, reason: 'references a key, kept like it'}" in text
    code, out, err = deid("lint", "--database", "learners", str(demo["rules"]))
    assert code == 0, err
    assert "ok (13 tables, 102 columns covered" in out
    code, out, err = deid("run", "learners", "--date", "2026-11-28")
    assert code == 0, err[-3000:]
    assert "published" in out
    checks = next(line for line in out.splitlines() if line.startswith("validation: "))
    passed, total = checks.removeprefix("validation: ").split(" checks")[0].split(" of ")
    assert passed == total and int(total) > 0


CANARIES = ("zqcanary1@example.org", "Qzxcanary Two", "canary3-555-867-5309", "123-45-6789-canary4")


def test_scan_prints_no_sampled_value_and_keys_are_never_phones(postgres, tmp_path, monkeypatch):
    prod = postgres.create_database("deid_scan")
    engine = sa.create_engine(postgres.url(prod))
    with engine.begin() as c:
        c.exec_driver_sql(
            "CREATE TABLE t (id text PRIMARY KEY, session_key text, notes text, doc jsonb, memo text)"
        )
        for i in range(40):
            # UUIDs and hex keys full of ten-digit runs: never a phone or a card number
            key = f"abcdef01-2345-4678-9abc-{2025550100 + i:012d}"
            doc = {"contact": {"phone": f"(202) 555-01{i:02d}", "nick": CANARIES[1]}, "n": i,
                   "by_mail": {CANARIES[0]: {"since": "2020"}, "202-555-0143": 1}}  # fmt: skip
            memo = f"<note><mail>{CANARIES[0]}</mail></note>"
            c.execute(
                sa.text("INSERT INTO t VALUES (:k, :s, :n, :d, :m)"),
                {"k": key, "s": f"{3125550199 + i}abc{3125550199 + i}", "n": CANARIES[i % 4],
                 "d": json.dumps(doc), "m": memo},
            )  # fmt: skip
    engine.dispose()
    configure_shop(tmp_path, monkeypatch, postgres.url(prod))
    try:
        code, out, err = deid("scan", "shop", "--write", str(tmp_path / "draft.yaml"))
        draft = (tmp_path / "draft.yaml").read_text()
    finally:
        postgres.drop_database(prod)
    assert code == 0, err
    for canary in (*CANARIES, "555-01", "2025550100", "3125550199"):
        assert canary.lower() not in (out + err + draft).lower()
    found = classes(out)
    assert found["public.t.id"] == "key"
    assert found["public.t.session_key"] == "-"
    assert found["public.t.notes"] == "free_text"
    assert found["public.t.doc"] == "json" and "$.contact.phone phone" in out
    assert found["public.t.memo"] == "email" and "/note/mail email" in out


def test_the_draft_decides_triggers_and_large_objects_as_lint_demands(postgres, tmp_path, monkeypatch):
    prod = postgres.create_database("deid_scan")
    engine = sa.create_engine(postgres.url(prod))
    with engine.begin() as c:
        c.exec_driver_sql(
            """
            CREATE TABLE people (id serial PRIMARY KEY, full_name text NOT NULL, search tsvector,
                                 emailaddress text, photo oid);
            CREATE TABLE audit (people_id integer, at timestamptz DEFAULT now());
            CREATE FUNCTION index_people() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.search := to_tsvector('simple', NEW.full_name); RETURN NEW; END $$;
            CREATE TRIGGER people_search BEFORE INSERT OR UPDATE ON people
                FOR EACH ROW EXECUTE FUNCTION index_people();
            CREATE FUNCTION log_people() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO audit (people_id) VALUES (NEW.id); RETURN NEW; END $$;
            CREATE TRIGGER people_audit AFTER UPDATE ON people FOR EACH ROW EXECUTE FUNCTION log_people();
            INSERT INTO people (full_name, emailaddress, photo)
                SELECT 'Person ' || i, 'p' || i || '@example.org', lo_from_bytea(0, 'x')
                FROM generate_series(1, 5) i;
            """
        )
    engine.dispose()
    configure_shop(tmp_path, monkeypatch, postgres.url(prod))
    try:
        code, out, err = deid("scan", "shop", "--write", str(tmp_path / "shop.yaml"))
        assert code == 0, err
        code, lint_out, lint_err = deid("lint", "--database", "shop", str(tmp_path / "shop.yaml"))
    finally:
        postgres.drop_database(prod)
    draft = (tmp_path / "shop.yaml").read_text()
    assert code == 0, lint_err + draft
    assert "large_objects: drop" in draft
    assert "people_search: recompute" in draft and "people_audit: {silent:" in draft


def test_the_sample_spreads_over_a_large_table_and_odd_names_are_read(postgres, tmp_path, monkeypatch):
    """A large table's first rows are its oldest: e-mails only in its second half are still found, in a
    column whose name holds a colon (text() would read `:draft` as a parameter)."""
    prod = postgres.create_database("deid_scan_spread")
    engine = sa.create_engine(postgres.url(prod))
    with engine.begin() as c:
        c.exec_driver_sql(
            'CREATE TABLE events (id int PRIMARY KEY, "note:draft" text);'
            "INSERT INTO events SELECT i, CASE WHEN i <= 20000 THEN 'shipped' "
            "ELSE 'user' || i || '@mail.example.org' END FROM generate_series(1, 40000) i;"
            "ANALYZE events"
        )
    engine.dispose()
    configure_shop(tmp_path, monkeypatch, postgres.url(prod))
    try:
        code, out, err = deid("scan", "shop", "--rows", "500")
    finally:
        postgres.drop_database(prod)
    assert code == 0, err
    (line,) = [line for line in out.splitlines() if "note:draft" in line]
    assert line.split()[1] == "email", line
    sampled = re.search(r"content: email (\d+)/(\d+) sampled", line)
    assert sampled and 0 < int(sampled.group(1)) < int(sampled.group(2)) <= 500


def test_the_draft_never_replaces_a_rule_file_unless_forced(demo):
    demo["rules"].write_text("# the owners' own decisions\n")
    code, out, err = deid("scan", "learners", "--write", str(demo["rules"]))
    assert code == 2 and "does not overwrite a rule file" in err and "deid plan --diff" in err
    assert out == "" and demo["rules"].read_text() == "# the owners' own decisions\n"  # nothing was read
    code, out, err = deid("scan", "learners", "--write", str(demo["rules"]), "--force")
    assert code == 0, err
    assert demo["rules"].read_text().startswith("# ") and "database: learners" in demo["rules"].read_text()
