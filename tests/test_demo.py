"""The README's demo command, as a fresh machine runs it: an embedded PostgreSQL 18, the seeded database,
the DAG under `airflow dags test`, and a published, recorded, de-identified copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa

from deid.backends.postgresql.demo import embedded
from deid.records.store import read_records
from tests.conftest import ROOT


@pytest.mark.slow
def test_the_demo_publishes_a_scrubbed_copy_and_says_where_its_report_is(tmp_path):
    data = ROOT / ".cache" / "test-demo-pg18"  # under .cache: the server's own user must reach it
    shutil.rmtree(data, ignore_errors=True)
    env = {
        **os.environ,
        "DEID_DEMO_AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "DEID_RECORDS_DIR": str(tmp_path / "records"),
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
