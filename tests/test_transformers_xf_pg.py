"""Transformers owners reached for (issue 12) on real PostgreSQL, through the whole scrub: `hash` on uuid keys
and their foreign keys, `json` on JSON kept in text columns, `noise` clamped into a CHECK range, and row
conditions with LIKE."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid import rawsql
from deid.backends import backend_for
from deid.errors import TerminalError
from deid.rules.load import load_rules
from deid.steps.scrub import scrub_database

SALT = "xf-test-salt-not-a-secret"


@pytest.fixture
def engine(pg_url: str):
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def run(engine: sa.Engine, statements: str) -> None:
    with engine.begin() as c:
        for statement in statements.split(";"):
            if statement.strip():
                rawsql.execute(c, statement)


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in rawsql.execute(c, sql)]


def scrub(engine: sa.Engine, folder: Path, tables: str, salt: str = SALT) -> None:
    """Write a rule file (`tables:` block, YAML), plan it against the database's schema and scrub."""
    path = folder / "xf.yaml"
    path.write_text(f"version: 1\ndatabase: xf\ntables:\n{tables}")
    with engine.connect() as c:
        schema = backend_for("postgresql").introspect(c, "xf")
    scrub_database(engine, planning.build_plan(load_rules(path), schema), salt)


def copy_database(postgres, engine: sa.Engine) -> sa.Engine:
    """A copy of the database (CREATE DATABASE ... TEMPLATE), to scrub the same rows twice."""
    name = postgres.copy_database(engine.url.database, "deid_xf_copy")
    return sa.create_engine(postgres.url(name), poolclass=sa.pool.NullPool)


# --- hash on uuid -------------------------------------------------------------------------------------------

UUID_TABLES = """
CREATE TABLE accounts (id uuid PRIMARY KEY, aliases uuid[]);
CREATE TABLE sessions (id int PRIMARY KEY, account_id uuid REFERENCES accounts (id), other uuid);
INSERT INTO accounts SELECT gen_random_uuid(), ARRAY[gen_random_uuid(), NULL, gen_random_uuid()]
    FROM generate_series(1, 300);
INSERT INTO accounts VALUES ('00000000-0000-0000-0000-000000000000', NULL);
INSERT INTO sessions SELECT i, (SELECT id FROM accounts ORDER BY id OFFSET i % 301 LIMIT 1), NULL
    FROM generate_series(1, 900) i;
UPDATE sessions SET other = account_id WHERE id % 3 = 0
"""

UUID_RULES = """  public.accounts:
    columns: {id: hash, aliases: hash}
  public.sessions:
    columns: {id: keep, account_id: hash, other: hash}
"""


def test_hash_on_uuid_keys_keeps_foreign_keys_and_is_keyed(engine, postgres, tmp_path):
    run(engine, UUID_TABLES)
    before = rows(engine, "SELECT id::text, aliases::text FROM accounts ORDER BY id")
    twin = copy_database(postgres, engine)
    other_salt = copy_database(postgres, engine)
    try:
        scrub(engine, tmp_path, UUID_RULES)
        scrub(twin, tmp_path, UUID_RULES)
        scrub(other_salt, tmp_path, UUID_RULES, salt="another-salt-not-a-secret")
        after = rows(engine, "SELECT id::text FROM accounts")
        olds = {r[0] for r in before} | {a for r in before if r[1] for a in r[1].strip("{}").split(",")}
        # every value changed, all distinct, valid version-8 RFC 9562 uuids
        assert len(after) == 301 and len({r[0] for r in after}) == 301
        assert not olds & {r[0] for r in after}
        for (text,) in after:
            parsed = uuid.UUID(text)
            assert parsed.version == 8 and parsed.variant == uuid.RFC_4122
        # the foreign key still matches: every session finds its account, and `other` (same rule) agrees
        assert rows(engine, "SELECT count(*) FROM sessions s JOIN accounts a ON a.id = s.account_id") == [
            (900,)
        ]
        assert rows(
            engine, "SELECT count(*) FROM sessions WHERE other IS DISTINCT FROM account_id AND id % 3 = 0"
        ) == [(0,)]
        # arrays element by element: NULL elements and NULL arrays stay, the others change
        aliases = rows(engine, "SELECT a FROM accounts, unnest(aliases) a")
        assert sum(a is None for (a,) in aliases) == 300
        assert not olds & {str(a) for (a,) in aliases if a is not None}
        assert rows(engine, "SELECT count(*) FROM accounts WHERE aliases IS NULL") == [(1,)]
        # deterministic for one salt, different for another
        ordered = "SELECT id::text, aliases::text FROM accounts ORDER BY id"
        assert rows(twin, ordered) == rows(engine, ordered)
        assert not {r[0] for r in rows(other_salt, ordered)} & {r[0] for r in after}
    finally:
        for copy in (twin, other_salt):
            name = copy.url.database
            copy.dispose()
            postgres.drop_database(name)


