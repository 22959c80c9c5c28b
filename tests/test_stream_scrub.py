"""The streamed scrub (rows out, vector forms, values back in one UPDATE) against the SQL-form rewrite: the
same database scrubbed both ways ends with the same rows, byte for byte, on every configured server."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid import rawsql
from deid.backends import backend_for
from deid.demo.seed import seed
from deid.errors import TerminalError
from deid.rules.load import load_rules
from deid.steps.migrate import awaiting_migrations
from deid.steps.scrub import scrub_database

ROOT = Path(__file__).resolve().parent.parent
SALT = "stream-test-salt-not-a-secret"

SCHEMA = """
CREATE TABLE people (
    id bigint PRIMARY KEY,
    email text UNIQUE,
    nick varchar(40),
    note text,
    status text NOT NULL,
    is_test boolean NOT NULL DEFAULT false,
    touched timestamptz
);
CREATE TABLE visits (id int PRIMARY KEY, person bigint REFERENCES people(id), token text);
CREATE TABLE measures (id int, site text, secret text, PRIMARY KEY (id, site)) PARTITION BY LIST (site);
CREATE TABLE measures_a PARTITION OF measures FOR VALUES IN ('a');
CREATE TABLE measures_b PARTITION OF measures FOR VALUES IN ('b');
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.touched := now(); RETURN NEW; END $$;
CREATE TRIGGER people_stamp BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION stamp();
"""

# text that CSV must carry intact: separators, quotes, newlines, backslashes, the end-of-data marker,
# empty strings (not NULL), multi-byte characters
ODD = ["a,b", 'say "hi"', "line\nbreak", "back\\slash", "\\.", "", "Zoë 東京", "  padded  ", "\r\n"]

RULES = """version: 1
database: streamed
tables:
  public.people:
    keep_rows_where: is_test = true
    columns:
      id: keep
      email: {transformer: hash, params: {format: email, domain: example.com}}
      nick: {transformer: constant, params: {value: someone}}
      note: 'null'
      status: keep
      is_test: keep
      touched: keep
  public.visits:
    columns:
      id: keep
      person: keep
      token: hash
  public.measures:
    columns:
      id: keep
      site: keep
      secret: {transformer: hash, params: {length: 16}}
