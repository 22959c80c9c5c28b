"""The gauntlet, part 2: rules that looked fine and published production values (static rows that are the
whole table, ambiguous names, trigger-derived columns, types validation never read)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.refresh import supports_xml

D1 = "2026-11-27"

ACCOUNTS = """
CREATE TABLE accounts (id serial PRIMARY KEY, email text NOT NULL, is_test_account boolean NOT NULL);
INSERT INTO accounts (email, is_test_account)
SELECT 'user' || i || '@real-mail.example.org', i <= 3 FROM generate_series(1, 200) AS i;
"""


def accounts_rules(condition: str, limit: str = "") -> str:
    return (
        "  public.accounts:\n"
        f"    keep_rows_where: {condition}\n{limit}"
        "    columns: {id: keep, email: {class: email}, is_test_account: keep}\n"
    )


@pytest.mark.parametrize("condition", ["'TRUE'", "'1 = 1'", "'NOT FALSE'", "'id = id OR TRUE'"])
def test_a_condition_that_is_always_true_is_a_lint_error(refresh, condition):
    """Case 3: `keep_rows_where: TRUE` passed lint, and the run then kept every row unscrubbed."""
    refresh.setup(ACCOUNTS, accounts_rules(condition))
    linted = refresh.cli("lint", str(refresh.folder / "rules" / "shop.yaml"))
    assert linted.code == 1 and "is true for every row" in linted.err, linted.err


def test_a_condition_that_keeps_most_rows_fails_the_run_naming_the_counts(refresh):
    """Case 3: `id > 5 OR is_test_account` is no tautology, but keeps 195 of 200 rows as static test data.
    The scrub refuses it, naming the table and the counts; nothing is published."""
    refresh.setup(ACCOUNTS, accounts_rules("id > 5 OR is_test_account"))
    failed = refresh.run(D1)
    assert failed.code == 1
    assert "keep_rows_where of public.accounts keeps 198 of its 200 rows as static test data" in failed.err
    assert "allows 10" in failed.err and "keep_rows_at_most" in failed.err
    assert refresh.staging not in refresh.copies()


def test_the_labelled_test_accounts_stay_and_a_stated_limit_is_honoured(refresh):
    refresh.setup(ACCOUNTS, accounts_rules("is_test_account"))
    assert refresh.run(D1).code == 0
    kept = refresh.rows(refresh.staging, "SELECT email FROM accounts WHERE is_test_account ORDER BY id")
    assert kept == [(f"user{i}@real-mail.example.org",) for i in (1, 2, 3)]  # static test rows, intact
    scrubbed = refresh.rows(refresh.staging, "SELECT email FROM accounts WHERE NOT is_test_account")
    assert len(scrubbed) == 197 and not any("real-mail" in e for (e,) in scrubbed)
    # a table whose test data really is a large share says so, with a reason
    limit = "    keep_rows_at_most: {percent: 100, reason: 'the QA tenant: all of it is labelled fake'}\n"
    refresh.write_rules(accounts_rules("id > 5 OR is_test_account", limit))
    assert refresh.run("2026-11-28").code == 0


def test_dotted_names_are_exact_and_an_ambiguous_key_is_an_error(refresh):
    """Case 4: schema "dot.schema" with table t and schema dot with table "schema.t" shared the rule key
    `dot.schema.t`: one table was scrubbed twice and the other published raw."""
    sql = """
    CREATE SCHEMA "dot.schema"; CREATE SCHEMA dot;
    CREATE TABLE "dot.schema".t (id int PRIMARY KEY, email text);
    CREATE TABLE dot."schema.t" (id int PRIMARY KEY, email text);
    INSERT INTO "dot.schema".t SELECT i, 'a' || i || '@real-mail.example.org' FROM generate_series(1, 20) i;
    INSERT INTO dot."schema.t" SELECT i, 'b' || i || '@real-mail.example.org' FROM generate_series(1, 20) i;
    """
    rules = (
        "  '\"dot.schema\".t':\n    columns: {id: keep, email: {class: email}}\n"
        "  'dot.\"schema.t\"':\n    columns: {id: keep, email: 'null'}\n"
    )
    refresh.setup(sql, rules)
    done = refresh.run(D1)
    assert done.code == 0, done.err
    first = refresh.rows(refresh.staging, 'SELECT email FROM "dot.schema".t')
    second = refresh.rows(refresh.staging, 'SELECT email FROM dot."schema.t"')
    assert all(e.endswith("@example.invalid") or "real-mail" not in e for (e,) in first) and len(first) == 20
    assert second == [(None,)] * 20  # its own rule, not the other table's
    refresh.write_rules("  dot.schema.t:\n    columns: {id: keep, email: 'null'}\n")
    linted = refresh.cli("lint", str(refresh.folder / "rules" / "shop.yaml"))
    assert linted.code == 1
    assert "'dot.schema.t' is ambiguous" in linted.err and 'dot."schema.t" or "dot.schema".t' in linted.err


SEARCH = """
CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL, search tsvector);
CREATE FUNCTION people_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := to_tsvector('simple', NEW.name);
    RETURN NEW;
