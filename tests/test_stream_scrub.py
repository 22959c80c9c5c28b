"""The streamed scrub (rows out, vector forms, values back in one UPDATE) against the SQL-form rewrite: the
same database scrubbed both ways ends with the same rows, byte for byte, on every configured server."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid import rawsql
from deid.backends import backend_for
from deid.demo.seed import seed
from deid.errors import TerminalError
from deid.records.store import read_records
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
    touched timestamptz,
    badge char(40),  -- read padded, keyed unpadded (as ::text gives it)
    ip inet,  -- read as 10.0.0.1, keyed as 10.0.0.1/32
    full_name text
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
      badge: {transformer: hash, params: {length: 16}}
      ip: fake.ipv6
      full_name: {transformer: fake.name, params: {unique: true}}
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
        rawsql.execute(c, "SET LOCAL session_replication_role = replica")  # the trigger stays silent
        rawsql.execute(
            c,
            "UPDATE people SET badge = 'b' || (id % 97), "
            "ip = ('10.0.' || (id % 250) || '.' || (id % 7))::inet, full_name = 'Person ' || id",
        )
        rawsql.execute(c, "SET LOCAL session_replication_role = origin")
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
    results = {r.table: r for r in scrub_database(streamed, plan, SALT, stream_from_rows=0)}
    assert {t: r.action for t, r in results.items()} == {
        "public.people": "rebuilt",  # referenced by visits, with a trigger
        "public.visits": "rebuilt",
        "public.measures": "streamed",  # partitioned: updated in place
    }
    assert results["public.people"].rows == 3000
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
        scrub_database(streamed, planning.build_plan(load_rules(path), schema), SALT, stream_from_rows=0)
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
        actions = {r.table: r.action for r in scrub_database(one, plan, SALT, stream_from_rows=0)}
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


# Everything a table carries that a rebuild must carry over, on a table referenced by another and by itself
RICH = """
CREATE ROLE {role} NOLOGIN;
CREATE TABLE accounts (
    id serial PRIMARY KEY,
    email text NOT NULL,
    manager int REFERENCES accounts(id),
    region text CHECK (region <> '') ,
    score int,
    code text,
    CONSTRAINT code_once UNIQUE (code) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT score_positive CHECK (score > 0) NOT VALID
) WITH (fillfactor = 90);
CREATE TABLE logins (id int PRIMARY KEY, account int NOT NULL REFERENCES accounts(id) ON DELETE CASCADE);
CREATE TABLE audits (id int PRIMARY KEY, account int);
ALTER TABLE audits ADD CONSTRAINT audits_account FOREIGN KEY (account) REFERENCES accounts(id) NOT VALID;
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email)) WHERE region IS NOT NULL;
CREATE INDEX accounts_region ON accounts USING hash (region);
ALTER TABLE accounts CLUSTER ON accounts_pkey;
ALTER TABLE accounts REPLICA IDENTITY USING INDEX accounts_pkey;
ALTER TABLE accounts ALTER COLUMN region SET STATISTICS 500;
ALTER TABLE accounts ALTER COLUMN score SET (n_distinct = 100);
CREATE STATISTICS accounts_stats (dependencies) ON region, score FROM accounts;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER accounts_touch BEFORE INSERT OR UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER accounts_off AFTER DELETE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE accounts DISABLE TRIGGER accounts_off;
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY own_region ON accounts AS RESTRICTIVE FOR SELECT TO {role} USING (region = current_user);
CREATE POLICY everyone ON accounts USING (true) WITH CHECK (score > 0);
COMMENT ON TABLE accounts IS 'who''s who';
COMMENT ON COLUMN accounts.email IS 'contact';
COMMENT ON CONSTRAINT code_once ON accounts IS 'one code';
COMMENT ON INDEX accounts_email IS 'lower email';
COMMENT ON TRIGGER accounts_touch ON accounts IS 'touch';
COMMENT ON POLICY everyone ON accounts IS 'all';
COMMENT ON STATISTICS accounts_stats IS 'stats';
COMMENT ON CONSTRAINT logins_account_fkey ON logins IS 'login of';
GRANT SELECT, UPDATE ON accounts TO {role};
GRANT INSERT (email, region) ON accounts TO {role} WITH GRANT OPTION;
REVOKE TRUNCATE ON accounts FROM CURRENT_USER;
INSERT INTO accounts (email, manager, region, score, code)
    SELECT 'a' || i || '@corp.io', NULLIF(i / 10, 0), 'r' || (i % 5), 1 + i % 9, 'c' || i
    FROM generate_series(1, 500) i;
