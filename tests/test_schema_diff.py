"""`deid diff`: schema changes since the committed snapshot, each with what it means for the rule file, and
the nightly run's failures pointing at it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.cli import main
from deid.demo.seed import seed
from deid.errors import RuleProblems
from deid.review.schema_diff import diff_schemas
from deid.schema import Kind, Schema
from deid.steps.preflight import production_plan
from tests.runctx import make_ctx

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "rules" / "learners.schema.json"


def _workspace(tmp_path: Path, with_snapshot: bool = True) -> Path:
    """A copy of the repository's deid.yaml, rules and migrations, so --write and edits stay in tmp_path."""
    shutil.copy(ROOT / "deid.yaml", tmp_path / "deid.yaml")
    (tmp_path / "rules").mkdir()
    shutil.copy(ROOT / "rules" / "learners.yaml", tmp_path / "rules" / "learners.yaml")
    if with_snapshot:
        shutil.copy(SNAPSHOT, tmp_path / "rules" / "learners.schema.json")
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    return tmp_path


def _edit_table(schema: Schema, qualified: str, **changes) -> Schema:
    tables = tuple(
        dataclasses.replace(t, **changes) if t.qualified == qualified else t for t in schema.tables
    )
    return dataclasses.replace(schema, tables=tables)


def _drifted() -> Schema:
    """The committed snapshot with one change of each kind: learners.phone renamed to mobile (same place and
    type), learners.tags dropped, learners.nickname added, learners.zip retyped to integer, learners.city
    made NOT NULL, and the degrees table dropped."""
    old = Schema.load(SNAPSHOT)
    learners = old.table("public.learners")
    columns = []
    for c in learners.columns:
        if c.name == "tags":
            continue
        if c.name == "phone":
            c = dataclasses.replace(c, name="mobile")
        elif c.name == "zip":
            c = dataclasses.replace(c, data_type="integer", kind=Kind.INTEGER, max_length=None)
        elif c.name == "city":
            c = dataclasses.replace(c, nullable=False)
        columns.append(c)
    columns.append(dataclasses.replace(columns[-1], name="nickname", data_type="text", kind=Kind.TEXT))
    new = _edit_table(old, "public.learners", columns=tuple(columns))
    return dataclasses.replace(new, tables=tuple(t for t in new.tables if t.qualified != "public.degrees"))


def test_changes_are_classified_with_renames_found():
    changes = diff_schemas(Schema.load(SNAPSHOT), _drifted())
    found = {(c.kind, c.subject) for c in changes}
    assert found == {
        ("dropped table", "public.degrees"),
        ("dropped column", "public.learners.tags"),
        ("renamed column", "public.learners.phone → mobile"),
        ("new column", "public.learners.nickname"),
        ("retyped column", "public.learners.zip"),
        ("nullability", "public.learners.city"),
    }


def test_a_table_with_the_same_columns_under_a_new_name_is_a_rename():
    old = Schema.load(SNAPSHOT)
    new = _edit_table(old, "public.refunds", name="refunds_v2")
    assert [(c.kind, c.subject) for c in diff_schemas(old, new)] == [
        ("renamed table", "public.refunds → public.refunds_v2")
    ]


def test_diff_of_two_snapshots_says_what_to_change_in_the_rule_file(tmp_path, monkeypatch, capsys):
    work = _workspace(tmp_path)
    (work / "new.json").write_text(_drifted().to_json())
    monkeypatch.chdir(work)
    monkeypatch.setenv("DEID_CONFIG", str(work / "deid.yaml"))
    code = main(["diff", "--from", "rules/learners.schema.json", "--to", "new.json"])
    out = capsys.readouterr().out
    lines = (work / "rules" / "learners.yaml").read_text().splitlines()
    tags = next(i for i, text in enumerate(lines, 1) if text.strip().startswith("tags:"))
    phone = next(i for i, text in enumerate(lines, 1) if text.strip().startswith("phone:"))
    degrees = next(i for i, text in enumerate(lines, 1) if text.strip() == "public.degrees:")
    assert code == 1
    assert f"delete line {tags} of rules/learners.yaml (`tags: ...`)" in out
    assert f"move the rule: rename `phone` to `mobile` at line {phone} of rules/learners.yaml" in out
    assert "new column public.learners.nickname (text)" in out
    assert "needs a rule (lint fails closed on unclassified columns)" in out
    # the suggestion comes from the classifier lint's paste blocks use: a nickname is a person's name
    learners = next(i for i, text in enumerate(lines, 1) if text.strip() == "public.learners:")
    where = f"add under public.learners (line {learners}) of rules/learners.yaml"
    assert f"{where}: nickname: {{class: name}}" in out
    assert "(generalize_zip) no longer applies" in out
    assert "generalize_zip applies to text columns, not integer" in out
    assert "nullability public.learners.city: nullable → NOT NULL" in out
    assert "(keep) still applies" in out
    assert f"delete the entry public.degrees at line {degrees}" in out
    # rules waiting for the configured migrations are not mistaken for drift
    assert "2 rule(s) wait for migrations: public.courses.tagline, public.feature_flags" in out
    assert "needs changes" in out