END $$;
CREATE TRIGGER people_search BEFORE INSERT OR UPDATE ON people FOR EACH ROW EXECUTE FUNCTION people_search();
INSERT INTO people (name) SELECT 'Zebedee' || i || ' Quorthwaite' FROM generate_series(1, 30) AS i;
"""


def test_a_column_a_trigger_derives_from_a_scrubbed_one_needs_a_rule(refresh):
    """Case 5: triggers are silenced during the scrub, so a tsvector a trigger builds from a name kept
    production's tokens. deid reads the trigger, asks for a decision, and `recompute` fires it during the
    scrub so the tsvector is built from the scrubbed names."""
    rules = "  public.people:\n{triggers}    columns: {{id: keep, name: {{class: name}}, search: keep}}\n"
    refresh.setup(SEARCH, rules.format(triggers=""))
    refused = refresh.run(D1)
    assert refused.code == 1
    assert "public.people.search is set by trigger people_search from name, which the scrub rewrites" in (
        refused.err
    )
    assert refresh.staging not in refresh.copies()
    refresh.write_rules(rules.format(triggers="    triggers: {people_search: recompute}\n"))
    done = refresh.run(D1)
    assert done.code == 0, done.err
    published = " ".join(v for (v,) in refresh.rows(refresh.staging, "SELECT search::text FROM people"))
    assert "zebedee" not in published and "quorthwaite" not in published
    names = refresh.rows(refresh.staging, "SELECT name, search = to_tsvector('simple', name) FROM people")
    assert all(same for _, same in names)  # recomputed from the scrubbed names
    (enabled,) = refresh.rows(
        refresh.staging, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'people_search'"
    )
    assert enabled == ("O",)  # and put back as it was


def test_kept_xml_and_tsvector_are_scanned_by_validation(refresh):
    """Case 5: kept xml and tsvector columns were never scanned (résumés with emails and phones passed)."""
    engine = sa.create_engine(refresh.postgres.admin_url, poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        xml = "xml" if supports_xml(c) else "text"  # the embedded PostgreSQL 18 is built without XML
    engine.dispose()
    sql = f"""
    CREATE TABLE resumes (id int PRIMARY KEY, body {xml}, words tsvector);
    INSERT INTO resumes VALUES (1, '<resume><phone>202-555-0147</phone></resume>',
                                to_tsvector('simple', 'call me'));
    INSERT INTO resumes VALUES (2, '<resume><skills>sql</skills></resume>',
                                to_tsvector('simple', 'write to jane.roe@real-mail.example.org'));
    """
    rules = (
        "  public.resumes:\n    columns:\n      id: keep\n"
        "      body: {transformer: keep, reason: 'reviewed'}\n      words: keep\n"
    )
    refresh.setup(sql, rules)
    failed = refresh.run(D1)
    assert failed.code == 1
    lines = {line.split(":")[0].strip(): line for line in failed.err.splitlines() if "FAIL" in line}
    assert "phone: 1 rows" in lines["FAIL kept_text_without_pii public.resumes.body"]
    assert "email: 1 rows" in lines["FAIL kept_text_without_pii public.resumes.words"]
    assert "jane.roe" not in failed.err and "0147" not in failed.err
    assert refresh.staging not in refresh.copies()


def test_large_objects_belong_to_no_column_and_need_a_rule(refresh):
    """Large objects (pg_largeobject) are copied by every clone, but no column rule covers their contents.
    Unsaid, the run fails at the snapshot; `large_objects: drop` unlinks them in the copy."""
    sql = """
    CREATE TABLE documents (id int PRIMARY KEY, scan oid);
    INSERT INTO documents
    VALUES (1, lo_from_bytea(0, convert_to('scan of jane.roe@real-mail.example.org', 'UTF8')));
    """
    rules = "  public.documents:\n    columns: {id: keep, scan: 'null'}\n"
    refresh.setup(sql, rules)
    refused = refresh.run(D1)
    assert refused.code == 1
    assert "holds 1 large object(s) (objects outside any table), which belong to no column" in refused.err
    assert "large_objects: drop" in refused.err and refresh.copies() == {}
    path = refresh.write_rules(rules)
    path.write_text(path.read_text().replace("tables:\n", "large_objects: drop\ntables:\n"))
    done = refresh.run(D1)
    assert done.code == 0, done.err
    assert refresh.rows(refresh.staging, "SELECT count(*) FROM pg_largeobject_metadata") == [(0,)]
    assert refresh.rows(refresh.production, "SELECT count(*) FROM pg_largeobject_metadata") == [(1,)]
