"""deid.subset, on the demo schema (no rows needed): the named tables keep their rows, every other table is
emptied, the named tables must include what they reference, and the rules are still checked in full."""

from __future__ import annotations

from pathlib import Path

import pytest

from deid.backends import backend_for
from deid.demo.seed import schema_file
from deid.errors import RuleProblems, TerminalError
from deid.plan import build_plan
from deid.rules.load import load_rules
from deid.steps.migrate import awaiting_migrations
from deid.subset import only_tables

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo(pg_engine):
    """The demo schema's rules and live schema (rules waiting for migrations set aside, as preflight does)."""

    def introspect():
        with pg_engine.connect() as c:
            return backend_for("postgresql").introspect(c, "learners")

    with pg_engine.begin() as c:
        c.exec_driver_sql(schema_file("postgresql").read_text())
    rules, _ = awaiting_migrations(load_rules(ROOT / "rules" / "learners.yaml"), introspect(), True)
    return rules, introspect, pg_engine


def test_named_tables_keep_their_rows_and_the_others_are_emptied(demo):
    rules, introspect, _ = demo
    schema = introspect()
    plan = build_plan(only_tables(rules, schema, {"public.courses", "public.instructors"}), schema)
    copy = {t.table: t.copy for t in plan.tables}
    assert copy.pop("public.courses") == copy.pop("public.instructors") == "full"
    assert set(copy.values()) == {"schema_only"}
    emptied = next(t for t in plan.tables if t.table == "public.learners")
    assert emptied.statement == 'TRUNCATE TABLE "public"."learners" CASCADE'


def test_named_tables_must_include_the_tables_they_reference(demo):
    rules, introspect, _ = demo
    with pytest.raises(TerminalError) as raised:
        only_tables(rules, introspect(), {"public.enrollments", "public.learners"})
    assert "public.enrollments references public.courses" in str(raised.value)
    assert "public.learners" not in str(raised.value).split("references", 1)[1]  # it is named


def test_an_unknown_table_is_named_with_a_suggestion(demo):
    rules, introspect, _ = demo
    with pytest.raises(TerminalError, match=r"public\.lerners not in database learners.*'public\.learners'"):
        only_tables(rules, introspect(), {"public.lerners"})


def test_an_unclassified_column_outside_the_named_tables_still_fails(demo):
    rules, introspect, engine = demo
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE learners ADD COLUMN nickname text")
    with pytest.raises(RuleProblems, match="public.learners.nickname"):
        only_tables(rules, introspect(), {"public.instructors"})