INSERT INTO logins SELECT i, 1 + i % 500 FROM generate_series(1, 900) i;
INSERT INTO audits SELECT i, 1 + i % 500 FROM generate_series(1, 50) i;
CREATE TABLE badges (
    id int GENERATED ALWAYS AS IDENTITY (START WITH 7 INCREMENT BY 3) PRIMARY KEY, holder text
);
COMMENT ON SEQUENCE badges_id_seq IS 'badge numbers';
GRANT USAGE ON SEQUENCE badges_id_seq TO {role};
INSERT INTO badges (holder) SELECT 'holder ' || i FROM generate_series(1, 30) i;
"""
RICH_RULES = """version: 1
database: rich
tables:
  public.accounts:
    columns:
      id: keep
      email: hash
      manager: keep
      region: keep
      score: keep
      code: {transformer: hash, params: {length: 32}}
  public.logins:
    columns: {id: keep, account: keep}
  public.audits:
    columns: {id: keep, account: keep}
  public.badges:
    columns: {id: keep, holder: hash}
"""


def schema_dump(url: str, major: int) -> str:
    import subprocess

    from deid.backends.postgresql.cloners.dump import choose_tools

    tools = choose_tools(major)
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(
        [tools.pg_dump, "--schema-only", "--dbname", dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    # pg_dump 15.14+ writes a random \restrict key; nothing else may differ
    return "\n".join(
        line for line in done.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def test_a_rebuilt_table_keeps_everything_it_carried(postgres, tmp_path):
    import uuid

    role = f"deid_stream_{uuid.uuid4().hex[:8]}"
    first = postgres.create_database("deid_rich")
    one = sa.create_engine(postgres.url(first), poolclass=sa.pool.NullPool)
    second = None
    try:
        with one.begin() as c:
            for statement in RICH.format(role=role).split(";\n"):
                if statement.strip():
                    rawsql.execute(c, statement)
        second = postgres.copy_database(first, "deid_rich_sql")
        other = sa.create_engine(postgres.url(second), poolclass=sa.pool.NullPool)
        path = tmp_path / "rich.yaml"
        path.write_text(RICH_RULES)
        with one.connect() as c:
            schema = backend_for("postgresql").introspect(c, "rich")
            major = c.dialect.server_version_info[0]
        plan = planning.build_plan(load_rules(path), schema)
        original = schema_dump(postgres.url(first), major)
        actions = {r.table: r.action for r in scrub_database(one, plan, SALT, stream_from_rows=0)}
        assert actions["public.accounts"] == actions["public.badges"] == "rebuilt"
        scrub_database(other, plan, SALT, stream=False)
        for name in (first, second):  # rebuilt by the stream, updated by the SQL forms: schemas untouched
            after = schema_dump(postgres.url(name), major)
            difference = "\n".join(
                difflib.unified_diff(original.splitlines(), after.splitlines(), lineterm="")
            )
            assert after == original, difference
        assert contents_of(one, "accounts") == contents_of(other, "accounts")
        sequence = "SELECT last_value, is_called FROM badges_id_seq"
        assert rows_of(one, sequence) == rows_of(other, sequence) == [("94", "true")]
        with one.connect() as c:
            valid = dict(
                rawsql.execute(c, "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f'").all()
            )
        assert valid == {"accounts_manager_fkey": True, "logins_account_fkey": True, "audits_account": False}
        other.dispose()
    finally:
        one.dispose()
        postgres.drop_database(first)
        if second:
            postgres.drop_database(second)
        with sa.create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT").connect() as c:
            c.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")


def rows_of(engine: sa.Engine, query: str) -> list[tuple[str, ...]]:
    with engine.connect() as c:
        return [tuple(str(v).lower() for v in r) for r in rawsql.execute(c, query)]


def contents_of(engine: sa.Engine, table: str) -> list[str]:
    with engine.connect() as c:
        return sorted(rawsql.execute(c, f"SELECT x::text FROM {table} x").scalars())


def test_the_stream_counts_every_row_of_every_scrubbed_column(twins):
    """The tallies validation reads instead of sampling: exact counts, checked against SQL's own."""
    streamed, _, plan = twins
    with streamed.begin() as c:  # some nicks already are the constant: unchanged, and found in production
        rawsql.execute(c, "UPDATE people SET nick = 'someone' WHERE id % 10 = 1 AND NOT is_test")
        expected = rawsql.execute(
            c,
            "SELECT count(*) FILTER (WHERE NOT is_test), "
            "count(*) FILTER (WHERE NOT is_test AND email IS NULL), "
            "count(*) FILTER (WHERE NOT is_test AND nick = 'someone'), count(*) FILTER (WHERE is_test), "
            "count(*) FILTER (WHERE NOT is_test AND nick IS NOT NULL) FROM people",
        ).one()
    rows, null_emails, someones, static, nicks = expected
    results = {r.table: r for r in scrub_database(streamed, plan, SALT, stream_from_rows=0)}
    people = results["public.people"].tallies
    assert people["email"] == {
        "rows": rows, "nulls_in": null_emails, "nulls_made": 0, "nulls_lost": 0, "unchanged": 0,
        "static": static, "out_of_shape": 0, "found_in_production": 0,
    }  # fmt: skip
    assert (
        people["nick"]["unchanged"] == someones
        and people["nick"]["rows"] - people["nick"]["nulls_in"] == nicks
    )
    # a constant is found in production by design (validation does not look it up): no digests taken
    assert "found_in_production" not in people["nick"]
    assert people["note"]["nulls_made"] == rows - people["note"]["nulls_in"]  # null: every value goes
    assert set(results["public.measures"].tallies) == {"secret"}  # updated in place: counted as well


