"""The Great Expectations runner: GX's built-ins where it has one, deid's own checks as GX custom
expectations, results in GX's format without values; it fails closed: an expectation GX cannot evaluate
fails, without its error text (which may quote a value)."""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from deid.expect.gx_runner import run_specs, run_suites
from deid.expect.spec import Spec
from deid.expect.sql import dialect_of
from tests.mysql_server import mysql_engine, mysql_server, mysql_url  # noqa: F401


def test_an_expectation_that_cannot_be_evaluated_fails_without_quoting_the_error(pg_engine: sa.Engine):
    broken = Spec(
        "broken", "public.t", (None,), "SELECT NULL::text AS column_name, 'secret-value'::int AS unexpected"
    )
    passing = Spec(
        "passing", "public.t", (None,), "SELECT NULL::text AS column_name, 1 AS unexpected WHERE false"
    )
    failing = Spec(
        "failing",
        "public.t",
        ("a", "b"),
        "SELECT 'b'::text AS column_name, 3 AS unexpected, 10 AS checked, 'ssn' AS pattern",
    )
    outcomes = {(o.expectation, o.column): o for o in run_specs(pg_engine, "x", [broken, passing, failing])}
    assert not outcomes[("broken", None)].ok and outcomes[("broken", None)].unexpected is None
    assert "secret-value" not in str(outcomes[("broken", None)])
    assert outcomes[("passing", None)].ok
    assert outcomes[("failing", "a")].ok
    b = outcomes[("failing", "b")]
    assert (b.ok, b.unexpected, b.checked) == (False, 3, 10) and "ssn: 3 rows" in str(b)


def test_row_counts_and_uniqueness_are_gx_built_ins_whose_results_hold_no_value(pg_engine: sa.Engine):
    """GX's own expectations where it has one, on a table asset (mixed case, `:` and a space in the names);
    the results, in GX's format, count what broke them and never list a value."""
    table = "public.Gx Built:ins"
    with pg_engine.begin() as c:
        c.exec_driver_sql('DROP TABLE IF EXISTS "Gx Built:ins"')
        c.exec_driver_sql('CREATE TABLE "Gx Built:ins" ("Email Address" text)')
        c.exec_driver_sql(
            """INSERT INTO "Gx Built:ins" VALUES ('dup-secret@x.test'), ('dup-secret@x.test'), ('b@x.test')"""
        )
    try:
        specs = [
            Spec("row_count_unchanged", table, (None,), "", gx="ExpectTableRowCountToEqual",
                 gx_kwargs={"value": 4}),
            Spec("unique_values", table, ("Email Address",), "", gx="ExpectColumnValuesToBeUnique",
                 gx_kwargs={"column": "Email Address"}),
            Spec("sequence_above_production", "public.s", (None,),
                 "SELECT NULL::text AS column_name, 1 AS unexpected WHERE false"),
        ]  # fmt: skip
        run = run_suites(pg_engine, "x", specs)
    finally:
        with pg_engine.begin() as c:
            c.exec_driver_sql('DROP TABLE "Gx Built:ins"')
    outcomes = {o.expectation: o for o in run.outcomes}
    assert (outcomes["row_count_unchanged"].ok, outcomes["row_count_unchanged"].unexpected) == (False, 1)
    assert outcomes["row_count_unchanged"].checked == 3
    unique = outcomes["unique_values"]
    assert (unique.ok, unique.unexpected, unique.checked) == (False, 2, 3)
    assert outcomes["sequence_above_production"].ok
    kinds = {r["expectation_config"]["type"] for result in run.results for r in result["results"]}
    assert kinds == {
        "expect_table_row_count_to_equal",
        "expect_column_values_to_be_unique",
        "expect_sequence_above_production",
    }
    text = json.dumps(run.results)
    assert "dup-secret" not in text and "partial_unexpected_list" not in text


def test_uniqueness_is_checked_on_a_table_with_a_column_type_sqlalchemy_does_not_know(pg_engine: sa.Engine):
    """On a table asset GX compiles every column's type first and fails on one SQLAlchemy reflects as
    NullType (xml): the unique check of another column must still be evaluated (found by the canary test,
    where it failed closed and held a good copy back). deid's own query counts as GX does: the rows whose
    value another row has."""
    with pg_engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS gx_xml_people")
        c.exec_driver_sql("CREATE TABLE gx_xml_people (id int PRIMARY KEY, email text, resume xml)")
        # NULLs only: an embedded server built without libxml refuses any xml value, never the type
        c.exec_driver_sql("INSERT INTO gx_xml_people VALUES (1, 'a@x.test', NULL), (2, 'b@x.test', NULL)")
        c.exec_driver_sql("INSERT INTO gx_xml_people VALUES (3, 'a@x.test', NULL)")
    d, people = dialect_of(pg_engine), "public.gx_xml_people"
    try:
        specs = [
            Spec("row_count_unchanged", "public.gx_xml_people", (None,), "", gx="ExpectTableRowCountToEqual",
                 gx_kwargs={"value": 2}),
            Spec("unique_values", people, ("email",), d.unique_query(people, "email"),
                 gx="ExpectColumnValuesToBeUnique", gx_kwargs={"column": "email"}),
            Spec("unique_values", people, ("id",), d.unique_query(people, "id"),
                 gx="ExpectColumnValuesToBeUnique", gx_kwargs={"column": "id"}),
        ]  # fmt: skip
        outcomes = run_specs(pg_engine, "x", specs)
    finally:
        with pg_engine.begin() as c:
            c.exec_driver_sql("DROP TABLE gx_xml_people")
    assert [(o.expectation, o.column, o.ok, o.unexpected) for o in outcomes] == [
        ("row_count_unchanged", None, False, 1),
        ("unique_values", "email", False, 2),
        ("unique_values", "id", True, 0),
    ]


