"""Validation of tables and columns whose names need quoting: mixed case, spaces, `:`, braces and `%`.

PostgreSQL allows any name once quoted, and production databases have them ("Email Address", "ZipCode").
Every expectation query goes through SQLAlchemy's text() (deid's own and Great Expectations'), where `:name`
is a bind parameter and `%` the driver's placeholder, and through GX's str.format, where braces are fields.
A clean scrub of such a database must pass validation, and a broken one must fail it, naming the columns
as they are written.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid.backends import backend_for
from deid.expect import validate_with_expectations
from deid.rules.load import load_rules
from deid.steps.rebase import rebase_database
from deid.steps.scrub import scrub_database

SALT = "odd-names-salt"
DATE = dt.date(2026, 11, 28)
CUSTOMERS, ORDERS, REFUNDS = "Sales Data.Customer List", "Sales Data.Orders :x", "Sales Data.Refunds 100%"

PRODUCTION = """
CREATE SCHEMA "Sales Data";
CREATE TABLE "Sales Data"."Customer List" (
    "ID" serial PRIMARY KEY,
    "Email Address" text UNIQUE,
    "ZipCode" text,
    "Full Name" text,
    "Note :draft" text,
    "a:b" text,
    "{batch}" text,
    "Is Test" boolean NOT NULL DEFAULT false
);
CREATE TABLE "Sales Data"."Orders :x" (
    "Order ID" serial PRIMARY KEY,
    "Customer ID" int REFERENCES "Sales Data"."Customer List" ("ID"),
    "Ship To:Zip" text
);
-- `%` only where the scrub rewrites nothing: see test_a_percent_sign_in_a_rewritten_name_is_scrubbed
CREATE TABLE "Sales Data"."Refunds 100%" (
    "Refund ID" serial PRIMARY KEY,
    "Customer ID" int REFERENCES "Sales Data"."Customer List" ("ID"),
    "Reason 50%" text,
    "Test 100%" boolean NOT NULL DEFAULT false
);
INSERT INTO "Sales Data"."Customer List"
    ("Email Address", "ZipCode", "Full Name", "Note :draft", "a:b", "{batch}", "Is Test")
SELECT 'person' || i || '@mail.test', lpad((10000 + i * 7)::text, 5, '0'), 'Name ' || i,
       'kept note ' || i, 'ab ' || i, 'braces ' || i, i <= 3
FROM generate_series(1, 60) AS i;
INSERT INTO "Sales Data"."Orders :x" ("Customer ID", "Ship To:Zip")
SELECT 1 + i % 60, lpad((20000 + i)::text, 5, '0') FROM generate_series(1, 120) AS i;
INSERT INTO "Sales Data"."Refunds 100%" ("Customer ID", "Reason 50%", "Test 100%")
SELECT 1 + i % 60, 'damaged in transit ' || i, i <= 2 FROM generate_series(1, 30) AS i;
"""

RULES = """\
database: odd
tables:
  Sales Data.Customer List:
    keep_rows_where: '"Is Test"'
    columns:
      ID: keep
      Email Address: {transformer: fake.email, params: {unique: true}}
      ZipCode: generalize_zip
      Full Name: fake.name
      "Note :draft": {transformer: keep, reason: "notes written by staff, reviewed"}
      "a:b": {transformer: hash}
      "{batch}": {transformer: keep, reason: "reviewed"}
      Is Test: keep
  "Sales Data.Orders :x":
    columns:
      Order ID: keep
      Customer ID: keep
      "Ship To:Zip": generalize_zip
  Sales Data.Refunds 100%:
    keep_rows_where: "\\"Test 100%\\" AND \\"Reason 50%\\" <> '50%:x'"
    columns:
      Refund ID: keep
      Customer ID: keep
      Reason 50%: {transformer: keep, reason: "reasons are chosen from a list"}
      Test 100%: keep