# --- noise clamped into a CHECK range -----------------------------------------------------------------------

RATES = """
CREATE TABLE loans (id int PRIMARY KEY, rate numeric(5, 2) NOT NULL CHECK (rate BETWEEN 6.50 AND 200.00),
                    term smallint CHECK (term BETWEEN 1 AND 40));
INSERT INTO loans SELECT i,
    CASE WHEN i % 2 = 0 THEN 6.50 + (i % 50) / 100.0 ELSE 200.00 - (i % 50) / 100.0 END,
    CASE WHEN i % 2 = 0 THEN 1 ELSE 40 END
    FROM generate_series(1, 400) i
"""


def test_noise_without_clamp_is_refused_by_lint_and_with_clamp_stays_inside(engine, postgres, tmp_path):
    run(engine, RATES)
    clamped = copy_database(postgres, engine)
    try:
        # unclamped, the CHECK would fail the UPDATE (SQLSTATE 23514): the rules are refused before it runs
        with pytest.raises(TerminalError) as caught:
            scrub(engine, tmp_path, "  public.loans:\n    columns: {id: keep, rate: noise, term: noise}\n")
        refusal = str(caught.value)
        assert "loans_rate_check" in refusal and "loans_term_check" in refusal and "`min:`/`max:`" in refusal
        before = rows(clamped, "SELECT id, rate FROM loans ORDER BY id")
        scrub(
            clamped,
            tmp_path,
            "  public.loans:\n    columns:\n      id: keep\n"
            "      rate: {transformer: noise, params: {relative: 0.2, min: 6.50, max: 200.00}}\n"
            "      term: {transformer: noise, params: {relative: 0.5, min: 1, max: 40}}\n",
        )
        after = rows(clamped, "SELECT id, rate FROM loans ORDER BY id")
        assert all(Decimal("6.50") <= rate <= Decimal("200.00") for _, rate in after)
        assert rows(clamped, "SELECT min(term), max(term) FROM loans") == [(1, 40)]
        # the clamp bites at both ends, and values inside the range still move
        assert sum(rate == Decimal("6.50") for _, rate in after) > 10
        assert sum(rate == Decimal("200.00") for _, rate in after) > 10
        assert sum(a != b for a, b in zip(before, after, strict=True)) > 300
    finally:
        clamped.dispose()
        postgres.drop_database(clamped.url.database)


# --- json on JSON kept in text ------------------------------------------------------------------------------

PROFILES = """
CREATE TABLE profiles (id int PRIMARY KEY, doc text, short varchar(60), strict text NOT NULL);
INSERT INTO profiles SELECT i,
    json_build_object('contact', json_build_object('email', 'p' || i || '@prod.org'), 'plan', 'gold')::text,
    '{"contact": {"email": "p' || i || '@prod.org"}' || CASE WHEN i % 2 = 0 THEN ', "n": "xx"}' ELSE '}' END,
    '{"contact": {"email": "p' || i || '@prod.org"}}'
    FROM generate_series(1, 50) i;
INSERT INTO profiles VALUES (51, 'not json p51@prod.org', '{"contact": ', 'p51@prod.org'),
                            (52, NULL, NULL, '{"contact": "x"}')
"""
JSON_RULE = "{{transformer: json, params: {{paths: {{$.contact.email: fake.email}}{extra}}}}}"


