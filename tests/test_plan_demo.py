"""`deid plan` on the seeded demo database: every column shown, and the SQL it prints runs as printed."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid.backends import backend_for
from deid.backends.postgresql.forms import support
from deid.backends.postgresql.forms.dictionaries import load_dictionaries
from deid.cli import main
from deid.demo.seed import seed
from deid.rules.load import load_rules
from deid.steps.migrate import awaiting_migrations

ROOT = Path(__file__).resolve().parent.parent
SALT = "test-salt-not-secret"


@pytest.fixture
def demo(pg_url, monkeypatch):
    seed(pg_url, learners=300)
    monkeypatch.setenv("DEID_CONN_LEARNERS_PROD", pg_url)
    monkeypatch.setenv("DEID_CONFIG", str(ROOT / "deid.yaml"))
    engine = sa.create_engine(pg_url)
    with engine.connect() as c:
        schema = backend_for("postgresql").introspect(c, "learners")
    yield pg_url, engine, schema
    engine.dispose()


def test_plan_shows_every_column_of_every_table(demo, capsys):
    _, _, schema = demo
    assert main(["plan", "learners"]) == 0
    out = capsys.readouterr().out
    for table in schema.rule_tables:
        assert f"\n{table.qualified}: " in out
        section = out.split(f"\n{table.qualified}: ", 1)[1].split("\n\n", 1)[0]
        for column in table.columns:
            assert f"\n  {column.name} " in section, f"{table.qualified}.{column.name} missing from the plan"
    assert "public.courses: not touched (all kept)" in out
    assert "public.learners: rewritten once" in out
    # learners' profile is json, which has a vector form too: no column is left to the SQL forms
    assert "computed by the SQL forms" not in out
    assert "streamed through the vector forms if" in out.split("public.learners:")[1].splitlines()[1]
    assert "streamed through the vector forms if" in out.split("public.payments:")[1].splitlines()[1]
    assert 'WHERE ("is_test_account") IS NOT TRUE' in out
    assert SALT not in out


def test_plan_sql_runs_and_changes_only_what_the_rules_say(demo):
    url, engine, schema = demo
    rules, _ = awaiting_migrations(load_rules(ROOT / "rules" / "learners.yaml"), schema, has_migrations=True)
    plan = planning.build_plan(rules, schema)
    with engine.connect() as c:
        before = dict(c.execute(sa.text("SELECT id, email FROM learners")).all())
        qa_before = c.execute(sa.text("SELECT * FROM learners WHERE is_test_account ORDER BY id")).all()
        courses_before = c.execute(sa.text("SELECT * FROM courses ORDER BY id")).all()
    with engine.begin() as c:
        for statement in support.support_sql():
            c.exec_driver_sql(statement)
        load_dictionaries(c, plan.dictionaries)
        support.apply_key(c, SALT)
        for statement in (*plan.preamble, *plan.statements):
            c.exec_driver_sql(statement)
    with engine.connect() as c:
        after = dict(c.execute(sa.text("SELECT id, email FROM learners WHERE NOT is_test_account")).all())
        qa_after = c.execute(sa.text("SELECT * FROM learners WHERE is_test_account ORDER BY id")).all()
        courses_after = c.execute(sa.text("SELECT * FROM courses ORDER BY id")).all()
        assert all(after[i] != before[i] for i in after), "every non-test email changed"
        assert qa_after == qa_before, "static test accounts kept intact, updated_at included (no trigger)"
        assert courses_after == courses_before
        assert c.execute(sa.text("SELECT count(*) FROM refunds WHERE reason IS NOT NULL")).scalar() == 0
        pans = (
            c.execute(sa.text("SELECT card_pan FROM payments WHERE learner_id > 5 AND card_pan IS NOT NULL"))
            .scalars()
            .all()
        )
        assert pans and all(p[:-4].strip("*") == "" for p in pans)
