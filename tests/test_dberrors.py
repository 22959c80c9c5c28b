"""Database errors retold without values, on each engine: the backend reads its driver's error (code,
objects, whether a retry may help) and deid.dberrors words it; a row's value never reaches the message."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from deid import db
from deid.backends import diagnose
from deid.dberrors import retell
from deid.errors import ConfigError, TerminalError
from tests.mysql_server import mysql_engine, mysql_server, mysql_url  # noqa: F401

SECRET = "s3cret-value-4711"


def _failure(engine: sa.Engine, statements: list[str]) -> sa.exc.DBAPIError:
    with engine.connect() as c:
        for statement in statements[:-1]:
            c.exec_driver_sql(statement)
        c.commit()
        with pytest.raises(sa.exc.DBAPIError) as caught:
            c.exec_driver_sql(statements[-1])
    return caught.value


def test_a_duplicate_key_on_postgresql_is_retold_with_its_constraint_never_its_value(pg_engine):
    error = _failure(
        pg_engine,
        [
            "CREATE TABLE people (email text CONSTRAINT people_email_key UNIQUE)",
            f"INSERT INTO people VALUES ('{SECRET}')",
            f"INSERT INTO people VALUES ('{SECRET}')",
        ],
    )
    assert SECRET in str(error.orig)  # the driver's own text quotes the row: what retell must not pass on
    told = retell(error, "the scrub of public.people")
    assert isinstance(told, TerminalError)
    assert str(told).startswith("the scrub of public.people failed (SQLSTATE 23505; table people; ")
    assert "constraint people_email_key" in str(told) and SECRET not in str(told)


def test_a_duplicate_key_on_mariadb_is_retold_by_its_number_never_its_value(mysql_engine):
    error = _failure(
        mysql_engine,
        [
            "CREATE TABLE people (email varchar(80), CONSTRAINT people_email_key UNIQUE (email))",
            f"INSERT INTO people VALUES ('{SECRET}')",
            f"INSERT INTO people VALUES ('{SECRET}')",
        ],
    )
    assert SECRET in str(error.orig)
    told = retell(error, "the scrub of public.people")
    assert str(told) == "the scrub of public.people failed (error 1062)"
    assert isinstance(told, TerminalError)


def test_a_foreign_key_failure_on_mariadb_keeps_its_text_which_names_objects_only(mysql_engine):
    error = _failure(
        mysql_engine,
        [
            "CREATE TABLE parent (id int PRIMARY KEY)",
            "CREATE TABLE child (id int, parent_id int, CONSTRAINT child_parent FOREIGN KEY (parent_id) "
            "REFERENCES parent (id))",
            "INSERT INTO child VALUES (1, 4711)",
        ],
    )
    diagnosis = diagnose(error)
    assert diagnosis.code == "error 1452" and diagnosis.value_free and not diagnosis.transient
    told = str(retell(error, "validation"))
    assert "child_parent" in told and "4711" not in told


def test_a_statement_error_is_about_the_statement_on_both_engines(pg_engine, mysql_engine):
    for engine, code in ((pg_engine, "SQLSTATE 42P01"), (mysql_engine, "error 1146")):
        diagnosis = diagnose(_failure(engine, ["SELECT * FROM no_such_table"]))
        assert diagnosis.code == code and diagnosis.about_statement and diagnosis.message
        assert "no_such_table" in diagnosis.message


def test_a_server_that_says_no_is_a_config_error_on_both_engines(postgres, mysql_server):  # noqa: F811
    for url in (postgres.url("deid_no_such_database"), mysql_server.url("deid_no_such_database")):
        engine = db.engine(url)
        with pytest.raises(ConfigError, match="Fix the connection's user, password or database name"):
            engine.connect()
        engine.dispose()


def test_an_error_of_no_known_driver_has_no_diagnosis():
    assert diagnose(ValueError("x")).code == ""
    told = retell(ValueError("x"), "the scrub")
    assert str(told) == "the scrub failed (ValueError)"
