"""One scenario suite for every engine: each scenario runs on every configured server (the PostgreSQL ones,
and MySQL/MariaDB when DEID_TEST_MYSQL_URL is set; CI sets both), and is chosen by what the engine can do
(Backend.capabilities), never by its name. Tables are made with SQLAlchemy Core, so one definition serves
every engine; what the scenario checks goes through deid's engine-neutral entry points (the steps, the run
lock, the rules), which reach the engine only through its backend.
"""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from deid.backends import SequenceKind, backend_for
from deid.errors import RuleProblems
from deid.lock import Busy, run_lock
from deid.migrations import sqlfiles
from deid.plan import build_plan
from deid.rules.load import load_rules
from deid.schema import Schema
from deid.steps.rebase import rebase_database
from deid.steps.scrub import scrub_database
from deid.vector.apply import streamed_columns, transform
from deid.vector.prf import Key

SALT = "scenario-salt"
DAY = dt.date(2026, 11, 28)


@pytest.fixture
def database(any_server):
    """A fresh database on the server, its engine, and its SQLAlchemy engine (dropped afterwards)."""
    name = any_server.create_database("deid_scn")
    engine = sa.create_engine(any_server.url(name), poolclass=sa.pool.NullPool)
    try:
        yield name, engine
    finally:
        engine.dispose()
        any_server.drop_database(name)


def capabilities(server):
    return backend_for(server.engine).capabilities


def introspect(server, name: str, engine: sa.Engine) -> Schema:
    with engine.connect() as c:
        return backend_for(server.engine).introspect(c, name)


def people(engine: sa.Engine, rows: int = 40) -> None:
    """A table of people with a generated id, an email, a static-test flag."""
    metadata = sa.MetaData()
    table = sa.Table(
        "people",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(80), nullable=False, unique=True),
        sa.Column("is_test", sa.Boolean, nullable=False),
    )
    metadata.create_all(engine)
    with engine.begin() as c:
        c.execute(
            table.insert(),
            [{"email": f"person{i}@corp.example", "is_test": i % 10 == 0} for i in range(1, rows + 1)],
        )


def rules_file(tmp_path: Path, database: str, columns: str, extra: str = "") -> Path:
    path = tmp_path / f"{database}.yaml"
    path.write_text(
        f"version: 1\ndatabase: {database}\ntables:\n  public.people:\n{extra}    columns: {columns}\n"
    )
    return path


def test_an_unclassified_column_fails_the_plan_naming_it(any_server, database, tmp_path):
    name, engine = database
    people(engine)
    rules = load_rules(rules_file(tmp_path, name, "{id: keep, is_test: keep}"))
    with pytest.raises(RuleProblems, match=r"public\.people\.email"):
        build_plan(rules, introspect(any_server, name, engine))


def test_the_scrub_gives_every_engine_the_vector_forms_values_and_keeps_static_rows(
    any_server, database, tmp_path
):
    name, engine = database
    people(engine)
    columns = "{id: keep, is_test: keep, email: {transformer: hash, params: {format: email}}}"
    rules = load_rules(rules_file(tmp_path, name, columns, "    keep_rows_where: is_test = true\n"))
    schema = introspect(any_server, name, engine)
    plan = build_plan(rules, schema)
    with engine.connect() as c:
        before = dict(c.execute(sa.text("SELECT id, email FROM people")).all())
    scrub_database(engine, plan, SALT)
    with engine.connect() as c:
        after = dict(c.execute(sa.text("SELECT id, email FROM people")).all())
    static = {i for i in before if i % 10 == 0}
    assert {i: after[i] for i in static} == {i: before[i] for i in static}
    # the others: exactly what the engine-neutral vector form gives for the same salt, whatever the engine
    moved = sorted(set(before) - static)
    table_plan = plan.table("public.people")
    (column,) = streamed_columns(schema.table("public.people"), table_plan.actions)
    batch = pa.RecordBatch.from_pydict({"email": [before[i] for i in moved]})
    (expected,) = transform(batch, [column], Key.for_salt(SALT))
    assert [after[i] for i in moved] == expected.to_pylist()
    assert all(after[i] != before[i] for i in moved)


def test_rebase_moves_generated_ids_above_production_the_same_way_for_a_date(any_server, tmp_path):
    if capabilities(any_server).sequence_kind is SequenceKind.NONE:
        pytest.skip("the engine hands out no ids")
    outcomes = []
    for day in (DAY, DAY, DAY + dt.timedelta(days=1)):
        name = any_server.create_database("deid_scn")
        engine = sa.create_engine(any_server.url(name), poolclass=sa.pool.NullPool)
        try:
            people(engine)
            schema = introspect(any_server, name, engine)
            with engine.begin() as c:
                facts = rebase_database(c, schema, day)
            with engine.begin() as c:
                c.execute(sa.text("INSERT INTO people (email, is_test) VALUES ('new@corp.example', false)"))
                new_id = c.execute(sa.text("SELECT max(id) FROM people")).scalar_one()
            (fact,) = facts.values()
            assert fact["high_water"] == 40 and new_id == fact["next_value"] > 40 + 1000
            outcomes.append(fact["offset"])
        finally:
            engine.dispose()
            any_server.drop_database(name)
    assert outcomes[0] == outcomes[1] != outcomes[2]  # reproducible for a date, different the next day


