"""Row conditions: the restricted grammar accepts what data owners need and refuses everything else."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from deid.backends import backend_for
from deid.rules.condition import ConditionError, parse_condition
from tests.mysql_server import mysql_engine, mysql_server, mysql_url  # noqa: F401

ACCEPTED = [
    ("is_test_account", '"is_test_account"', ("is_test_account",)),
    ("is_test_account = true", '"is_test_account" = TRUE', ("is_test_account",)),
    (
        "email_domain = 'test.example' AND NOT deleted",
        '("email_domain" = \'test.example\' AND NOT ("deleted"))',
        ("email_domain", "deleted"),
    ),
    ("kind IN ('qa', 'fake') OR id < -1.5", "(\"kind\" IN ('qa', 'fake') OR \"id\" < -1.5)", ("kind", "id")),
    ("note IS NOT NULL", '"note" IS NOT NULL', ("note",)),
    ("flag IS FALSE", '"flag" IS FALSE', ("flag",)),
    ("name = 'O''Brien'", "\"name\" = 'O''Brien'", ("name",)),
    ('"Mixed Case" <> 3', '"Mixed Case" <> 3', ("Mixed Case",)),
    ("email LIKE '%@test%'", "\"email\" LIKE '%@test%'", ("email",)),
    ("email NOT ILIKE 'QA\\_%'", "\"email\" NOT ILIKE 'QA\\_%'", ("email",)),
    ("NOT name LIKE 'O''B%'", "NOT (\"name\" LIKE 'O''B%')", ("name",)),
]

REFUSED = [
    ("1=1; DROP TABLE x", "';' (several statements)"),
    ("a = 1 -- trailing", "comments are not allowed"),
    ("a = 1 /* c */", "comments are not allowed"),
    ("id IN (SELECT 1)", "not a subquery"),
    ("id = (SELECT max(id) FROM t)", "subquery"),
    ("lower(email) = 'x'", "function call"),
    ("pg_sleep(10) IS NULL", "function call"),
    ("email LIKE '%'", "has no literal character, so it matches (nearly) every value"),
    ("email NOT LIKE '_%%'", "has no literal character"),
    ("email LIKE 'qa\\'", "ends with the escape character"),
    ("email LIKE 'qa' ESCAPE '!'", "LIKE takes no ESCAPE clause"),
    ("email LIKE other_column", "LIKE compares a column with a quoted pattern"),
    ("'qa%' ILIKE email", "ILIKE compares a column with a quoted pattern"),
    ("email LIKE 'qa' || '%'", "LIKE compares a column with a quoted pattern"),
    ("email LIKE 'qa%' OR NOT email LIKE 'qa%'", "true for every row"),
    ("email NOT LIKE 'qa%' OR email LIKE 'qa%'", "true for every row"),
    ("id::text = '1'", "is not allowed"),
    ("users.id = 1", "bare column name"),
    ("a IS 'x'", "IS may only be followed by NULL, TRUE or FALSE"),
    ("a IN (b, c)", "list of literals"),
    ("", "empty"),
    ("a = ", "cannot parse"),
]


@pytest.mark.parametrize(("text", "sql", "columns"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_condition_is_rendered_with_quoted_identifiers(text, sql, columns):
    condition = parse_condition(text)
    assert condition.render(backend_for("postgresql")) == sql
    assert condition.columns == columns


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[r[0] or "empty" for r in REFUSED])
def test_refused_condition_names_the_reason(text, message):
    with pytest.raises(ConditionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_condition(text)


SELECTIONS = [
    ("kind IN ('qa', 'fake') AND NOT deleted", [1]),
    ('"Mixed Case" <> 3 OR kind IS NULL', [2, 4]),
    ("deleted IS NOT TRUE AND id >= 2", [2, 4]),
    ("kind LIKE 'fa%'", [3]),  # % through text() and the driver untouched
    ("kind NOT ILIKE 'Q_'", [2, 3, 5, 6]),
    ("kind LIKE 're_l' OR kind ILIKE '%AK%'", [2, 3]),
    ("kind LIKE 'q\\_%' OR kind = 'it''s'", [5, 6]),  # an escaped _ and a quote inside a literal
]
ROWS = (
    "(1,'qa',3,false),(2,'real',4,false),(3,'fake',3,true),(4,NULL,NULL,NULL),(5,'q_a',3,true),"
    "(6,'it''s',3,true)"
)


def _selected(c: sa.Connection, engine_name: str) -> None:
    for text, expected in SELECTIONS:
        sql = parse_condition(text).render(backend_for(engine_name))
        rows = c.execute(sa.text(f"SELECT id FROM t WHERE {sql} ORDER BY id")).scalars().all()
        assert rows == expected, text


def test_rendered_condition_selects_the_same_rows_in_postgresql(pg_engine):
    """The rendered SQL is valid PostgreSQL and means what the data owner wrote."""
    with pg_engine.begin() as c:
        c.exec_driver_sql('CREATE TABLE t (id int, kind text, "Mixed Case" int, deleted boolean)')
        c.exec_driver_sql(f"INSERT INTO t VALUES {ROWS}")
        _selected(c, "postgresql")


def test_rendered_condition_selects_the_same_rows_in_mariadb(mysql_engine):
    """The same conditions, spelt for MySQL/MariaDB (backquoted names, backslashes in literals doubled, ILIKE
    as LOWER() LIKE LOWER()), select the same rows."""
    with mysql_engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (id int, kind varchar(10), `Mixed Case` int, deleted boolean)")
        c.exec_driver_sql(f"INSERT INTO t VALUES {ROWS}")
        _selected(c, "mysql")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(" * 11 + "a" + ")" * 11, "parentheses are nested 11 deep (at most 10)"),
        ("(" * 300 + "a" + ")" * 300, "parentheses are nested 300 deep (at most 10)"),
        ("(" * 5000, "5000 characters (at most 2000)"),  # the length is checked first: nothing is read
        ("NOT " * 300 + "a", "300 operators"),
        (" AND ".join(["a = 1"] * 40), "39 operators"),
        ("a = " + "- " * 100 + "1", "100 operators"),
        ("a IN (" + ", ".join(["1"] * 700) + ")", "2105 characters (at most 2000)"),
    ],
    ids=["11 parentheses", "300 parentheses", "5000 parentheses", "NOT chain", "AND chain", "minus", "long"],
)
def test_a_condition_too_deep_or_too_long_is_refused_with_the_limit(text, message):
    started = time.perf_counter()
    with pytest.raises(ConditionError, match=re.escape(message)):
        parse_condition(text)
    assert time.perf_counter() - started < 1


def test_a_condition_at_the_limits_is_accepted():
    text = "(" * 10 + " OR ".join(f"id = {i}" for i in range(32)) + ")" * 10
    assert parse_condition(text).columns == ("id",)


def test_recursion_in_the_parser_is_a_condition_error(monkeypatch):
    """Defence in depth: should sqlglot ever recurse too deep within the limits, the rule is refused."""

    def too_deep(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("deid.rules.condition.sqlglot.parse_one", too_deep)
    with pytest.raises(ConditionError, match="too deeply nested to read"):
        parse_condition("a = 1")


@pytest.mark.parametrize("value", [True, 1, ["a"], {"a": 1}])
def test_a_condition_that_is_not_text_says_so(value):
    with pytest.raises(ConditionError, match="a condition is text, such as is_test_account = true"):
        parse_condition(value)
