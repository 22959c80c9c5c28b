"""The nightly job with `clone: reflink`: each night's copy is the stopped standby's data directory, reflinked
and run as a PostgreSQL 18 of its own, through the seam for copies that are servers (steps/servers.py).

On a loop-mounted XFS (reflink=1): the "standby" is an embedded PostgreSQL 18 data directory holding the
production rows, stopped cleanly; production itself (the primary the standby follows) is a database on the
configured test server with the same rows, which validation compares against. Each night is copied under
copies/<staging>__<date>, scrubbed, rebased, migrated and validated through its own socket, then published on
the staging port; the copy before is kept, running on its socket only; rollback gives the port back to it;
retention deletes the oldest kept copy. The standby is never started and its files keep their checksums.
Skips, saying why, only where loop mounts are impossible (as tests/test_cow_clone.py).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from deid.backends.postgresql.cloners import datadir_place, instance
from deid.backends.postgresql.demo import embedded
from deid.config import EnvSettings, load_config
from deid.run import run
from deid.steps.context import RunContext
from deid.steps.places import place_for
from deid.steps.servers import ServerPlace
from tests.test_cow_clone import loop_mounted, why_no_loop_mounts
from tests.test_reflink_datadir import checksums

pytestmark = pytest.mark.one_server

D1, D2, D3 = dt.date(2026, 12, 1), dt.date(2026, 12, 2), dt.date(2026, 12, 3)
PRODUCTION = """
CREATE TABLE people (id serial PRIMARY KEY, email text NOT NULL);
INSERT INTO people (email) SELECT 'person' || i || '@real-mail.example.org' FROM generate_series(1, 40) i;
"""
RULES = """version: 1
database: shop
tables:
  public.people:
    columns: {id: keep, email: {class: email}}
  public.staging_flags:
    columns: {id: keep, name: keep}
