"""Row conditions: the restricted grammar accepts what data owners need and refuses everything else."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from deid.rules.condition import ConditionError, parse_condition

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
]

REFUSED = [
    ("1=1; DROP TABLE x", "';' (several statements)"),
    ("a = 1 -- trailing", "comments are not allowed"),
    ("a = 1 /* c */", "comments are not allowed"),
    ("id IN (SELECT 1)", "not a subquery"),
    ("id = (SELECT max(id) FROM t)", "subquery"),
    ("lower(email) = 'x'", "function call"),
    ("pg_sleep(10) IS NULL", "function call"),
    ("email LIKE '%@test%'", "is not allowed"),
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
    assert condition.sql == sql
    assert condition.columns == columns


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[r[0] or "empty" for r in REFUSED])
def test_refused_condition_names_the_reason(text, message):
    with pytest.raises(ConditionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_condition(text)


def test_rendered_condition_selects_the_same_rows_in_postgresql(pg_engine):
    """The rendered SQL is valid PostgreSQL and means what the data owner wrote."""
    with pg_engine.begin() as c:
        c.exec_driver_sql('CREATE TABLE t (id int, kind text, "Mixed Case" int, deleted boolean)')
        c.exec_driver_sql(
            "INSERT INTO t VALUES (1,'qa',3,false),(2,'real',4,false),(3,'fake',3,true),(4,NULL,NULL,NULL)"
        )
        for text, expected in [
            ("kind IN ('qa', 'fake') AND NOT deleted", [1]),
            ('"Mixed Case" <> 3 OR kind IS NULL', [2, 4]),
            ("deleted IS NOT TRUE AND id >= 2", [2, 4]),
        ]:
            sql = parse_condition(text).sql
            rows = c.execute(sa.text(f"SELECT id FROM t WHERE {sql} ORDER BY id")).scalars().all()
            assert rows == expected, text