def json_rules(doc: str = "") -> str:
    rule = JSON_RULE.format
    return (
        f"  public.profiles:\n    columns:\n      id: keep\n      doc: {rule(extra=doc)}\n"
        "      short: {transformer: json, params: {paths: {$.contact.email: hash}}}\n"
        f"      strict: {rule(extra=', invalid: empty')}\n"
    )


def test_json_in_text_columns_is_scrubbed_and_invalid_values_never_kept(engine, postgres, tmp_path):
    run(engine, PROFILES)
    failing = copy_database(postgres, engine)
    try:
        scrub(engine, tmp_path, json_rules())
        got = dict(rows(engine, "SELECT id, doc FROM profiles"))
        assert all("prod.org" not in str(v) for v in got.values())
        for i in range(1, 51):
            parsed = json.loads(got[i])
            assert parsed["plan"] == "gold" and parsed["contact"]["email"].endswith("@example.com")
        assert got[51] is None and got[52] is None  # not JSON: NULL by default; NULL stays NULL
        # varchar(60): a document that grew past 60 characters is not cut into broken JSON
        # varchar(60): the 58 characters of a scrubbed document fit; the 69 of one with a note would be cut
        # into broken JSON by a cast, so they become NULL (invalid: null)
        short = dict(rows(engine, "SELECT id, short FROM profiles WHERE id <= 50"))
        assert all(len(short[i]) == 58 and json.loads(short[i]) for i in range(1, 51, 2))
        assert all(short[i] is None for i in range(2, 51, 2))
        assert rows(engine, "SELECT strict FROM profiles WHERE id = 51") == [("{}",)]  # invalid: empty
        assert rows(engine, "SELECT count(*) FROM profiles WHERE strict LIKE '%prod.org%'") == [(0,)]
        # invalid: fail stops the scrub naming the table and column, never the value
        with pytest.raises(TerminalError) as caught:
            scrub(failing, tmp_path, json_rules(doc=", invalid: fail"))
        message = str(caught.value)
        assert "public.profiles" in message and "column doc" in message and "22P02" in message
        assert "prod.org" not in message and "not json" not in message
        assert rows(failing, "SELECT count(*) FROM profiles WHERE doc LIKE '%prod.org%'") == [(51,)]
    finally:
        failing.dispose()
        postgres.drop_database(failing.url.database)


# --- keep_rows_where with LIKE ------------------------------------------------------------------------------

USERS = """
CREATE TABLE users (id int PRIMARY KEY, email text);
INSERT INTO users SELECT i,
    CASE WHEN i <= 3 THEN 'qa+' || i || '@test.example' ELSE 'u' || i || '@prod.org' END
    FROM generate_series(1, 400) i;
INSERT INTO users VALUES (401, 'qa+401@prod.org'), (402, NULL)
"""


def test_like_condition_keeps_only_the_matching_static_rows(engine, postgres, tmp_path):
    run(engine, USERS)
    before = dict(rows(engine, "SELECT id, email FROM users"))
    broad = copy_database(postgres, engine)
    try:
        with pytest.raises(TerminalError) as caught:  # the run-time bound: 401 rows kept, 10 allowed
            scrub(
                broad,
                tmp_path,
                "  public.users:\n    keep_rows_where: email LIKE '%@%'\n"
                "    columns: {id: keep, email: hash}\n",
            )
        assert "keeps 401 of its 402 rows" in str(caught.value)
    finally:
        broad.dispose()
        postgres.drop_database(broad.url.database)
    scrub(
        engine,
        tmp_path,
        "  public.users:\n    keep_rows_where: email LIKE 'qa+%@test.example'\n"
        "    columns: {id: keep, email: hash}\n",
    )
    after = dict(rows(engine, "SELECT id, email FROM users"))
    assert [i for i in after if after[i] == before[i]] == [1, 2, 3, 402]  # the static rows; NULL stays NULL
