"""A whole PostgreSQL 18 data directory copied by reflinks (deid/backends/postgresql/cloners/datadir.py).

On a loop-mounted XFS made with reflink=1: a primary holding a database of about 200 MB, a real standby of
it (pg_basebackup -R, started, caught up, stopped cleanly) and a base backup of it (pg_basebackup with its
WAL and manifest, never started). The standby's copy takes well under a second and almost no space, starts
as a primary of its own on a free port reachable only through its own socket, and holds the same rows; the
standby is never started and its files keep their checksums. Refused: a running server, one stopped by a
crash, a tablespace outside the data directory, and ext4 (no reflinks) unless a full copy is asked for.
Like tests/test_cow_clone.py it makes its own filesystems (root, a loop device, mkfs.xfs: CI has them) and
skips, saying why, only where loop mounts are impossible. Servers run with fsync on, as production does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from deid.backends.postgresql import cow
from deid.backends.postgresql.cloners import cluster, datadir, instance, reflink
from deid.backends.postgresql.demo import embedded
from deid.errors import ConfigError
from tests.test_cow_clone import loop_mounted, why_no_loop_mounts

ROWS = 200_000  # of about 1 kB each: a 200 MB database
DATABASE = "reflink_prod"
DIGEST = "SELECT count(*), md5(string_agg(md5(w::text), '' ORDER BY id)) FROM wide w"


@dataclass
class Server:
    datadir: Path
    port: int

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database)

    def stop(self) -> None:
        """Stop cleanly; nothing to do when it is not running."""
        subprocess.run(
            [str(embedded._bin("pg_ctl")), "-D", str(self.datadir), "-m", "fast", "-w", "stop"],
            capture_output=True,
            **embedded._run_as(),
        )


def pg_ctl(datadir: Path, *args: str) -> None:
    done = subprocess.run(
        [str(embedded._bin("pg_ctl")), "-D", str(datadir), *args],
        capture_output=True,
        text=True,
        **embedded._run_as(),
    )
    assert done.returncode == 0, done.stderr


def as_server_user(program: str, *args: str) -> None:
    done = subprocess.run(
        [str(embedded._bin(program)), *args], capture_output=True, text=True, **embedded._run_as()
    )
    assert done.returncode == 0, done.stderr


def start(datadir: Path, port: int | None = None) -> Server:
    """A server on `datadir` with PostgreSQL's defaults (fsync on, wal_level replica), on 127.0.0.1."""
    port = port or instance.free_port()
    options = f"-p {port} -h 127.0.0.1 -k {datadir}"
    pg_ctl(datadir, "-l", str(datadir / "server.log"), "-o", options, "-w", "-t", "60", "start")
    return Server(datadir, port)


def server_dir(path: Path) -> Path:
    """An empty folder the server's user owns, for pg_basebackup or initdb."""
    path.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(path, embedded.SERVER_USER, embedded.SERVER_USER)
    return path


def checksums(root: Path) -> dict[str, str]:
    found = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def digest(connect) -> tuple:
    with connect(DATABASE) as c:
        return tuple(c.execute(DIGEST).fetchone())