def test_an_error_text_is_not_kept_in_gx_results(pg_engine: sa.Engine):
    # the server's message quotes the value it could not cast, which appears nowhere in the query
    broken = Spec(
        "broken", "public.t", (None,), "SELECT NULL::text AS column_name, md5('v')::int AS unexpected"
    )
    run = run_suites(pg_engine, "x", [broken])
    assert not run.outcomes[0].ok
    (item,) = run.results[0]["results"]
    assert item["exception_info"]["raised_exception"] is True
    assert hashlib.md5(b"v").hexdigest() not in json.dumps(run.results)


def test_deids_checks_are_gx_custom_expectations_without_overrides():
    """Subclasses of GX's UnexpectedRowsExpectation that keep GX's own validation (no private override),
    registered under their names; GX imported as it is, nothing deferred or patched."""
    import sys

    from great_expectations.expectations.registry import get_expectation_impl

    from deid.expect import gx_expectations

    for name, cls in gx_expectations.CUSTOM.items():
        assert "_validate" not in cls.__dict__
        assert get_expectation_impl("expect_" + name) is cls
    assert not any(type(f).__module__.startswith("deid") for f in sys.meta_path)


def test_no_statement_of_a_suite_brings_a_tables_rows_into_the_process(pg_engine: sa.Engine):
    """GX computes the built-ins in the database: whatever it runs returns a handful of rows, never the
    table's (a query asset made GX run `SELECT <columns> FROM <table>` whole, to learn its columns)."""
    with pg_engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS gx_many")
        c.exec_driver_sql("CREATE TABLE gx_many (id int PRIMARY KEY, email text, site text)")
        c.exec_driver_sql(
            "INSERT INTO gx_many SELECT g, 'u' || g || '@example.test', "
            "'https://example.test/' || md5(g::text) FROM generate_series(1, 5000) AS g"
        )
    d, table = dialect_of(pg_engine), "public.gx_many"
    specs = [
        Spec("row_count_unchanged", table, (None,), "", gx="ExpectTableRowCountToEqual",
             gx_kwargs={"value": 5000}),
        Spec("unique_values", table, ("email",), d.unique_query(table, "email"),
             gx="ExpectColumnValuesToBeUnique", gx_kwargs={"column": "email"}),
        Spec("values_match_transformer_shape", table, ("site",), "SELECT 1 WHERE false",
             gx="ExpectColumnValuesToMatchRegex",
             gx_kwargs={"column": "site", "regex": "^https://example\\.test/[0-9a-f]{32}$"}),
    ]  # fmt: skip
    returned: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        returned.append(cursor.rowcount)

    sa.event.listen(sa.engine.Engine, "after_cursor_execute", count)
    try:
        outcomes = run_specs(pg_engine, "x", specs)
    finally:
        sa.event.remove(sa.engine.Engine, "after_cursor_execute", count)
        with pg_engine.begin() as c:
            c.exec_driver_sql("DROP TABLE gx_many")
    assert [(o.expectation, o.ok, o.checked) for o in outcomes] == [
        ("row_count_unchanged", True, 5000),
        ("unique_values", True, 5000),
        ("values_match_transformer_shape", True, 5000),
    ]
    assert returned and max(returned) < 100, max(returned)


def test_a_mysql_table_sqlalchemy_cannot_reflect_is_checked_by_deids_own_queries(mysql_engine: sa.Engine):
    """MySQL/MariaDB's geometry reflects as NullType: the table's uniqueness runs as deid's own query (rows
    whose value another row has, as GX counts them; a unique index proves the key), its row count as GX's."""
    with mysql_engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE places (id int PRIMARY KEY, email varchar(50), spot geometry)")
        c.exec_driver_sql("INSERT INTO places VALUES (1, 'a@x.test', NULL), (2, 'b@x.test', NULL)")
        c.exec_driver_sql("INSERT INTO places VALUES (3, 'a@x.test', NULL)")
    d, table = dialect_of(mysql_engine), "public.places"
    specs = [
        Spec("row_count_unchanged", table, (None,), "", gx="ExpectTableRowCountToEqual",
             gx_kwargs={"value": 3}),
        *(Spec("unique_values", table, (column,), d.unique_query(table, column),
               gx="ExpectColumnValuesToBeUnique", gx_kwargs={"column": column})
          for column in ("email", "id")),
    ]  # fmt: skip
    run = run_suites(mysql_engine, "x", specs)
    assert [(o.expectation, o.column, o.ok, o.unexpected) for o in run.outcomes] == [
        ("row_count_unchanged", None, True, 0),
        ("unique_values", "email", False, 2),
        ("unique_values", "id", True, 0),
    ]
    types = {r["expectation_config"]["type"] for suite in run.results for r in suite["results"]}
    assert "expect_column_values_to_be_unique" not in types