PEOPLE_PROD = """
CREATE TABLE people (id serial PRIMARY KEY, email text NOT NULL, code text, born date);
INSERT INTO people (email, code, born)
SELECT 'person' || i || '@real-mail.example.org', 'CODE-' || (100000 + i), DATE '1980-01-01' + i
FROM generate_series(1, 400) AS i;
"""
PEOPLE_STREAM_RULES = """  public.people:
    columns:
      id: keep
      email: {class: email}
      code: {transformer: hash}
      born: {transformer: shift_date, params: {days: 20}}
"""


def test_validation_reads_the_streams_counts_of_every_row(refresh):
    """The run's validation reports the stream's exhaustive comparisons for each streamed column, and takes
    no sample of those columns (only shift_date's window, which needs both values side by side)."""
    from deid.records.store import read_records

    refresh.setup(PEOPLE_PROD, PEOPLE_STREAM_RULES, extra="")
    config = refresh.folder / "deid.yaml"  # a small table: streamed because the configuration says so
    config.write_text(
        config.read_text().replace("    retention: 2\n", "    retention: 2\n    stream_from_rows: 0\n")
    )
    assert refresh.run("2026-11-28").code == 0
    record = next(iter(read_records(refresh.folder / "records", "shop")))
    assert record["tables"]["public.people"]["action"] == "rebuilt"
    outcomes = {(o["expectation"], o["column"]): o for o in record["expectations"]["expectations"]}
    for column in ("email", "code"):
        differs = outcomes["value_differs_from_production", column]
        assert differs["ok"] and differs["checked"] == 400 and "every row" in differs["detail"]
        found = outcomes["value_not_found_in_production", column]
        assert found["ok"] and found["checked"] == 400 and found["unexpected"] == 0
        assert outcomes["nulls_stay_nulls", column]["ok"]
        shape = outcomes["values_match_transformer_shape", column]  # from the stream, not a scan of the copy
        assert (
            shape["ok"]
            and shape["checked"] == 400
            and shape["detail"] == "every scrubbed value, as it streamed"
        )
    assert "sampled" in outcomes["value_within_promised_window", "born"]["detail"]
    checked = [c["subject"] for c in record["checks"] if c["name"] == "values_changed"]
    assert "public.people.email" not in checked  # no sample of a column counted in full