@dataclass
class Site:
    root: Path  # the XFS mount
    primary: Server  # running, holding DATABASE
    standby: Path  # stopped cleanly ("shut down in recovery")
    backup: Path  # a base backup, never started
    expected: tuple  # DIGEST on the primary
    database_bytes: int
    standby_sums: dict[str, str]  # before anything copied it


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    reason = why_no_loop_mounts()
    if reason:
        pytest.skip(reason)
    # Not under pytest's basetemp: another pytest session prunes old basetemps (see test_cow_clone.py)
    folder = Path(tempfile.mkdtemp(prefix="deid-reflink-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)
        root = stack.enter_context(loop_mounted("xfs", folder, 3 << 30))
        root.chmod(0o711)
        embedded.start(root / "primary").stop()  # initdb; restarted below with fsync on
        primary = start(root / "primary")
        stack.callback(primary.stop)
        with primary.connect() as c:
            c.autocommit = True
            c.execute(f"CREATE DATABASE {DATABASE}")
        with primary.connect(DATABASE) as c:
            c.execute(
                "CREATE TABLE wide AS SELECT g AS id, repeat(md5(g::text), 28) AS pad "
                f"FROM generate_series(1, {ROWS}) g"
            )
            c.execute("ALTER TABLE wide ADD PRIMARY KEY (id)")
        with primary.connect() as c:
            c.execute("CHECKPOINT")
            size = c.execute(f"SELECT pg_database_size('{DATABASE}')").fetchone()[0]
        source = ["-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-X", "stream", "-c", "fast"]
        as_server_user("pg_basebackup", "-D", str(server_dir(root / "standby")), "-R", *source)
        as_server_user("pg_basebackup", "-D", str(server_dir(root / "backup")), *source)
        standby = start(root / "standby")
        stack.callback(standby.stop)
        with primary.connect() as c:
            target = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        with standby.connect() as c:
            deadline = time.monotonic() + 60
            while not c.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
                assert time.monotonic() < deadline, "the standby did not catch up in 60 s"
                time.sleep(0.1)
            assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        standby.stop()
        (root / "copies").mkdir(mode=0o711)
        yield Site(
            root=root,
            primary=primary,
            standby=standby.datadir,
            backup=root / "backup",
            expected=digest(primary.connect),
            database_bytes=size,
            standby_sums=checksums(standby.datadir),
        )


@pytest.fixture(scope="module")
def standby_copy(site) -> Iterator[tuple[datadir.DataDirCopy, float]]:
    started = time.monotonic()
    copy = datadir.copy_data_directory(site.standby, site.root / "copies" / "learners_staging__20261128")
    yield copy, time.monotonic() - started


def test_a_stopped_standby_is_what_deid_copies(site):
    checked = cluster.inspect(site.standby)
    assert checked.state == "shut down in recovery"
    assert checked.major == 18 and checked.binaries.version.startswith("18.")
    assert (site.standby / "standby.signal").exists()


def test_the_copy_takes_well_under_a_second_and_almost_no_space(site, standby_copy):
    copy, seconds = standby_copy
    record = copy.record()
    assert site.database_bytes > 180 << 20
    assert record["clone_method_detail"] == "reflink" and record["clone_shared"] is True
    assert record["clone_source_state"] == "shut down in recovery"
    assert copy.tree.bytes > site.database_bytes  # the whole cluster: the database, the others, the WAL
    assert record["clone_copy_seconds"] < 1.0, record
    assert seconds < 2.0, seconds  # and the checks around it: pg_controldata, the extents read afterwards
    # what the copy holds of its own: deid's two small configuration files (measured: 8 kB)
    assert record["clone_extra_bytes"] < 1 << 20, record
    # the filesystem agrees, file by file, that the database's blocks are the standby's
    with site.primary.connect() as c:
        oid = c.execute("SELECT oid FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()[0]
    assert cow.shared(copy.path / "base" / str(oid)) is True


def test_the_copy_leaves_out_what_it_must_not_inherit(standby_copy):
    copy, _ = standby_copy
    for name in ("standby.signal", "recovery.signal", "postmaster.pid", "postmaster.opts"):
        assert not (copy.path / name).exists(), name
    assert (copy.path / "pg_replslot").is_dir() and not list((copy.path / "pg_replslot").iterdir())
    assert (copy.path / instance.HBA).read_text().splitlines()[-1] == "local all all trust"


def test_the_copy_starts_as_a_primary_of_its_own_on_a_free_port_only_deid_reaches(site, standby_copy):
    copy, _ = standby_copy
    port = instance.free_port()
    started = time.monotonic()
    running = instance.start(copy.path, copy.binaries, instance.Serving(port))
    try:
        start_seconds = time.monotonic() - started
        with running.connect() as c:
            settings = dict(
                c.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('port', 'listen_addresses', "
                    "'archive_mode', 'primary_conninfo', 'synchronous_standby_names', 'data_directory', "
                    "'hba_file', 'unix_socket_permissions')"
                ).fetchall()
            )
            assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        assert settings == {
            "port": str(port),
            "listen_addresses": "",  # no TCP at all while it is built
            "unix_socket_permissions": "0700",
            "archive_mode": "off",
            "primary_conninfo": "",
            "synchronous_standby_names": "",
            "data_directory": str(copy.path),
            "hba_file": str(copy.path / instance.HBA),
        }
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=port, user="postgres", connect_timeout=2)
        assert digest(running.connect) == site.expected
        with running.connect(DATABASE) as c:  # writable: a primary, not a standby
            c.execute("UPDATE wide SET pad = 'scrubbed' WHERE id <= 10")
        assert start_seconds < 30, start_seconds
    finally:
        running.stop()
    assert instance.state(copy.path, copy.binaries) == "shut down"
    # the copy's write went into its own blocks: the standby's rows are still production's
    assert checksums(site.standby) == site.standby_sums


def test_the_standby_was_never_started_and_its_files_are_unchanged(site, standby_copy):
    assert standby_copy  # copied (and, in the test above, started and written) before this check
    assert checksums(site.standby) == site.standby_sums
    assert not (site.standby / "postmaster.pid").exists()
    assert cluster.inspect(site.standby).state == "shut down in recovery"


def test_a_base_backup_is_copied_and_replays_its_wal_to_consistency(site):
    sums = checksums(site.backup)
    copy = datadir.copy_data_directory(site.backup, site.root / "copies" / "from_backup")
    assert copy.record()["clone_source_state"] == "base backup"
    running = instance.start(copy.path, copy.binaries, instance.Serving(instance.free_port()))
    try:
        assert digest(running.connect) == site.expected
    finally:
        running.stop()
    assert checksums(site.backup) == sums
    shutil.rmtree(copy.path)


def test_a_running_server_is_refused(site):
    target = site.root / "copies" / "from_running"
    with pytest.raises(
        ConfigError, match=r"primary belongs to a running server \(postmaster.pid: process \d+"
    ):
        datadir.copy_data_directory(site.primary.datadir, target)
    assert not target.exists()


def test_a_server_stopped_by_a_crash_is_refused(site, standby_copy):
    """A copy of the copy, started and then stopped with -m immediate: pg_control says it was running."""
    copy, _ = standby_copy
    crashed = datadir.copy_data_directory(copy.path, site.root / "copies" / "crashed")
    running = instance.start(crashed.path, crashed.binaries, instance.Serving(instance.free_port()))
    try:
        pg_ctl(crashed.path, "-m", "immediate", "-w", "stop")
    finally:
        running.stop()  # nothing to stop unless the crash failed
    target = site.root / "copies" / "from_crashed"
    with pytest.raises(ConfigError, match=r"was not shut down cleanly \(pg_controldata: 'in production'\)"):
        datadir.copy_data_directory(crashed.path, target)
    assert not target.exists()
    shutil.rmtree(crashed.path)


def test_a_tablespace_outside_the_data_directory_is_refused(site):
    small = embedded.start(site.root / "with_tablespace")
    try:
        outside = server_dir(site.root / "elsewhere")
        with psycopg.connect(host="127.0.0.1", port=small.port, user="postgres", autocommit=True) as c:
            c.execute(f"CREATE TABLESPACE elsewhere LOCATION '{outside}'")
    finally:
        small.stop()
    target = site.root / "copies" / "from_tablespace"
    refusal = rf"pg_tblspc/\d+: a tablespace outside the data directory \({re.escape(str(outside))}\)"
    with pytest.raises(ConfigError, match=refusal):
        datadir.copy_data_directory(small.datadir, target)
    assert not target.exists()


def test_ext4_is_refused_naming_the_directory_and_the_fix_unless_a_full_copy_is_asked_for():
    if why_no_loop_mounts():
        pytest.skip(why_no_loop_mounts())
    folder = Path(tempfile.mkdtemp(prefix="deid-reflink-ext4-"))
    try:
        with loop_mounted("ext4", folder, 1 << 30) as root:
            root.chmod(0o711)
            embedded.start(root / "standby").stop()
            (root / "copies").mkdir(mode=0o711)
            target = root / "copies" / "learners_staging__20261128"
            with pytest.raises(reflink.NoReflink) as refused:
                datadir.copy_data_directory(root / "standby", target)
            message = str(refused.value)
            assert f"cannot reflink {root / 'standby'} into {root / 'copies'}" in message
            assert f"its filesystem (ext4 on {root})" in message
            assert "mkfs.xfs -m reflink=1" in message and "full_copy: true" in message
            assert not target.exists()
            full = datadir.copy_data_directory(root / "standby", target, full_copy=True)
            record = full.record()
            assert record["clone_method_detail"] == "full copy" and record["clone_shared"] is False
            assert record["clone_extra_bytes"] > 0.9 * full.tree.bytes, (record, full.tree)
            running = instance.start(full.path, full.binaries, instance.Serving(instance.free_port()))
            try:
                with running.connect() as c:
                    assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
            finally:
                running.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
