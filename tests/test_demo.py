"""The README's demo command, as a fresh machine runs it: an embedded PostgreSQL 18, the seeded database,
the DAG under `airflow dags test`, a published, recorded, de-identified copy, and deid.env left for the CLI.
(tests/test_quickstart.py runs the README's lines after it on a fresh clone.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from deid.backends.postgresql.demo import embedded
from deid.demo.local_airflow import DEMO_SALT
from deid.records.store import read_records
from tests.conftest import ROOT


@pytest.mark.slow
def test_the_demo_publishes_a_scrubbed_copy_and_says_where_its_report_is(tmp_path):
    # under .cache: the server's own user must reach it; a folder of its own: another run of this test in the
    # checkout (a second session) must not remove it under this one
    data = ROOT / ".cache" / f"test-demo-pg18-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DEID_CONN_", "DEID_SECRET_"))},
        "DEID_DEMO_AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "DEID_RECORDS_DIR": str(tmp_path / "records"),
        # the CLI's settings where the test can read them, not over a developer's deid.env in the checkout
        "DEID_ENV_FILE": str(tmp_path / "deid.env"),
    }
    command = [
        sys.executable,
        "-m",
        "deid.demo",
        "--data",
        str(data),
        "--learners",
        "300",
        "--date",
        "2026-11-28",
    ]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        (record,) = read_records(tmp_path / "records", "learners")
        assert (record["outcome"], record["via"], record["published"]) == (
            "published",
            "airflow",
            "learners_staging",
        )
        assert f"report (open it in a browser): {record['files']['report']}" in result.stdout
        passed = len(record["checks"]) + len(record["expectations"]["expectations"])  # one count of both
        assert f"validation: {passed} of {passed} checks passed" in result.stdout
        assert "$ deid history learners" in result.stdout and "published learners_staging" in result.stdout

        # what the CLI needs is left in deid.env, the owner's only; the salt is never printed
        settings = tmp_path / "deid.env"
        assert settings.stat().st_mode & 0o777 == 0o600 and DEMO_SALT in settings.read_text()
        assert DEMO_SALT not in result.stdout + result.stderr
        said = f"  .venv/bin/deid status learners     # plan, history, run, rollback too: {settings} holds"
        assert said in result.stdout
        status = subprocess.run(
            [sys.executable, "-m", "deid.cli", "status", "learners"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("published  learners_staging ") and "date 2026-11-28" in status.stdout

        server = embedded.start(data)  # the demo leaves it running: this finds it
        engine = sa.create_engine(server.url("learners_staging"))
        with engine.connect() as c:
            staged = c.execute(
                sa.text("SELECT count(*) FROM learners WHERE email LIKE '%@example.%'")
            ).scalar()
            total = c.execute(sa.text("SELECT count(*) FROM learners")).scalar()
        engine.dispose()
        assert total == 300 and staged > 0  # scrubbed emails at a reserved domain
    finally:
        if (data / "postmaster.pid").exists():
            embedded.start(data).stop()
        shutil.rmtree(data, ignore_errors=True)
