"""The demo database on MariaDB (DEID_TEST_MYSQL_URL; CI's is MariaDB 10.11): deid/backends/mysql/demo's
schema loads, the same seed gives the same rows as on PostgreSQL, rules/learners_mysql.yaml classifies every
column of the introspected schema and the scrub's plan builds from it, the trigger and the id counters behave
as on PostgreSQL, and `python -m deid.demo --server ...` seeds it and runs the nightly job on it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
import yaml

from deid.backends import backend_for
from deid.demo import seed as demo
from deid.demo.local_airflow import DEMO_SALT
from deid.plan import build_plan
from deid.records.store import read_records
from deid.rules import coverage
from deid.rules.load import load_rules
from deid.schema import Kind
from tests.conftest import ROOT
from tests.mysql_server import MysqlServer, mysql_server  # noqa: F401

LEARNERS = 200
RULES = ROOT / "rules" / "learners_mysql.yaml"


@pytest.fixture(scope="module")
def seeded(mysql_server: MysqlServer):  # noqa: F811
    """One seeded MariaDB database for the module; tests that write roll back."""
    name = mysql_server.create_database("deid_demo")
    url = mysql_server.url(name)
    counts = demo.seed(url, learners=LEARNERS)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield engine, counts
    engine.dispose()
    mysql_server.drop_database(name)


def _introspect(engine: sa.Engine, backend: str = "mysql"):
    with engine.connect() as c:
        return backend_for(backend).introspect(c, "learners")


def _short(key: str) -> str:
    return key.rpartition(".")[2]


def test_the_same_seed_gives_the_same_tables_columns_and_rows_as_on_postgresql(seeded, postgres):
    engine, counts = seeded
    name = postgres.create_database("deid_demo")
    try:
        pg_counts = demo.seed(postgres.url(name), learners=LEARNERS)
        pg_engine = sa.create_engine(postgres.url(name), poolclass=sa.pool.NullPool)
        pg_schema = _introspect(pg_engine, "postgresql")
        with pg_engine.connect() as c:
            pg_learners = c.exec_driver_sql(
                "SELECT id, email, date_of_birth, phone, zip, ssn, host(last_login_ip), signup_at, "
                "is_test_account, profile, tags, updated_at FROM learners ORDER BY id"
            ).all()
        pg_engine.dispose()
    finally:
        postgres.drop_database(name)
    assert {_short(t): n for t, n in counts.items()} == {_short(t): n for t, n in pg_counts.items()}
    assert all(t.startswith("public.") for t in counts), "introspection's one namespace"
    assert counts["public.learners"] == LEARNERS and sum(counts.values()) > 10 * LEARNERS

    # The same table and column names wherever MariaDB can hold them (partitions are PostgreSQL's own).
    schema = _introspect(engine)
    columns = {t.name: [c.name for c in t.columns] for t in schema.tables}
    pg_columns = {t.name: [c.name for c in t.columns] for t in pg_schema.tables if not t.partition_of}
    assert columns == pg_columns

    with engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT id, email, date_of_birth, phone, zip, ssn, last_login_ip, signup_at, is_test_account, "
            "profile, tags, updated_at FROM learners ORDER BY id"
        ).all()
    assert len(rows) == len(pg_learners) == LEARNERS
    utc = dt.UTC
    for mine, theirs in zip(rows, pg_learners, strict=True):
        assert mine[:7] == theirs[:7]
        assert mine.signup_at.replace(tzinfo=utc) == theirs.signup_at  # DATETIME(6) holds UTC
        assert mine.updated_at.replace(tzinfo=utc) == theirs.updated_at
        assert bool(mine.is_test_account) is theirs.is_test_account
        assert json.loads(mine.profile) == theirs.profile and json.loads(mine.tags) == theirs.tags


def test_every_column_is_classified_by_the_mysql_rule_file_and_the_plan_builds(seeded):
    engine, counts = seeded
    schema = _introspect(engine)
    rules = load_rules(RULES)
    assert coverage.check(rules, schema) == []
    coverage.check_or_raise(rules, schema)
    plan = build_plan(rules, schema)
    assert {t.table for t in plan.tables} == set(counts)
    kept = {t.table for t in plan.tables if all(a.transformer == "keep" for a in t.actions)}
    assert kept == {"public.categories", "public.courses", "public.enrollments"}
    staff = {a.column: a.transformer for a in plan.table("public.partner_staff").actions}
    assert (staff["work_email"], staff["badge_photo"]) == ("fake.email", "null")  # the key that differs

    # rules/learners.yaml cannot serve: its partners.partner_staff is public.partner_staff here
    problems = "\n".join(str(p) for p in coverage.check(load_rules(ROOT / "rules" / "learners.yaml"), schema))
    assert "partners.partner_staff" in problems and "public.partner_staff" in problems


def test_the_mysql_rule_file_is_learners_yaml_but_for_what_mariadb_makes_differ():
    """learners_mysql.yaml cannot include learners.yaml (rule files have no includes), so this keeps them in
    step: any other difference fails here, naming the table."""
    theirs = yaml.safe_load((ROOT / "rules" / "learners.yaml").read_text())
    mine = yaml.safe_load(RULES.read_text())
    tables = dict(theirs["tables"])
    tables["public.partner_staff"] = tables.pop("partners.partner_staff")  # no schema inside a database
    del tables["public.feature_flags"]  # added by migrations/learners (PostgreSQL's SQL)
    del tables["public.courses"]["columns"]["tagline"]
    assert {k: v for k, v in mine.items() if k != "tables"} == {
        k: v for k, v in theirs.items() if k != "tables"
    }
    assert sorted(mine["tables"]) == sorted(tables)
    for table, rule in tables.items():
        assert mine["tables"][table] == rule, table


def test_the_schema_carries_the_postgresql_demos_features_over(seeded):
    engine, _ = seeded
    schema = _introspect(engine)
    tables = {t.qualified: t for t in schema.tables}
    learners = tables["public.learners"]
    columns = {c.name: c for c in learners.columns}
    (trigger,) = learners.triggers
    assert (trigger.timing, trigger.events) == ("before", ("update",))
    assert trigger.derives is not None and "updated_at" in {d.column for d in trigger.derives}
    assert columns["full_name"].generated and columns["id"].identity
    assert {columns[c].kind for c in ("profile", "tags")} == {Kind.JSON}
    level = {c.name: c for c in tables["public.courses"].columns}["level"]
    assert level.kind is Kind.ENUM and level.enum_labels == ("beginner", "intermediate", "advanced")
    assert {c.name: c for c in tables["public.partner_staff"].columns}["badge_photo"].kind is Kind.BYTEA
    keys = tables["public.accommodations"].foreign_keys
    assert [k.ref_table for k in keys if k.columns == ("approved_by_staff_id",)] == ["public.partner_staff"]
    assert {v.qualified for v in schema.views} >= {"public.active_learners", "public.course_revenue"}
    with engine.connect() as c:
        revenue = c.exec_driver_sql("SELECT SUM(gross_revenue) FROM course_revenue").scalar()
        paid = c.exec_driver_sql("SELECT SUM(amount) FROM payments").scalar()
    assert revenue == paid > Decimal(0)  # the view that stands in for the materialized one adds up


def test_the_trigger_stamps_updated_at_and_new_rows_get_ids_above_the_seeded_ones(seeded):
    engine, _ = seeded
    with engine.connect() as c, c.begin() as transaction:
        before = c.exec_driver_sql("SELECT updated_at FROM learners WHERE id = 10").scalar()
        c.exec_driver_sql("UPDATE learners SET city = 'Elsewhere' WHERE id = 10")
        after = c.exec_driver_sql("SELECT updated_at FROM learners WHERE id = 10").scalar()
        now = c.exec_driver_sql("SELECT UTC_TIMESTAMP(6)").scalar()
        assert before < after and abs(now - after) < dt.timedelta(minutes=1)  # stamped in UTC

        c.exec_driver_sql("INSERT INTO categories (name) VALUES ('Astronomy')")
        assert c.exec_driver_sql("SELECT LAST_INSERT_ID()").scalar() > 12
        top = c.exec_driver_sql("SELECT MAX(id), MAX(invoice_number) FROM payments").one()
        c.exec_driver_sql(
            "INSERT INTO payments (enrollment_id, learner_id, amount, paid_at) "
            "SELECT id, learner_id, 1, UTC_TIMESTAMP() FROM enrollments ORDER BY id LIMIT 1"
        )
        new = c.exec_driver_sql("SELECT id, invoice_number FROM payments ORDER BY id DESC LIMIT 1").one()
        assert new.id > top[0]
        assert int(new.invoice_number.removeprefix("INV-")) > int(top[1].removeprefix("INV-"))
        transaction.rollback()


@pytest.mark.slow
def test_the_demo_command_runs_the_nightly_job_on_mariadb(mysql_server, tmp_path):  # noqa: F811
    """`python -m deid.demo --server ...`: seeded, linted, the DAG run under Airflow publishes a scrubbed
    copy beside production (staging name after the database's), its deid.yaml left for the CLI."""
    name = f"deid_test_demo_{uuid.uuid4().hex[:10]}"  # never `learners`: a developer's demo may be there
    server = sa.make_url(mysql_server.admin_url).set(database="").render_as_string(hide_password=False)
    command = [sys.executable, "-m", "deid.demo", "--server", server, "--database", name, "--learners", "60",
               "--date", "2026-11-28"]  # fmt: skip
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DEID_CONN_", "DEID_SECRET_"))},
        "DEID_DEMO_AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "DEID_RECORDS_DIR": str(tmp_path / "records"),
    }
    env.pop("DEID_ENV_FILE", None)  # deid.env beside this test's own deid.yaml: the demo writes it there
    staging = f"{name}_staging"
    try:
        first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert f"production database '{name}' seeded" in first.stdout
        assert "rules/learners_mysql.yaml: ok (13 tables" in first.stdout
        assert "cannot run" not in first.stdout
        (record,) = read_records(tmp_path / "records", "learners")
        assert (record["outcome"], record["via"], record["published"]) == ("published", "airflow", staging)
        assert "scrub public.audit_events: rebuilt" in first.stdout  # no key: rebuilt (json inside)
        config = f".cache/demo-mysql/{name}/deid.yaml"
        assert f"DEID_CONFIG={config} .venv/bin/deid status learners" in first.stdout
        assert "engine: mysql" in (ROOT / config).read_text()
        # its connections and salt beside it, for the CLI, with nothing exported; the salt never shown
        settings = ROOT / config.replace("deid.yaml", "deid.env")
        assert settings.stat().st_mode & 0o777 == 0o600
        assert f"DEID_SECRET_DEID_SALT={DEMO_SALT}\n" in settings.read_text()
        assert DEMO_SALT not in first.stdout + first.stderr
        status = subprocess.run(
            [sys.executable, "-m", "deid.cli", "status", "learners"],
            cwd=ROOT,
            env={**env, "DEID_CONFIG": config},
            capture_output=True,
            text=True,
        )
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith(f"published  {staging} ") and "date 2026-11-28" in status.stdout
        copy = sa.create_engine(mysql_server.url(staging), poolclass=sa.pool.NullPool)
        with copy.connect() as c:
            emails = c.exec_driver_sql("SELECT email, profile FROM learners").all()
            details = c.exec_driver_sql(
                "SELECT details FROM audit_events WHERE details LIKE '%%_email%%'"
            ).all()
        copy.dispose()
        scrubbed = [e for e, _ in emails if not e.startswith("qa+")]
        assert len(emails) == 60 and scrubbed and all("@example." in e for e in scrubbed)
        emails_in = [json.loads(d).get(k) for (d,) in details for k in ("old_email", "attempted_email")]
        assert details and all(e.endswith("@example.com") for e in emails_in if e)
    finally:
        admin = sa.create_engine(mysql_server.admin_url, poolclass=sa.pool.NullPool)
        with admin.connect() as c:
            found = c.exec_driver_sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA").scalars().all()
        admin.dispose()
        for database in (d for d in found if d == name or d.startswith(staging)):
            mysql_server.drop_database(database)
        shutil.rmtree(ROOT / ".cache" / "demo-mysql" / name, ignore_errors=True)