"""


def fill(engine: sa.Engine) -> None:
    with engine.begin() as c:
        for statement in SCHEMA.split(";\n"):
            if statement.strip():
                rawsql.execute(c, statement)
        c.execute(
            sa.text(
                "INSERT INTO people SELECT i, 'p' || i || '@corp.io', (CAST(:odd AS text[]))[1 + i % 9], "
                "(CAST(:odd AS text[]))[1 + (i + 3) % 9], "
                "'active', i % 200 = 0, '2020-01-01 00:00:00+00' FROM generate_series(1, 3000) i"
            ),
            {"odd": ODD},
        )
        rawsql.execute(c, "UPDATE people SET email = NULL, note = NULL WHERE id % 7 = 0")
        rawsql.execute(
            c, "INSERT INTO visits SELECT i, 1 + i % 3000, 't' || i FROM generate_series(1, 5000) i"
        )
        rawsql.execute(
            c,
            "INSERT INTO measures SELECT i, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, 's' || i "
            "FROM generate_series(1, 400) i",
        )


def contents(engine: sa.Engine) -> dict[str, list[str]]:
    with engine.connect() as c:
        return {
            t: sorted(rawsql.execute(c, f"SELECT x::text FROM {t} x").scalars())
            for t in ("people", "visits", "measures_a", "measures_b")
        }


@pytest.fixture
def twins(postgres, tmp_path):
    """One filled database and a copy of it, with the plan of RULES."""
    first = postgres.create_database("deid_stream")
    one = sa.create_engine(postgres.url(first), poolclass=sa.pool.NullPool)
    fill(one)
    second = postgres.copy_database(first, "deid_stream_sql")
    other = sa.create_engine(postgres.url(second), poolclass=sa.pool.NullPool)
    path = tmp_path / "streamed.yaml"
    path.write_text(RULES)
    with one.connect() as c:
        schema = backend_for("postgresql").introspect(c, "streamed")
    yield one, other, planning.build_plan(load_rules(path), schema)
    one.dispose()
    other.dispose()
    postgres.drop_database(first)
    postgres.drop_database(second)


def test_streamed_scrub_equals_the_sql_rewrite(twins):
    streamed, rewritten, plan = twins
    before = contents(streamed)
    results = {r.table: r for r in scrub_database(streamed, plan, SALT)}
    assert {t: r.action for t, r in results.items()} == {
        "public.people": "streamed",
        "public.visits": "streamed",
        "public.measures": "streamed",
    }
    assert results["public.people"].rows == 3000 - 15  # static rows (is_test) are never written
    scrub_database(rewritten, plan, SALT, stream=False)
    after = contents(streamed)
    assert after == contents(rewritten)
    assert after != before
    with streamed.connect() as c:
        kept = rawsql.execute(c, "SELECT count(*) FROM people WHERE is_test AND nick = 'someone'").scalar()
        touched = rawsql.execute(c, "SELECT count(*) FROM people WHERE touched = '2020-01-01Z'").scalar()
        odd_notes = rawsql.execute(c, "SELECT count(*) FROM people WHERE is_test AND note = ''").scalar()
    assert kept == 0, "static rows keep their values"
    assert touched == 3000 - 3000 // 7, "triggers stay silent during the scrub (fill's UPDATE fired it)"
    assert odd_notes > 0, "an empty string survives the round trip as an empty string, not NULL"


def test_a_value_the_column_refuses_fails_naming_the_column_and_no_value(twins, tmp_path):
    streamed, _, _ = twins
    with streamed.begin() as c:
        c.exec_driver_sql("CREATE DOMAIN tiny AS text CHECK (length(VALUE) < 8)")
        c.exec_driver_sql("ALTER TABLE visits ALTER COLUMN token TYPE tiny")
    path = tmp_path / "streamed.yaml"
    path.write_text(RULES)
    with streamed.connect() as c:
        schema = backend_for("postgresql").introspect(c, "streamed")
    with pytest.raises(TerminalError) as failed:
        scrub_database(streamed, planning.build_plan(load_rules(path), schema), SALT)
    message = str(failed.value)
    assert "visits" in message and "23514" in message
    assert "t1" not in message.split("SQLSTATE")[-1]


@pytest.mark.one_server
def test_the_demo_scrubbed_by_stream_equals_the_sql_rewrite(postgres):
    prod = postgres.create_database("deid_stream_demo")
    seed(postgres.url(prod), learners=300)
    copy = postgres.copy_database(prod, "deid_stream_demo_sql")
    one = sa.create_engine(postgres.url(prod), poolclass=sa.pool.NullPool)
    other = sa.create_engine(postgres.url(copy), poolclass=sa.pool.NullPool)
    try:
        with one.connect() as c:
            schema = backend_for("postgresql").introspect(c, "learners")
        rules_file = load_rules(ROOT / "rules" / "learners.yaml")
        rules, _ = awaiting_migrations(rules_file, schema, has_migrations=True)
        plan = planning.build_plan(rules, schema)
        actions = {r.table: r.action for r in scrub_database(one, plan, SALT)}
        scrub_database(other, plan, SALT, stream=False)
        assert "streamed" in actions.values()
        tables = [t.table for t in plan.tables]
        with one.connect() as a, other.connect() as b:
            for table in tables:
                query = f"SELECT x::text FROM {table} x"
                assert sorted(rawsql.execute(a, query).scalars()) == sorted(
                    rawsql.execute(b, query).scalars()
                ), table
    finally:
        one.dispose()
        other.dispose()
        postgres.drop_database(prod)
        postgres.drop_database(copy)