"""
MIGRATION = "CREATE TABLE staging_flags (id serial PRIMARY KEY, name text NOT NULL);\n"


class Job:
    def __init__(self, postgres, folder: Path, root: Path):
        self.postgres, self.root = postgres, root
        self.production = postgres.create_database("deid_prod")
        engine = sa.create_engine(postgres.url(self.production))
        with engine.begin() as c:
            c.exec_driver_sql(PRODUCTION)
        engine.dispose()
        # the standby: the same rows in a database named as production's, its server stopped cleanly
        self.standby = root / "standby"
        server = embedded.start(self.standby)
        with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.production}"')
        with psycopg.connect(
            host="127.0.0.1", port=server.port, user="postgres", dbname=self.production
        ) as c:
            c.execute(PRODUCTION)
        server.stop()
        self.standby_sums = checksums(self.standby)
        self.copies = root / "copies"
        self.copies.mkdir(mode=0o711)
        self.port = instance.free_port()
        self.staging = f"st_{uuid.uuid4().hex[:8]}"
        (folder / "rules.yaml").write_text(RULES)
        (folder / "migrations").mkdir()
        (folder / "migrations" / "V1__flags.sql").write_text(MIGRATION)
        (folder / "deid.yaml").write_text(
            f"records: {{dir: {folder / 'records'}}}\n"
            "databases:\n"
            "  shop:\n"
            "    production: prod\n"
            "    staging_server: stg\n"
            f"    staging_name: {self.staging}\n"
            "    salt_secret: salt\n"
            "    retention: 1\n"
            f"    rules: {folder / 'rules.yaml'}\n"
            f"    migrations: {{sql: {folder / 'migrations'}}}\n"
            "    clone: reflink\n"
            "    reflink:\n"
            f"      data_directory: {self.standby}\n"
            f"      copies: {self.copies}\n"
            f"      port: {self.port}\n"
            "      listen_addresses: 127.0.0.1\n"
            "      start_timeout_seconds: 60\n"
        )
        self.settings = EnvSettings(
            {
                "DEID_CONN_PROD": postgres.url(self.production),
                # the server deid takes its run lock on, and whose user and options it dials at each copy
                # (through the copy's socket); staging users reach the published copy at `port`
                "DEID_CONN_STG": postgres.admin_url,
                "DEID_SECRET_SALT": "reflink-copies-salt",
            }
        )
        self.config = load_config(folder / "deid.yaml")

    def run(self, day: dt.date, only: str | None = None) -> dict:
        """One run (or one step) for `day`, in a context of its own, as a new process builds it."""
        ctx = RunContext.resolve(self.config, "shop", day, self.settings)
        return run(ctx, only=only, report=lambda line: None)

    def place(self) -> ServerPlace:
        place = place_for(self.config, "shop", self.settings)
        assert isinstance(place, ServerPlace)
        return place

    def staging_emails(self) -> list[str]:
        """What a staging user reads: TCP on the staging port."""
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=self.production) as c:
            return [r[0] for r in c.execute("SELECT email FROM people ORDER BY id")]

    def stop_all(self) -> None:
        for folder in self.copies.iterdir():
            if (folder / "postmaster.pid").exists():
                subprocess.run(
                    [str(embedded._bin("pg_ctl")), "-D", str(folder), "-m", "immediate", "-w", "stop"],
                    capture_output=True,
                    **embedded._run_as(),
                )


@pytest.fixture
def job(postgres, tmp_path) -> Iterator[Job]:
    reason = why_no_loop_mounts()
    if reason:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="deid-reflink-job-"))
    try:
        with loop_mounted("xfs", folder, 1 << 30) as root:
            root.chmod(0o711)
            made = Job(postgres, tmp_path, root)
            try:
                yield made
            finally:
                made.stop_all()
                postgres.drop_database(made.production)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_whole_job_publishes_on_the_staging_port_keeps_the_previous_rolls_back_and_retains(job: Job):
    first = job.run(D1)
    assert first["outcome"] == "published", first.get("error")
    copy1 = f"{job.staging}__20261201"
    assert first["clone_method"] == "reflink" and first["clone_id"] == copy1
    assert first["clone_method_detail"] == "reflink" and first["clone_shared"] is True
    assert first["clone_extra_bytes"] < 1 << 20 and first["clone_source_state"] == "shut down"
    assert first["published"] == f"port {job.port} (127.0.0.1)" and first["published_clone"] == copy1
    scrubbed = job.staging_emails()
    assert len(scrubbed) == 40 and "real-mail.example.org" not in " ".join(scrubbed)
    assert (job.copies / f"{job.staging}.published").read_text().strip() == copy1

    second = job.run(D2)
    assert second["outcome"] == "published", second.get("error")
    copy2 = second["clone_id"]
    assert copy2 == f"{job.staging}__20261202" and second["kept"] == [copy1]
    assert second["dns_change"]["previous"] == str(job.copies / copy1)
    assert "publish_warning" not in second  # the kept copy was reached on its socket and noted as kept
    status = job.place().status()
    assert status["published"]["name"] == copy2 and status["published"]["metadata"]["state"] == "published"
    assert [k["name"] for k in status["kept"]] == [copy1]
    assert status["kept"][0]["metadata"]["state"] == "kept"
    # the kept copy runs with no TCP: only the published one answers on the staging port
    with psycopg.connect(host=str(job.copies / copy1), port=job.port, user="postgres") as c:
        assert c.execute("SHOW listen_addresses").fetchone()[0] == ""

    assert job.place().rollback(None) == D1
    assert (job.copies / f"{job.staging}.published").read_text().strip() == copy1
    assert job.staging_emails() == scrubbed  # the first night's copy, as it was published

    third = job.run(D3)
    assert third["outcome"] == "published", third.get("error")
    # kept after D3: copy1 (left by the port now) and copy2; retention 1 keeps the newer date, copy2
    assert third["kept"] == [copy2] and third["dropped"] == [copy1]
    assert not (job.copies / copy1).exists()
    assert sorted(p.name for p in job.copies.iterdir() if p.is_dir()) == [copy2, third["clone_id"]]
    assert job.staging_emails() == scrubbed or len(job.staging_emails()) == 40

    # the standby was never started and no file of it changed; production is unchanged
    assert checksums(job.standby) == job.standby_sums
    assert not (job.standby / "postmaster.pid").exists()
    engine = sa.create_engine(job.postgres.url(job.production), poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        emails = [r[0] for r in c.exec_driver_sql("SELECT email FROM people ORDER BY id")]
    engine.dispose()
    assert emails[0] == "person1@real-mail.example.org" and len(emails) == 40


def test_a_stopped_copy_is_started_again_in_its_role_when_listed(job: Job):
    """After a reboot nothing runs: listing the copies starts the published one on the staging port and a
    kept one on its socket, so staging is served again and notes can be read."""
    assert job.run(D1)["outcome"] == "published"
    assert job.run(D2)["outcome"] == "published"
    job.stop_all()
    with pytest.raises(psycopg.OperationalError):
        job.staging_emails()
    status = job.place().status()
    assert status["published"]["name"] == f"{job.staging}__20261202"
    assert [k["name"] for k in status["kept"]] == [f"{job.staging}__20261201"]
    assert len(job.staging_emails()) == 40


def test_reflink_settings_are_checked_with_file_line_and_fix(tmp_path):
    (tmp_path / "deid.yaml").write_text(
        "databases:\n"
        "  shop:\n"
        "    production: prod\n"
        "    staging_server: stg\n"
        "    staging_name: shop_staging\n"
        "    salt_secret: salt\n"
        "    clone: reflink\n"
        "    reflink:\n"
        "      data_directory: relative/standby\n"
        "      copies: /srv/copies\n"
        "      port: 99999\n"
        "      fullcopy: true\n"
    )
    with pytest.raises(Exception) as refused:
        load_config(tmp_path / "deid.yaml")
    text = str(refused.value)
    assert "deid.yaml:9" in text and "data_directory must be an absolute path" in text
    assert "deid.yaml:11" in text and "port must be a port number" in text
    assert "fullcopy" in text and "full_copy" in text  # did you mean
    (tmp_path / "deid.yaml").write_text(
        "databases:\n"
        "  shop:\n"
        "    production: prod\n"
        "    staging_server: stg\n"
        "    staging_name: shop_staging\n"
        "    salt_secret: salt\n"
        "    clone: template\n"
        "    reflink: {data_directory: /a, copies: /b, port: 5433}\n"
    )
    with pytest.raises(Exception, match=r"'reflink:' is read only with clone: reflink"):
        load_config(tmp_path / "deid.yaml")


def test_a_copy_folder_deid_did_not_make_is_never_deleted(job: Job):
    stranger = job.copies / f"{job.staging}__20260101"
    stranger.mkdir()
    source = datadir_place.DataDirSource(job.config.database("shop").server_copies)
    assert [c.id for c in source.listed("shop")] == []
    with pytest.raises(Exception, match="not a copy deid made"):
        source.delete(stranger.name)
    assert stranger.exists()


def test_a_copy_that_cannot_serve_the_port_leaves_staging_on_the_published_one(job: Job):
    """Publishing restarts the new copy on the staging port with the source's pg_hba.conf; when it cannot
    start there (here a pg_hba.conf line PostgreSQL refuses), the port goes back to the published copy, which
    staging users find as it was: never a half-published one."""
    assert job.run(D1)["outcome"] == "published"
    published = job.staging_emails()
    for step in ("snapshot", "scrub", "rebase", "migrate", "validate"):
        assert job.run(D2, only=step)["outcome"] == "step"
    copy2 = job.copies / f"{job.staging}__20261202"
    with open(copy2 / "pg_hba.conf", "a") as hba:
        hba.write("host all all nowhere-at-all not-a-method\n")
    with pytest.raises(Exception, match=r"did not start"):
        job.run(D2, only="publish")
    assert job.staging_emails() == published
    assert (job.copies / f"{job.staging}.published").read_text().strip() == f"{job.staging}__20261201"
    status = job.place().status()
    assert status["published"]["name"] == f"{job.staging}__20261201"
