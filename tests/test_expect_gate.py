"""The validation gate on real PostgreSQL: a clean scrub passes; deliberately broken scrubs are each caught,
and the message names the place (table, column, expectation, counts) but never a production value."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid.backends import backend_for
from deid.demo.seed import seed
from deid.errors import TerminalError
from deid.expect import Settings, raise_on_failure, validate_with_expectations
from deid.rules.load import load_rules
from deid.steps.migrate import awaiting_migrations
from deid.steps.rebase import rebase_database
from deid.steps.scrub import scrub_database

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules" / "learners.yaml"
SALT = "expect-test-salt"
DATE = dt.date(2026, 11, 28)


class Demo:
    """A seeded production database, its schema and plan, and working copies made from it."""

    def __init__(self, postgres):
        self.postgres = postgres
        self.prod_name = postgres.create_database("deid_exp_prod")
        seed(postgres.url(self.prod_name), learners=200)
        self.prod = sa.create_engine(postgres.url(self.prod_name))
        with self.prod.connect() as c:
            self.schema = backend_for("postgresql").introspect(c, "learners")
        self.plan = plan_for(RULES.read_text(), self.schema)
        self.copies: list[str] = []

    def working_copy(self, rules_text: str | None = None) -> tuple[sa.Engine, dict]:
        """A scrubbed, rebased copy (with the given rules, else the demo's); its rebase record."""
        self.prod.dispose()  # CREATE DATABASE ... TEMPLATE needs the source without sessions
        name = self.postgres.copy_database(self.prod_name, "deid_exp_work")
        self.copies.append(name)
        work = sa.create_engine(self.postgres.url(name))
        plan = self.plan if rules_text is None else plan_for(rules_text, self.schema)
        scrub_database(work, plan, SALT)
        with work.begin() as c:
            offsets = rebase_database(c, self.schema, DATE)
        return work, offsets

    def validate(self, work: sa.Engine, offsets: dict, settings: Settings | None = None):
        return validate_with_expectations(self.prod, work, self.plan, self.schema, offsets, settings)

    def production_values(self) -> set[str]:
        """Production's values of every scrubbed text column long enough to be recognisable in a message."""
        values: set[str] = set()
        with self.prod.connect() as c:
            for table_plan in self.plan.tables:
                for action in table_plan.rewritten:
                    sql = f'SELECT DISTINCT "{action.column}"::text FROM {_quoted(table_plan.table)}'
                    values |= {v for (v,) in c.execute(sa.text(sql)) if v and len(v) >= 6}
        return values

    def close(self):
        self.prod.dispose()
        for name in self.copies:
            self.postgres.drop_database(name)
        self.postgres.drop_database(self.prod_name)


def _quoted(table: str) -> str:
    schema, _, name = table.partition(".")
    return f'"{schema}"."{name}"'


def plan_for(rules_text: str, schema):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "learners.yaml"
        path.write_text(rules_text)
        rules, _ = awaiting_migrations(load_rules(path), schema, has_migrations=True)
    return planning.build_plan(rules, schema)


@pytest.fixture(scope="module")
def demo(postgres):
    made = Demo(postgres)
    yield made
    made.close()


def failure_message(report) -> str:
    with pytest.raises(TerminalError) as caught:
        raise_on_failure(report)
    return str(caught.value)


def assert_no_values(message: str, demo: Demo, *also: str) -> None:
    leaked = [v for v in (demo.production_values() | set(also)) if v in message]
    assert not leaked, "the message quotes production values"


def failed(report) -> set[tuple[str, str, str | None]]:
    return {(o.expectation, o.table, o.column) for o in report.failed}


def execute(work: sa.Engine, *statements: str, **params) -> None:
    with work.begin() as c:
        c.exec_driver_sql("SET session_replication_role = replica")  # as a broken scrub would: no FK checks
        for statement in statements:
            c.execute(sa.text(statement), params)


def test_a_clean_scrub_passes(demo):
    work, offsets = demo.working_copy()
    report = demo.validate(work, offsets)
    work.dispose()
    assert report.ok, "\n".join(str(o) for o in report.failed)
    kinds = {o.expectation for o in report.outcomes}
    assert kinds >= {
        "row_count_unchanged",
        "values_match_transformer_shape",
        "unique_values",
        "static_rows_identical",
        "static_rows_within_limit",
        "foreign_key_without_orphans",
        "sequence_above_production",
        "kept_text_without_pii",
        "value_differs_from_production",
        "value_not_found_in_production",
        "value_within_promised_window",
        "kept_text_without_production_identifiers",
    }
    places = {(o.expectation, o.place) for o in report.outcomes}
    assert ("values_match_transformer_shape", "public.learners.email") in places
    assert ("unique_values", "public.learners.ssn") in places
    assert ("value_within_promised_window", "public.learners.date_of_birth") in places
    assert ("kept_text_without_pii", "public.degrees.institution") in places
    record = report.as_dict()
    assert record["ok"] and len(record["expectations"]) == len(report.outcomes)


def test_offsets_given_as_numbers_are_checked_against_production_sequences(demo):
    """Offsets without the rebase record's high water: production's sequence state is the floor."""
    work, offsets = demo.working_copy()
    plain = {name: facts["offset"] for name, facts in offsets.items()}
    report = demo.validate(work, plain)
    execute(work, "ALTER SEQUENCE public.learners_id_seq RESTART WITH 201")
    broken = demo.validate(work, plain)
    work.dispose()
    assert report.ok
    assert failed(broken) == {("sequence_above_production", "public.learners_id_seq", None)}


def test_a_rule_that_keeps_an_email_column_is_caught(demo):
    rules = RULES.read_text().replace(
        "      email: {class: email}\n      name: {class: name}",
        '      email: {transformer: keep, reason: "broken on purpose"}\n      name: {class: name}',
    )
    assert rules != RULES.read_text()
    work, offsets = demo.working_copy(rules)
    report = demo.validate(work, offsets)
    work.dispose()
    # validated against the intended rules: the column holds production's addresses, not the fake ones
    assert ("values_match_transformer_shape", "public.instructors", "email") in failed(report)
    assert ("value_differs_from_production", "public.instructors", "email") in failed(report)
    message = failure_message(report)
    assert "public.instructors.email" in message
    assert_no_values(message, demo)


def test_an_upper_cased_regex_shape_breaks_in_gx_regex_built_in_or_deids_scan(demo):
    """A shape that is a regex and nothing more: GX's ExpectColumnValuesToMatchRegex checks it on a plain
    text column of a table without static test rows (instructors.website, fake.url), case for case, its
    result counting and never listing; deid's own scan does where static test rows are left out
    (learners) or the column is of a domain (email_address). Both catch an upper-cased value."""
    work, offsets = demo.working_copy()
    for table, column, kept in (
        ("instructors", "website", "true"),
        ("learners", "email", "is_test_account IS NOT TRUE"),
    ):
        execute(
            work,
            f"UPDATE {table} SET {column} = upper({column}) WHERE id = (SELECT min(id) FROM {table} "
            f"WHERE {kept} AND {column} IS NOT NULL)",
        )
    report = demo.validate(work, offsets)
    work.dispose()
    assert failed(report) == {
        ("values_match_transformer_shape", "public.instructors", "website"),
        ("values_match_transformer_shape", "public.learners", "email"),
    }
    assert all(o.unexpected == 1 for o in report.failed)
    regex = {
        (r["expectation_config"]["kwargs"]["column"], r["success"], r["result"].get("unexpected_count"))
        for suite in report.gx_results for r in suite["results"]
        if r["expectation_config"]["type"] == "expect_column_values_to_match_regex"
    }  # fmt: skip
    assert ("website", False, 1) in regex and not {c for c, *_ in regex} & {"email"}
    kept = [r for suite in report.gx_results for r in suite["results"]
            if r["expectation_config"]["type"] == "expect_column_values_to_match_regex"]  # fmt: skip
    assert all("partial_unexpected_list" not in r["result"] for r in kept)
    assert_no_values(json.dumps(kept, default=str), demo)  # the custom queries name dictionary words


def test_a_kept_email_column_fails_the_pii_scan(demo):
    """Validated against the broken rules themselves: the kept column is scanned, and holds emails."""
    rules = RULES.read_text().replace(
        "      email: {class: email}\n      name: {class: name}",
        '      email: {transformer: keep, reason: "broken on purpose"}\n      name: {class: name}',
    )
    work, offsets = demo.working_copy(rules)
    broken_plan = plan_for(rules, demo.schema)
    report = validate_with_expectations(demo.prod, work, broken_plan, demo.schema, offsets)
    work.dispose()
    assert ("kept_text_without_pii", "public.instructors", "email") in failed(report)
    message = failure_message(report)
    assert "kept_text_without_pii public.instructors.email" in message and "email: 50 rows" in message
    assert_no_values(message, demo)


def test_a_transformer_that_returns_its_input_is_caught(demo):
    """ssn left as it was: the shape still fits (###-##-####), only the comparison with production sees it."""
    rules = RULES.read_text().replace(
        "      ssn: {class: ssn}", '      ssn: {transformer: keep, reason: "broken on purpose"}'
    )
    work, offsets = demo.working_copy(rules)
    report = demo.validate(work, offsets)
    work.dispose()
    assert failed(report) == {
        ("value_differs_from_production", "public.learners", "ssn"),
        ("value_not_found_in_production", "public.learners", "ssn"),
    }
    same = next(o for o in report.failed if o.expectation == "value_differs_from_production")
    assert same.unexpected == same.checked > 100  # every sampled SSN equals production's
    message = failure_message(report)
    assert f"value_differs_from_production public.learners.ssn: {same.unexpected} unexpected" in message
    assert_no_values(message, demo)


def test_a_lost_row_is_caught(demo):
    work, offsets = demo.working_copy()
    execute(work, "DELETE FROM audit_events WHERE ctid = (SELECT min(ctid) FROM audit_events)")
    report = demo.validate(work, offsets)
    work.dispose()
    assert failed(report) == {("row_count_unchanged", "public.audit_events", None)}
    assert "row_count_unchanged public.audit_events: 1 unexpected" in failure_message(report)


def test_an_orphaned_foreign_key_is_caught(demo):
    work, offsets = demo.working_copy()
    execute(work, "UPDATE enrollments SET course_id = 999999 WHERE id = (SELECT min(id) FROM enrollments)")
    report = demo.validate(work, offsets)
    work.dispose()
    assert failed(report) == {("foreign_key_without_orphans", "public.enrollments", None)}
    message = failure_message(report)
    assert "foreign_key_without_orphans public.enrollments: 1 unexpected" in message
    assert "(course_id) -> public.courses" in message


def test_a_sequence_not_rebased_is_caught(demo):
    work, offsets = demo.working_copy()
    execute(work, "ALTER SEQUENCE public.learners_id_seq RESTART WITH 201")
    report = demo.validate(work, offsets)
    work.dispose()
    assert failed(report) == {("sequence_above_production", "public.learners_id_seq", None)}
    assert "sequence_above_production public.learners_id_seq: 1 unexpected" in failure_message(report)


def test_a_real_ssn_in_kept_free_text_is_caught(demo):
    with demo.prod.connect() as c:
        ssn = c.execute(
            sa.text("SELECT ssn FROM learners WHERE NOT is_test_account ORDER BY id LIMIT 1")
        ).scalar()
    work, offsets = demo.working_copy()
    execute(
        work,
        "UPDATE degrees SET institution = institution || ' (alumni id ' || :ssn || ')' "
        "WHERE id = (SELECT min(id) FROM degrees)",
        ssn=ssn,
    )
    report = demo.validate(work, offsets)
    work.dispose()
    assert failed(report) == {("kept_text_without_pii", "public.degrees", "institution")}
    message = failure_message(report)
    assert (
        "kept_text_without_pii public.degrees.institution: 1 unexpected" in message
        and "ssn: 1 rows" in message
    )
    assert_no_values(message, demo, ssn)


def test_a_production_name_in_kept_free_text_is_caught(demo):
    """No PII pattern matches a name: only the comparison with production's identifiers finds it."""
    with demo.prod.connect() as c:
        first, last = c.execute(
            sa.text(
                "SELECT first_name, last_name FROM learners WHERE NOT is_test_account ORDER BY id LIMIT 1"
            )
        ).one()
    work, offsets = demo.working_copy()
    execute(
        work,
        "UPDATE courses SET title = title || ', taught with ' || :name "
        "WHERE id = (SELECT min(id) FROM courses)",
        name=f"{first} {last}",
    )
    report = demo.validate(work, offsets)
    work.dispose()
    assert failed(report) == {("kept_text_without_production_identifiers", "public.courses", "title")}
    message = failure_message(report)
    assert "public.courses.title: 1 unexpected" in message
    assert_no_values(message, demo, f"{first} {last}")
