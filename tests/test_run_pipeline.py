"""`deid run` end to end on real PostgreSQL: production untouched, reruns identical, kills harmless."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.demo.seed import seed

# a killed run leaves the published copy intact whatever PostgreSQL's version (the steps' own
# behaviour is tested on every server elsewhere): the first server only, as these runs are among the slowest
pytestmark = pytest.mark.one_server

ROOT = Path(__file__).resolve().parent.parent
SALT = "pipeline-test-salt"
CHECKSUMS = """
    SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
"""


@pytest.fixture
def pipeline(postgres, tmp_path):
    """A seeded production database, a config naming a fresh staging name, and a way to run the CLI."""
    prod = postgres.create_database("deid_prod")
    seed(postgres.url(prod), learners=1500)
    staging = f"st_{uuid.uuid4().hex[:8]}"
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "V1__flags.sql").write_text(
        (ROOT / "migrations/learners/V1__add_staging_feature_flags.sql").read_text()
    )
    config = tmp_path / "deid.yaml"
    config.write_text(
        "databases:\n  learners:\n    production: prod\n    staging_server: stg\n"
        f"    staging_name: {staging}\n    salt_secret: salt\n    retention: 2\n"
        f"    rules: {ROOT / 'rules' / 'learners.yaml'}\n    migrations: {{sql: {migrations}}}\n"
    )
    env = {
        **os.environ,
        "DEID_CONFIG": str(config),
        "DEID_CONN_PROD": postgres.url(prod),
        "DEID_CONN_STG": postgres.admin_url,
        "DEID_SECRET_SALT": SALT,
    }

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "deid.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = start(*args)
        out, err = proc.communicate(timeout=300)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    yield {
        "prod": prod,
        "staging": staging,
        "run": run,
        "start": start,
        "migrations": migrations,
        "config": config,
    }
    admin = sa.create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for (name,) in c.execute(
            sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"{staging}%"}
        ):
            c.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()
    postgres.drop_database(prod)


def table_digests(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        tables = c.execute(sa.text(CHECKSUMS)).scalars().all()
        out = {
            t: c.execute(
                sa.text(f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x")
            ).scalar()
            for t in tables
        }
    engine.dispose()
    return out


def databases(postgres, prefix: str) -> list[str]:
    engine = sa.create_engine(postgres.admin_url)
    with engine.connect() as c:
        names = (
            c.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p ORDER BY 1"),
                {"p": f"{prefix}%"},
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return names


def test_run_publishes_and_leaves_production_byte_for_byte_unchanged(pipeline, postgres):
    before = table_digests(postgres.url(pipeline["prod"]))
    result = pipeline["run"]("run", "learners", "--date", "2026-11-27")
    assert result.returncode == 0, result.stderr
    assert "validation: " in result.stdout and "checks passed" in result.stdout
    assert table_digests(postgres.url(pipeline["prod"])) == before
    staging = table_digests(postgres.url(pipeline["staging"]))
    assert staging["learners"] != before["learners"] and staging["enrollments"] == before["enrollments"]
    assert "feature_flags" in staging  # the migration staging needs
    assert SALT not in result.stdout + result.stderr


def test_same_logical_date_gives_identical_staging_data(pipeline, postgres):
    assert pipeline["run"]("run", "learners", "--date", "2026-11-27").returncode == 0
    first = table_digests(postgres.url(pipeline["staging"]))
    assert pipeline["run"]("run", "learners", "--date", "2026-11-27").returncode == 0
    second = table_digests(postgres.url(pipeline["staging"]))
    first.pop("_deid_migrations.applied"), second.pop("_deid_migrations.applied")  # applied_at is the clock
    assert first == second
    assert pipeline["run"]("run", "learners", "--date", "2026-11-28").returncode == 0
    status = pipeline["run"]("status", "learners").stdout
    assert "date 2026-11-28" in status and status.count("\nkept") == 1  # one kept copy per date


def test_production_connection_refuses_writes(pipeline, postgres):
    from deid.db import connect_readonly

    engine = connect_readonly(postgres.url(pipeline["prod"]))
    with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"), engine.begin() as c:
        c.exec_driver_sql("UPDATE learners SET email = email")
    engine.dispose()


def _kill_when(proc: subprocess.Popen, postgres, work_prefix: str, query_prefix: str) -> None:
    """SIGKILL the run while its working copy executes a statement starting with `query_prefix`."""
    engine = sa.create_engine(postgres.admin_url)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as c:
                busy = c.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE :d "
                        "AND state = 'active' AND query LIKE :q"
                    ),
                    {"d": f"{work_prefix}%", "q": f"{query_prefix}%"},
                ).scalar()
            if busy:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return
            time.sleep(0.005)
    finally:
        engine.dispose()
    pytest.fail(f"the run never executed {query_prefix!r} (exit {proc.poll()})")


def _hold_a_sequence(postgres, database: str) -> sa.Connection:
    """Once `database` exists, lock one of its sequences (until the returned connection rolls back), so the
    rebase, which reads every sequence, waits there: the moment to kill it."""
    engine = sa.create_engine(postgres.url(database), poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            c = engine.connect()
            break
        except sa.exc.OperationalError:  # not created yet
            time.sleep(0.005)
    else:
        pytest.fail(f"{database} never appeared")
    # ACCESS EXCLUSIVE, rolled back; the identity sequence of courses, which the scrub leaves alone (a
    # sequence that a rebuilt table's default reads, such as invoice_seq, would stop the scrub itself)
    c.exec_driver_sql("ALTER SEQUENCE courses_id_seq RENAME TO courses_id_seq_held")
    return c


# what the run is doing when it is killed: the query it is executing in the working copy
KILL_MOMENTS = {
    "scrub": "UPDATE",
    "rebase": "%last_value, is_called FROM",
    "migrate": "SELECT pg_sleep",
}


@pytest.mark.parametrize("moment", list(KILL_MOMENTS))
def test_kill_9_leaves_the_published_copy_and_the_next_run_cleans_up(pipeline, postgres, moment):
    assert pipeline["run"]("run", "learners", "--date", "2026-11-27").returncode == 0
    published = table_digests(postgres.url(pipeline["staging"]))
    if moment == "migrate":
        (pipeline["migrations"] / "V2__slow.sql").write_text("SELECT pg_sleep(60);\n")
    proc = pipeline["start"]("run", "learners", "--date", "2026-11-28")
    work = f"{pipeline['staging']}__work_"
    holder = _hold_a_sequence(postgres, f"{work}20261128") if moment == "rebase" else None
    try:
        _kill_when(proc, postgres, work, KILL_MOMENTS[moment])
    finally:
        if holder is not None:
            holder.rollback()
            holder.close()
    assert proc.returncode == -signal.SIGKILL
    assert table_digests(postgres.url(pipeline["staging"])) == published
    assert databases(postgres, work) == [f"{work}20261128"]  # the leftover, until the next run
    if moment == "migrate":
        (pipeline["migrations"] / "V2__slow.sql").unlink()
    result = pipeline["run"]("run", "learners", "--date", "2026-11-28")
    assert result.returncode == 0, result.stderr
    assert databases(postgres, work) == []