def test_no_drift_exits_0(tmp_path, monkeypatch, capsys):
    work = _workspace(tmp_path)
    monkeypatch.chdir(work)
    monkeypatch.setenv("DEID_CONFIG", str(work / "deid.yaml"))
    assert main(["diff", "--from", "rules/learners.schema.json", "--to", "rules/learners.schema.json"]) == 0
    out = capsys.readouterr().out
    assert "  none" in out and "needs no change" in out


def test_a_retype_the_rule_survives_needs_no_change(tmp_path, monkeypatch, capsys):
    work = _workspace(tmp_path)
    old = Schema.load(SNAPSHOT)
    learners = old.table("public.learners")
    columns = tuple(
        dataclasses.replace(c, data_type="character varying(300)", max_length=300) if c.name == "city" else c
        for c in learners.columns
    )
    (work / "new.json").write_text(_edit_table(old, "public.learners", columns=columns).to_json())
    monkeypatch.chdir(work)
    monkeypatch.setenv("DEID_CONFIG", str(work / "deid.yaml"))
    assert main(["diff", "--from", "rules/learners.schema.json", "--to", "new.json"]) == 0
    out = capsys.readouterr().out
    assert "resized column public.learners.city" in out and "still applies" in out


def test_missing_snapshot_names_the_command_that_writes_it(tmp_path, monkeypatch, capsys):
    work = _workspace(tmp_path, with_snapshot=False)
    monkeypatch.setenv("DEID_CONFIG", str(work / "deid.yaml"))
    assert main(["diff", "learners"]) == 2
    err = capsys.readouterr().err
    assert "deid schema learners --out" in err and "learners.schema.json" in err


def test_usage_without_database_or_snapshots_exits_2(capsys):
    assert main(["diff"]) == 2
    assert "deid diff --from OLD.json --to NEW.json" in capsys.readouterr().err


@pytest.fixture
def live(pg_url, tmp_path, monkeypatch):
    """The seeded demo database as production of a workspace whose snapshot is the repository's."""
    seed(pg_url, learners=50)
    work = _workspace(tmp_path)
    monkeypatch.setenv("DEID_CONN_LEARNERS_PROD", pg_url)
    monkeypatch.setenv("DEID_CONFIG", str(work / "deid.yaml"))
    monkeypatch.chdir(work)
    return pg_url, work


def _alter(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql(sql)
    engine.dispose()


def test_live_drift_then_write_refreshes_the_snapshot(live, capsys):
    url, work = live
    assert main(["diff", "learners"]) == 0, capsys.readouterr()
    assert "needs no change" in capsys.readouterr().out
    _alter(url, "ALTER TABLE learners ADD COLUMN mobile_phone text")
    assert main(["diff", "learners", "--write"]) == 1
    out = capsys.readouterr().out
    assert "new column public.learners.mobile_phone (text)" in out
    assert "mobile_phone: {class: phone}" in out
    assert "wrote rules/learners.schema.json" in out
    snapshot = Schema.load(work / "rules" / "learners.schema.json")
    assert snapshot.table("public.learners").column("mobile_phone") is not None
    # the snapshot now matches production: the same drift is not reported twice, but lint still fails
    assert main(["diff", "learners"]) == 1
    out = capsys.readouterr().out
    assert "  none" in out and "already before these changes: public.learners.mobile_phone" in out


def test_preflight_failure_points_at_deid_diff(live, postgres, staging):
    url, work = live
    _alter(url, "ALTER TABLE learners ADD COLUMN nickname text")
    production = sa.make_url(url).database
    ctx = make_ctx(postgres, production, staging, dt.date(2026, 12, 1))
    with pytest.raises(RuleProblems) as raised:
        production_plan(ctx)
    text = str(raised.value)
    assert "public.learners.nickname" in text
    assert text.rstrip().endswith(
        "Run `deid diff learners` to see what changed in the schema since rules/learners.schema.json."
    )
    # without a committed snapshot, the hint says how to write one first
    (work / "rules" / "learners.schema.json").unlink()
    ctx.config = dataclasses.replace(ctx.config, root=work)
    with pytest.raises(RuleProblems) as raised:
        production_plan(ctx)
    assert "write one with `deid schema learners --out rules/learners.schema.json`" in str(raised.value)


def test_a_rule_problem_that_is_no_schema_change_names_no_diff(tmp_path):
    """A keep without a reason is the rule file's own problem: pointing at `deid diff` would mislead."""
    from deid.errors import Problem
    from deid.review.hints import with_drift_hint

    own = RuleProblems([Problem("rules/shop.yaml", 9, "public.people.email looks like an identifier")])
    assert with_drift_hint(own, "shop", tmp_path / "shop.yaml", None) is own
    drift = RuleProblems([Problem("rules/shop.yaml", 0, "1 column(s) have no rule", drift=True)])
    assert "deid schema shop --out" in str(with_drift_hint(drift, "shop", tmp_path / "shop.yaml", None))
