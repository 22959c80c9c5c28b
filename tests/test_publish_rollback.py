"""Publish, rollback and status on real PostgreSQL (every configured server).

Each working copy gets a one-row table `build` naming the build, so the data itself shows which copy is
published and which are kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from deid.config import DatabaseConfig
from deid.errors import TerminalError
from deid.steps import publish as publishing
from deid.steps.context import RunContext, kept_name, work_name
from deid.steps.copies import admin, copies_on, drop_database, update_metadata
from deid.steps.migrate import migrate
from deid.steps.publish import publish, rollback, status
from deid.steps.rebase import rebase
from deid.steps.scrub import scrub
from deid.steps.snapshot import snapshot
from deid.steps.validate import validate
from tests import runctx

D1, D2, D3, D4 = (dt.date(2026, 11, day) for day in (25, 26, 27, 28))


@dataclass(frozen=True)
class WithRoles(DatabaseConfig):
    """The optional config field publish reads with getattr, until the lead adds it to DatabaseConfig."""

    staging_roles: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def production(postgres, tmp_path_factory):
    """A tiny production database and its rule file: the swap is about databases, not their size."""
    name = postgres.create_database("deid_prod")
    engine = sa.create_engine(postgres.url(name), poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE build (id serial PRIMARY KEY, label text)")
    engine.dispose()
    rules = tmp_path_factory.mktemp("rules") / "learners.yaml"
    rules.write_text("database: learners\ntables:\n  public.build:\n    columns: {id: keep, label: keep}\n")
    yield name, rules
    postgres.drop_database(name)


def make_ctx(postgres, production, staging, day, retention=3, database_class=DatabaseConfig, **extra):
    production, rules = production
    return runctx.make_ctx(
        postgres,
        production,
        staging,
        day,
        database_class,
        retention=retention,
        rules=str(rules),
        migrations=None,
        **extra,
    )


def build(postgres, production, staging, day, label=None, **kwargs) -> RunContext:
    """A working copy of `day` that every step before publish has finished on, then labelled (a row in
    `build`, written after validation, which checks rows but not their values against the schema)."""
    ctx = make_ctx(postgres, production, staging, day, **kwargs)
    for step in (snapshot, scrub, rebase, migrate, validate):
        step(ctx)
    engine = sa.create_engine(ctx.work_url, poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO build (label) VALUES (:n)"), {"n": label or str(day)})
    engine.dispose()
    return ctx


def release(postgres, production, staging, day, label=None, **kwargs) -> RunContext:
    ctx = build(postgres, production, staging, day, label, **kwargs)
    publish(ctx)
    return ctx


def label_of(postgres, database: str) -> str:
    engine = sa.create_engine(postgres.url(database), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            return c.exec_driver_sql("SELECT label FROM build").scalar_one()
    finally:
        engine.dispose()


def names(postgres, staging: str) -> dict[str, list[str]]:
    with admin(postgres.admin_url) as c:
        copies = copies_on(c, staging)
    return {role: [x.name for x in copies if x.role == role] for role in ("published", "kept", "work")}


def connect_grantees(postgres, database: str) -> set[int]:
    """Role oids with CONNECT on `database` (0 is PUBLIC)."""
    with admin(postgres.admin_url) as c:
        return set(
            c.execute(
                sa.text(
                    "SELECT a.grantee FROM pg_database d, aclexplode(d.datacl) a "
                    "WHERE d.datname = :d AND a.privilege_type = 'CONNECT'"
                ),
                {"d": database},
            ).scalars()
        )


def test_first_publish_has_nothing_to_keep(postgres, production, staging):
    ctx = build(postgres, production, staging, D1)
    offset = ctx.record["offsets"]["public.build_id_seq"]["offset"]
    publish(ctx)
    assert label_of(postgres, staging) == str(D1)
    assert names(postgres, staging) == {"published": [staging], "kept": [], "work": []}
    assert 0 in connect_grantees(postgres, staging)  # PUBLIC may connect now
    assert ctx.record["published"] == staging and ctx.record["kept"] == []
    info = status(postgres.admin_url, staging)
    metadata = info["published"]["metadata"]
    assert metadata["state"] == "published" and metadata["logical_date"] == "2026-11-25"
    assert metadata["rules_digest"] == hashlib.sha256(production[1].read_bytes()).hexdigest()
    assert metadata["offsets"] == {"public.build_id_seq": offset} and offset > 0
    assert dt.datetime.fromisoformat(metadata["published_at"]).tzinfo is not None
    # the copy carries its state into staging: every step's stamp, none of the run-time notes
    assert [s["step"] for s in metadata["ledger"]] == ["snapshot", "scrub", "rebase", "migrate", "validate"]
    assert not {"snapshot_schema", "holder", "reopen", "poisoned"} & set(metadata)


def test_second_date_keeps_the_first(postgres, production, staging):
    release(postgres, production, staging, D1)
    ctx = release(postgres, production, staging, D2)
    assert label_of(postgres, staging) == str(D2)
    assert label_of(postgres, kept_name(staging, D1)) == str(D1)
    assert ctx.record["kept"] == [kept_name(staging, D1)]
    kept = status(postgres.admin_url, staging)["kept"]
    assert [(k["logical_date"], k["metadata"]["state"]) for k in kept] == [("2026-11-25", "kept")]


def test_rerun_of_the_same_date_keeps_only_the_newer_previous_build(postgres, production, staging):
    release(postgres, production, staging, D1, "first")
    release(postgres, production, staging, D1, "second")
    assert label_of(postgres, staging) == "second"
    assert label_of(postgres, kept_name(staging, D1)) == "first"
    ctx = release(postgres, production, staging, D1, "third")
    assert label_of(postgres, staging) == "third"
    assert label_of(postgres, kept_name(staging, D1)) == "second"
    # the first build is gone, its name kept by the second: replaced, not both kept and dropped
    assert ctx.record["kept"] == ctx.record["replaced"] == [kept_name(staging, D1)]
    assert "dropped" not in ctx.record


def test_retention_drops_the_oldest_kept_copies(postgres, production, staging):
    for day in (D1, D2, D3):
        release(postgres, production, staging, day, retention=2)
    ctx = release(postgres, production, staging, D4, retention=2)
    assert names(postgres, staging)["kept"] == [kept_name(staging, D3), kept_name(staging, D2)]
    assert ctx.record["dropped"] == [kept_name(staging, D1)]


def test_publish_ends_sessions_on_the_old_staging_copy(postgres, production, staging):
    release(postgres, production, staging, D1)
    user = sa.create_engine(postgres.url(staging), poolclass=sa.pool.NullPool)
    try:
        with user.connect() as c:
            c.exec_driver_sql("SELECT label FROM build").scalar_one()
            release(postgres, production, staging, D2)
            with pytest.raises(sa.exc.OperationalError):
                c.exec_driver_sql("SELECT 1")
        with user.connect() as c:  # a reconnect lands on the new copy
            assert c.exec_driver_sql("SELECT label FROM build").scalar_one() == str(D2)
    finally:
        user.dispose()


@pytest.mark.parametrize("where", ["before the transaction", "between the two renames"])
def test_a_failure_before_commit_leaves_the_published_copy_untouched(
    postgres, production, staging, monkeypatch, where
):
    release(postgres, production, staging, D1)
    ctx = build(postgres, production, staging, D2)
    if where == "before the transaction":

        def fail(c, database):
            raise RuntimeError("injected")

        monkeypatch.setattr(publishing, "terminate_sessions", fail)
    else:
        from deid.backends.postgresql import copies as pg_copies

        real_rename = pg_copies.rename

        def fail(c, renames):
            assert len(renames) == 2  # the published copy out, the new one in
            real_rename(c, renames[:1])
            raise RuntimeError("injected")

        monkeypatch.setattr(pg_copies, "rename", fail)
    with pytest.raises(RuntimeError, match="injected"):
        publish(ctx)
    assert label_of(postgres, staging) == str(D1)  # connectable, and the same data
    assert names(postgres, staging) == {"published": [staging], "kept": [], "work": [ctx.work_name]}
    with admin(postgres.admin_url) as c:
        copies = {x.name: x for x in copies_on(c, staging)}
    assert copies[staging].allow_connections and copies[ctx.work_name].allow_connections
    assert copies[staging].metadata["state"] == "published"
    monkeypatch.undo()
    publish(ctx)  # and the run can simply be retried
    assert label_of(postgres, staging) == str(D2)


def test_publish_grants_connect_to_the_configured_roles_only(postgres, production, staging):
    role = f"deid_reader_{uuid.uuid4().hex[:8]}"
    with admin(postgres.admin_url) as c:
        c.exec_driver_sql(f'CREATE ROLE "{role}"')
    try:
        ctx = release(postgres, production, staging, D1, database_class=WithRoles, staging_roles=(role,))
        with admin(postgres.admin_url) as c:
            oid = c.execute(sa.text("SELECT oid FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
        grantees = connect_grantees(postgres, staging)
        assert oid in grantees and 0 not in grantees
        assert ctx.record["published"] == staging
    finally:
        with admin(postgres.admin_url) as c:
            drop_database(c, staging)
            c.exec_driver_sql(f'DROP ROLE "{role}"')


def test_publish_without_a_working_copy_fails_clearly(postgres, production, staging):
    ctx = make_ctx(postgres, production, staging, D1)
    with pytest.raises(TerminalError, match=f"no working copy {work_name(staging, D1)} for publish"):
        publish(ctx)


def test_rollback_swaps_the_newest_kept_copy_back_and_forth(postgres, production, staging):
    release(postgres, production, staging, D1)
    release(postgres, production, staging, D2)
    assert rollback(postgres.admin_url, staging) == D1
    assert label_of(postgres, staging) == str(D1)
    assert label_of(postgres, kept_name(staging, D2)) == str(D2)
    assert names(postgres, staging)["kept"] == [kept_name(staging, D2)]
    assert status(postgres.admin_url, staging)["published"]["metadata"]["logical_date"] == "2026-11-25"
    assert rollback(postgres.admin_url, staging) == D2
    assert label_of(postgres, staging) == str(D2)


def test_rollback_to_a_date(postgres, production, staging):
    for day in (D1, D2, D3):
        release(postgres, production, staging, day)
    assert rollback(postgres.admin_url, staging, to=D1) == D1
    assert label_of(postgres, staging) == str(D1)
    assert names(postgres, staging)["kept"] == [kept_name(staging, D3), kept_name(staging, D2)]


def test_rollback_to_the_previous_build_of_the_same_date(postgres, production, staging):
    release(postgres, production, staging, D1, "first")
    release(postgres, production, staging, D1, "second")
    assert rollback(postgres.admin_url, staging) == D1
    assert label_of(postgres, staging) == "first"
    assert label_of(postgres, kept_name(staging, D1)) == "second"


def test_rollback_to_a_missing_date_lists_the_kept_ones(postgres, production, staging):
    with pytest.raises(TerminalError, match="has no kept copy to roll back to"):
        rollback(postgres.admin_url, staging)
    for day in (D1, D2, D3):
        release(postgres, production, staging, day)
    with pytest.raises(
        TerminalError, match="has no kept copy of 2026-11-28; kept copies: 2026-11-26, 2026-11-25"
    ):
        rollback(postgres.admin_url, staging, to=D4)
    assert label_of(postgres, staging) == str(D3)


def test_status_lists_published_kept_and_leftover_working_copies(postgres, production, staging):
    release(postgres, production, staging, D1)
    release(postgres, production, staging, D2)
    leftover = build(postgres, production, staging, D3)
    update_metadata(postgres.admin_url, leftover.work_name, offsets={"public.build_id_seq": 42})
    info = status(postgres.admin_url, staging)
    assert info["staging_name"] == staging
    assert info["published"]["name"] == staging
    assert info["published"]["logical_date"] == "2026-11-26"
    assert [k["name"] for k in info["kept"]] == [kept_name(staging, D1)]
    assert [(w["name"], w["metadata"]["state"]) for w in info["work"]] == [(leftover.work_name, "work")]
    assert info["work"][0]["metadata"]["offsets"] == {"public.build_id_seq": 42}
    publish(leftover)  # facts stored on the working copy by earlier steps reach the published metadata
    assert status(postgres.admin_url, staging)["published"]["metadata"]["offsets"] == {
        "public.build_id_seq": 42
    }


def test_metadata_refuses_anything_but_deid_facts(postgres, production, staging):
    ctx = make_ctx(postgres, production, staging, D1)
    snapshot(ctx)
    with pytest.raises(TerminalError, match="invalid email") as raised:
        update_metadata(postgres.admin_url, ctx.work_name, email="jane@example.com")
    assert "jane" not in str(raised.value)
    with pytest.raises(TerminalError, match=r"invalid offsets\.x"):
        update_metadata(postgres.admin_url, ctx.work_name, offsets={"x": "jane@example.com"})