def test_an_arrow_error_in_the_stream_is_retold_without_the_row(twins, monkeypatch):
    """pyarrow's CSV and compute errors quote the row or value they choke on: retold by their kind."""
    import pyarrow as pa

    from deid.backends.postgresql import stream

    streamed, _, plan = twins

    def choke(batch):
        raise pa.ArrowInvalid(f"CSV parse error: row {batch.column(0)[0]}")  # as Arrow writes it: a value

    def encoded(outputs, batch):
        return choke(batch)

    monkeypatch.setattr(stream, "_encoded", encoded)
    with pytest.raises(TerminalError) as failed:
        scrub_database(streamed, plan, SALT, tables={"public.visits"}, stream_from_rows=0)
    assert "ArrowInvalid" in str(failed.value) and "row" in str(failed.value)
    assert "CSV parse error" not in str(failed.value)


ORDERS_PROD = """
CREATE TABLE people (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, person int NOT NULL REFERENCES people(id));
INSERT INTO people (email) SELECT 'person' || i || '@real-mail.example.org' FROM generate_series(1, 300) i;
INSERT INTO orders (person) SELECT 1 + mod(i, 300) FROM generate_series(1, 600) i;
"""
ORDERS_RULES = """  public.people:
    columns:
      id: keep
      email: {class: email}
  public.orders:
    columns:
      id: keep
      person: keep
"""


def test_validate_checks_the_keys_the_swap_left_unchecked(refresh):
    """The swap of people adds the key of orders back NOT VALID, and the scrub leaves checking it to
    validate, which has the database validate it beside the suite (one read of orders, not a scan for
    orphans as well): the published key is valid. An orphan written after the scrub (triggers silent, as
    the scrub writes) fails validation, naming the key, and nothing is published."""
    refresh.setup(ORDERS_PROD, ORDERS_RULES)
    config = refresh.folder / "deid.yaml"
    config.write_text(
        config.read_text().replace("    retention: 2\n", "    retention: 2\n    stream_from_rows: 0\n")
    )
    for step in ("snapshot", "scrub", "rebase", "migrate"):
        assert refresh.run("2026-11-27", "--only", step).code == 0, step
    work = refresh.work("2026-11-27")
    assert refresh.state(work).unchecked_keys == [("public.orders", "orders_person_fkey")]
    key = "SELECT convalidated FROM pg_constraint WHERE conname = 'orders_person_fkey'"
    assert refresh.rows(work, key) == [(False,)]
    refresh.sql(
        work, "SET session_replication_role = replica; UPDATE orders SET person = 100000 WHERE id = 1"
    )
    failed = refresh.run("2026-11-27", "--only", "validate")
    assert failed.code == 1 and "foreign_key_without_orphans" in failed.err and "public.orders" in failed.err
    assert refresh.staging not in refresh.copies()

    assert refresh.run("2026-11-28").code == 0
    assert refresh.rows(refresh.staging, key) == [(True,)]
    record = next(iter(read_records(refresh.folder / "records", "shop")))
    (outcome,) = [
        o for o in record["expectations"]["expectations"] if o["expectation"] == "foreign_key_without_orphans"
    ]
    assert (
        outcome["ok"]
        and outcome["detail"] == "orders_person_fkey: validated by the database (VALIDATE CONSTRAINT)"
    )


def test_streams_done_is_called_once_as_the_last_streamed_tables_rows_are_in(twins):
    """`deid run` starts validation's imports when the scrub has no more rows to transform: once, after the
    first tables' results and before the last streamed table (visits, in the plan's order) is swapped in,
    its indexes still to build; at the very start when nothing streams."""
    from deid.backends.postgresql.scrub import prepare_scrub, scrub_tables
    from deid.backends.scrubbing import Scrubbing

    streamed, rewritten, plan = twins
    for engine, how in ((streamed, Scrubbing(stream_from_rows=0)), (rewritten, Scrubbing(stream=False))):
        with engine.connect() as c:
            schema = backend_for("postgresql").introspect(c, "streamed")
        events: list[str] = []

        def done(engine=engine, events=events) -> None:
            with engine.connect() as c:  # the last streamed table is not noted done yet
                noted = rawsql.execute(c, "SELECT count(*) FROM _deid.scrubbed WHERE state = 'done'")
                events.append(f"streams done, {noted.scalar()} noted")

        units = set(prepare_scrub(engine, plan, schema, how))
        scrub_tables(engine, plan, SALT, schema, units, events.append, how, done)
        expected = ["public.measures", "public.people", "streams done, 2 noted", "public.visits"]
        if not how.stream:
            expected = ["streams done, 0 noted", "public.measures", "public.people", "public.visits"]
        assert [e if isinstance(e, str) else e.table for e in events] == expected