"""


def raw(connection: sa.Connection, sql: str) -> None:
    """SQL as written, in the connection's transaction: exec_driver_sql would pass psycopg parameters, and
    psycopg would then read `%` as a placeholder."""
    connection.connection.driver_connection.execute(sql)


def databases(postgres, tmp_path, production: str, rules_text: str):
    """Production, and a working copy of it (not yet scrubbed): their engines, the plan and the schema.
    Both databases are dropped afterwards, however far the setup got."""
    prod_name, work_name = postgres.create_database("deid_odd_prod"), None
    engines: list[sa.Engine] = []
    try:
        prod = sa.create_engine(postgres.url(prod_name))
        engines.append(prod)
        with prod.begin() as c:
            raw(c, production)
        with prod.connect() as c:
            schema = backend_for("postgresql").introspect(c, "odd")
        prod.dispose()  # CREATE DATABASE ... TEMPLATE needs the source without sessions
        work_name = postgres.copy_database(prod_name, "deid_odd_work")
        rules = tmp_path / "odd.yaml"
        rules.write_text(rules_text)
        plan = planning.build_plan(load_rules(rules), schema)
        work = sa.create_engine(postgres.url(work_name))
        engines.append(work)
        yield prod, work, plan, schema
    finally:
        for engine in engines:
            engine.dispose()
        for name in filter(None, (work_name, prod_name)):
            postgres.drop_database(name)


@pytest.fixture
def odd(postgres, tmp_path):
    yield from databases(postgres, tmp_path, PRODUCTION, RULES)


def scrub_and_validate(prod, work, plan, schema, *broken: str):
    """Scrub and rebase the copy, then break it with `broken` statements (as a faulty scrub would), then
    validate it."""
    scrub_database(work, plan, SALT)
    with work.begin() as c:
        offsets = rebase_database(c, schema, DATE)
        raw(c, "SET LOCAL session_replication_role = replica")
        for statement in broken:
            raw(c, statement)
    return validate_with_expectations(prod, work, plan, schema, offsets)


def test_a_clean_scrub_of_odd_names_passes_validation(odd):
    prod, work, plan, schema = odd
    report = scrub_and_validate(prod, work, plan, schema)
    assert report.ok, "\n".join(str(o) for o in report.failed)
    places = {(o.expectation, o.place) for o in report.outcomes}
    assert {
        ("values_match_transformer_shape", f"{CUSTOMERS}.Email Address"),
        ("values_match_transformer_shape", f"{CUSTOMERS}.a:b"),
        ("unique_values", f"{CUSTOMERS}.Email Address"),
        ("static_rows_identical", CUSTOMERS),
        ("kept_text_without_pii", f"{CUSTOMERS}.Note :draft"),
        ("kept_text_without_pii", f"{CUSTOMERS}.{{batch}}"),
        ("kept_text_without_production_identifiers", f"{CUSTOMERS}.Note :draft"),
        ("value_differs_from_production", f"{CUSTOMERS}.ZipCode"),
        ("value_not_found_in_production", f"{CUSTOMERS}.Email Address"),
        ("values_match_transformer_shape", f"{ORDERS}.Ship To:Zip"),
        ("foreign_key_without_orphans", ORDERS),
        ("row_count_unchanged", REFUNDS),
        ("static_rows_identical", REFUNDS),
        ("foreign_key_without_orphans", REFUNDS),
        ("kept_text_without_pii", f"{REFUNDS}.Reason 50%"),
        ("sequence_above_production", "Sales Data.Refunds 100%_Refund ID_seq"),
    } <= places


def test_a_broken_scrub_of_odd_names_fails_naming_the_columns(odd):
    prod, work, plan, schema = odd
    report = scrub_and_validate(
        prod,
        work,
        plan,
        schema,
        'UPDATE "Sales Data"."Customer List" SET "Note :draft" = \'call 555-867-5309\', "a:b" = \'no hash\' '
        'WHERE "ID" = 10',
        'UPDATE "Sales Data"."Refunds 100%" SET "Reason 50%" = \'card 4111 1111 1111 1111\' '
        'WHERE "Refund ID" = 9',
        'UPDATE "Sales Data"."Refunds 100%" SET "Reason 50%" = \'changed\' WHERE "Test 100%"',
        'DELETE FROM "Sales Data"."Orders :x" WHERE "Order ID" = 1',
    )
    assert {(o.expectation, o.place) for o in report.failed} == {
        ("kept_text_without_pii", f"{CUSTOMERS}.Note :draft"),
        ("values_match_transformer_shape", f"{CUSTOMERS}.a:b"),
        ("kept_text_without_pii", f"{REFUNDS}.Reason 50%"),
        ("static_rows_identical", REFUNDS),
        ("row_count_unchanged", ORDERS),
    }, "\n".join(str(o) for o in report.failed)


PERCENT_PRODUCTION = """
CREATE TABLE "Pay 100%" ("ID" serial PRIMARY KEY, "Email 50%" text UNIQUE, "Zip %s" text, "Note %(x)s" text,
    "Test %" boolean NOT NULL DEFAULT false);
INSERT INTO "Pay 100%" ("Email 50%", "Zip %s", "Note %(x)s", "Test %")
SELECT 'p' || i || '@mail.test', lpad((10000 + i * 7)::text, 5, '0'), 'note ' || i, i <= 2
FROM generate_series(1, 40) AS i;
"""

PERCENT_RULES = """\
database: odd
tables:
  Pay 100%:
    keep_rows_where: '"Test %"'
    columns:
      ID: keep
      Email 50%: {transformer: fake.email, params: {unique: true}}
      Zip %s: generalize_zip
      Note %(x)s: {transformer: redact, params: {keep_start: 1, keep_end: 0}}
      Test %: keep
"""


@pytest.fixture
def percent(postgres, tmp_path):
    yield from databases(postgres, tmp_path, PERCENT_PRODUCTION, PERCENT_RULES)


def test_a_percent_sign_in_a_rewritten_name_is_scrubbed(percent):
    """psycopg reads '%' as a placeholder when a statement comes with parameters: deid's own statements go
    to the server without any (deid.rawsql), so a '%' in a name is just a character."""
    prod, work, plan, schema = percent
    report = scrub_and_validate(prod, work, plan, schema)
    assert report.ok, "\n".join(str(o) for o in report.failed)
    assert ("unique_values", "public.Pay 100%.Email 50%") in {
        (o.expectation, o.place) for o in report.outcomes
    }