def test_migrations_apply_once_in_order(any_server, database, tmp_path):
    name, engine = database
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "V1__tags.sql").write_text("CREATE TABLE tags (id integer PRIMARY KEY, label varchar(40));\n")
    (folder / "V2__seed.sql").write_text(
        "INSERT INTO tags VALUES (1, 'first');\nINSERT INTO tags VALUES (2, 'b');\n"
    )
    url = any_server.url(name)
    assert sqlfiles.apply(url, folder) == ["V1__tags.sql", "V2__seed.sql"]
    assert sqlfiles.apply(url, folder) == []
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM tags")).scalar_one() == 2


def test_the_run_lock_admits_one_run_or_many_shared_holders(any_server):
    staging = f"scenario_{dt.datetime.now():%H%M%S%f}"
    url = any_server.admin_url
    with run_lock(url, staging):
        with (
            pytest.raises(Busy, match=f"another deid run for {staging} is in progress"),
            run_lock(url, staging),
        ):
            pass
        with run_lock(url, staging + "_other"):
            pass  # other staging names are independent
    shared = (run_lock(url, staging, shared=True), run_lock(url, staging, shared=True))
    with shared[0], shared[1], pytest.raises(Busy), run_lock(url, staging):
        pass


def test_a_nightly_run_publishes_and_a_rollback_restores_on_every_engine(any_server, tmp_path):
    """The whole job through the CLI, as a user runs it: two dates published, then rolled back; the staging
    copy holds scrubbed values and its static rows intact; a run killed with SIGKILL leaves the published
    copy whole and the next run publishes; production is never written."""
    from tests.refresh import Refresh

    refresh = Refresh(any_server, tmp_path)
    refresh.production = any_server.create_database("deid_prod")
    production = sa.create_engine(any_server.url(refresh.production), poolclass=sa.pool.NullPool)
    staging = None
    try:
        people(production)
        columns = "{id: keep, is_test: keep, email: {transformer: hash, params: {format: email}}}"
        refresh.write_rules(
            f"  public.people:\n    keep_rows_where: is_test = true\n    columns: {columns}\n"
        )
        (tmp_path / "deid.yaml").write_text(
            f"databases:\n  shop:\n    engine: {any_server.engine}\n    production: prod\n"
            f"    staging_server: stg\n    staging_name: {refresh.staging}\n    salt_secret: salt\n"
            f"    retention: 2\n    rules: {tmp_path / 'rules' / 'shop.yaml'}\n"
        )
        for day in ("2026-11-01", "2026-11-02"):
            done = refresh.run(day)
            assert done.code == 0, done.err
        staging = sa.create_engine(any_server.url(refresh.staging), poolclass=sa.pool.NullPool)
        with production.connect() as c:
            before = dict(c.execute(sa.text("SELECT id, email FROM people")).all())
        with staging.connect() as c:
            after = dict(c.execute(sa.text("SELECT id, email FROM people")).all())
        assert after.keys() == before.keys()
        assert all((after[i] == before[i]) == (i % 10 == 0) for i in before)  # static rows only kept
        with staging.begin() as c:  # staging's own inserts get ids far above production's
            c.execute(sa.text("INSERT INTO people (email, is_test) VALUES ('qa@corp.example', true)"))
            assert c.execute(sa.text("SELECT max(id) FROM people")).scalar_one() > 1000
        staging.dispose()  # (reopened below: a pooled session would hold the copy through the swaps)
        rolled = refresh.cli("rollback", "shop")
        assert rolled.code == 0 and "is now the copy of 2026-11-01" in rolled.out, rolled.err
        status = refresh.cli("status", "shop")
        assert status.code == 0
        assert "date 2026-11-01" in status.out.splitlines()[0] and "date 2026-11-02" in status.out
        # kill -9 mid-run: the published copy stays whole (the old one, or the new one if publish had
        # committed), and the next run of that date cleans up and publishes
        child = refresh.start("run", "shop", "--date", "2026-11-03")
        for line in child.stdout:
            if "scrub: started" in line:
                break
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
        with staging.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM people")).scalar_one() in (40, 41)
        staging.dispose()
        again = refresh.run("2026-11-03")
        assert again.code == 0, again.err
        assert "date 2026-11-03" in refresh.cli("status", "shop").out.splitlines()[0]
        with production.connect() as c:  # production never written
            assert dict(c.execute(sa.text("SELECT id, email FROM people")).all()) == before
    finally:
        production.dispose()
        if staging is not None:
            staging.dispose()
        for name in [refresh.production, refresh.staging, *refresh_copies(any_server, refresh.staging)]:
            any_server.drop_database(name)


def refresh_copies(server, staging: str) -> list[str]:
    """Every copy deid made for `staging` on the server (kept and working ones)."""
    from deid.steps.copies import admin, copies_on

    with admin(server.admin_url) as c:
        return [x.name for x in copies_on(c, staging) if x.name != staging]
