"""PostgreSQL 18's `file_copy_method = clone` through the template cloner, on real filesystems.

Two loop-mounted filesystems, each the data directory of its own embedded PostgreSQL 18: XFS made with
reflink=1, where the clone shares the template's blocks, and ext4, where the kernel copies them. A database
of about 1 GB is cloned on each by the real TemplateCloner, from the RunContext the snapshot step uses: on
XFS it takes a fraction of a second and almost no space, on ext4 seconds and its full size, and the run
record says which happened. The test makes its own filesystems, so it needs root, a loop device and
mkfs.xfs (CI installs xfsprogs); it skips, saying which is missing, only where loop mounts are impossible.

The servers run with fsync on, as production does (embedded.start turns it off for speed): a copy that never
reaches the disk would time only the page cache.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.backends.postgresql import cow
from deid.backends.postgresql.cloners.template import TemplateCloner
from deid.backends.postgresql.demo import embedded
from deid.records.report import render_report
from tests import runctx
from tests.conftest import Server

DAY = dt.date(2026, 11, 28)
ROWS = 1_000_000  # of about 1 kB each: a 1 GB database
IMAGE_SIZE = 4 << 30  # sparse; the ext4 one holds the database, its full copy and the server's WAL
PRODUCTION = "cow_prod"
TOOLS = ("mkfs.xfs", "mkfs.ext4", "mount", "umount", "losetup")
MKFS = {"xfs": ["mkfs.xfs", "-q", "-m", "reflink=1"], "ext4": ["mkfs.ext4", "-q"]}


def why_no_loop_mounts() -> str | None:
    """Why this machine cannot loop-mount a filesystem image, or None when it can."""
    if os.geteuid() != 0:
        return "loop mounts need root (CI runs as root)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (the package xfsprogs has mkfs.xfs)"
    if not Path("/dev/loop-control").exists():
        return "no loop device (/dev/loop-control is missing)"
    return None


@contextmanager
def loop_mounted(kind: str, folder: Path, size: int = IMAGE_SIZE) -> Iterator[Path]:
    """A fresh `kind` filesystem in a sparse image of `size` bytes under `folder`, mounted on
    `folder/kind`; unmounted and its loop device detached afterwards, whatever happened. Skips when the
    kernel refuses the mount. (bench/clone_cow.py uses it too.)"""
    image, mountpoint = folder / f"{kind}.img", folder / kind
    with open(image, "wb") as f:
        f.truncate(size)
    mountpoint.mkdir()
    subprocess.run([*MKFS[kind], str(image)], check=True, capture_output=True)
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        image.unlink()
        pytest.skip(f"cannot loop-mount {kind} here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mountpoint)], capture_output=True)
        # mount -o loop detaches on umount (autoclear); a device left behind by a lazy umount is let go here
        attached = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True).stdout
        for line in attached.splitlines():
            subprocess.run(["losetup", "-d", line.split(":", 1)[0]], capture_output=True)
        image.unlink(missing_ok=True)


@contextmanager
def durable_server(datadir: Path) -> Iterator[embedded.EmbeddedPostgres]:
    """An embedded PostgreSQL 18 on `datadir` with fsync on; stopped afterwards. embedded.start initialises
    the folder (and its owner, as root) and starts a server with fsync off; it is started again here with
    the defaults, plus wal_level = minimal so that loading the database writes its rows once, not twice
    (a clone copies files, not WAL: the setting does not change what is measured)."""
    server = embedded.start(datadir)
    server.stop()
    options = f"-p {server.port} -h 127.0.0.1 -k {server.datadir} -c wal_level=minimal -c max_wal_senders=0"
    started = subprocess.run(
        [str(embedded._bin("pg_ctl")), "-D", str(server.datadir), "-l", str(server.datadir / "server.log")]
        + ["-o", options, "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
        **embedded._run_as(),
    )
    assert started.returncode == 0, started.stderr
    try:
        yield server
    except BaseException as error:
        error.add_note(f"the server's log ends with:\n{(server.datadir / 'server.log').read_text()[-3000:]}")
        raise
    finally:
        server.stop()


def load_production(server: Server, rows: int = ROWS) -> int:
    """PRODUCTION with `rows` rows of about 1 kB (no TOAST, no compression), checkpointed; its size in
    bytes."""
    admin = sa.create_engine(server.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {PRODUCTION}")
    production = sa.create_engine(server.url(PRODUCTION), poolclass=sa.pool.NullPool)
    with production.begin() as c:
        c.exec_driver_sql(
            "CREATE TABLE wide AS SELECT g AS id, repeat(md5(g::text), 28) AS pad "
            f"FROM generate_series(1, {rows}) g"
        )
    production.dispose()
    with admin.connect() as c:
        c.exec_driver_sql("CHECKPOINT")
        size = c.exec_driver_sql(f"SELECT pg_database_size('{PRODUCTION}')").scalar_one()
    admin.dispose()
    return int(size)


@dataclass
class Clone:
    seconds: float  # TemplateCloner.clone, timed as the snapshot step times it
    database_bytes: int
    record: dict  # what the cloner put in the run record
    rows: int  # the highest id in the working copy's table


def clone_on(kind: str, folder: Path) -> Clone:
    """Mount a `kind` filesystem, load a 1 GB production database on a server whose data directory is on
    it, and clone it with the template cloner as tonight's working copy."""
    with loop_mounted(kind, folder) as mountpoint, durable_server(mountpoint / "data") as pg:
        server = Server(id=f"pg18-{kind}", admin_url=pg.url(), version=18)
        size = load_production(server)
        ctx = runctx.make_ctx(server, PRODUCTION, f"cow_{uuid.uuid4().hex[:6]}", DAY, clone="template")
        started = time.monotonic()
        TemplateCloner().clone(ctx)
        seconds = time.monotonic() - started
        work = sa.create_engine(ctx.work_url, poolclass=sa.pool.NullPool)
        with work.connect() as c:
            # the rows of the last 1% of pages, by a TID range scan: reading every row would set its hint
            # bits, and with data checksums (initdb's default since 18) log each page whole
            pages = c.exec_driver_sql("SELECT pg_relation_size('wide') / current_setting('block_size')::int")
            tail = f"({pages.scalar_one() * 99 // 100},0)"
            rows = c.exec_driver_sql(f"SELECT max(id) FROM wide WHERE ctid >= '{tail}'").scalar_one()
        work.dispose()
        return Clone(seconds, size, dict(ctx.record), rows)


@pytest.fixture(scope="module")
def clones() -> Iterator[dict[str, Clone]]:
    reason = why_no_loop_mounts()
    if reason:
        pytest.skip(reason)
    # Not under pytest's basetemp: another pytest session of the same user prunes old basetemps, and
    # would delete the servers' files through the mount while they run.
    folder = Path(tempfile.mkdtemp(prefix="deid-cow-"))
    try:
        yield {kind: clone_on(kind, folder) for kind in ("xfs", "ext4")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_clone_on_xfs_shares_the_templates_blocks(clones):
    xfs = clones["xfs"]
    assert xfs.database_bytes > 900 << 20
    assert xfs.record["clone_method_detail"] == cow.CLONE == "file_copy_method=clone"
    assert xfs.record["clone_shared"] is True
    # almost no extra space: under 2% of the database (measured: well under 1 MB for 1 GB)
    assert xfs.record["clone_extra_bytes"] < 0.02 * xfs.database_bytes, xfs.record
    assert xfs.rows == ROWS


def test_the_same_clone_on_ext4_is_a_full_copy(clones):
    """ext4 has no reflinks: PostgreSQL asks for a clone all the same and the kernel copies the bytes."""
    ext4 = clones["ext4"]
    assert ext4.record["clone_method_detail"] == cow.CLONE
    assert ext4.record["clone_shared"] is False
    assert 0.9 * ext4.database_bytes < ext4.record["clone_extra_bytes"] < 1.2 * ext4.database_bytes
    assert ext4.rows == ROWS


def test_a_clone_on_xfs_takes_well_under_a_second_and_a_fraction_of_the_copy(clones):
    xfs, ext4 = clones["xfs"], clones["ext4"]
    assert xfs.seconds < 1.0, (xfs.seconds, ext4.seconds)
    assert xfs.seconds < 0.25 * ext4.seconds, (xfs.seconds, ext4.seconds)


def test_the_report_says_whether_blocks_were_shared(clones):
    shared = render_report({**clones["xfs"].record, "clone_method": "template", "clone_seconds": 0.05})
    copied = render_report({**clones["ext4"].record, "clone_method": "template", "clone_seconds": 6.2})
    assert "template (0.05 s, file_copy_method=clone: blocks shared, 0." in shared
    assert "template (6.20 s, file_copy_method=clone: blocks copied, 9" in copied  # 9xx.x MB extra


def test_every_configured_server_records_how_the_files_were_copied(postgres, staging):
    """PostgreSQL 18 is asked for a clone; 15 to 17 copy with STRATEGY FILE_COPY. Wherever the space was
    measured, whether blocks were shared was too."""
    production = postgres.create_database("deid_cow")
    try:
        ctx = runctx.make_ctx(postgres, production, staging, DAY, clone="template")
        TemplateCloner().clone(ctx)
    finally:
        postgres.drop_database(production)
    assert ctx.record["clone_method_detail"] == (cow.CLONE if postgres.version >= 18 else cow.FILE_COPY)
    measured = ctx.record["clone_extra_bytes"] is not None
    assert isinstance(ctx.record["clone_shared"], bool) == measured, ctx.record


def test_a_role_that_may_not_see_the_data_directory_measures_nothing(postgres, pg_url):
    """Without superuser or pg_read_all_settings, data_directory is hidden: the copy's cost stays unknown."""
    role = f"deid_cow_{uuid.uuid4().hex[:6]}"
    owner = sa.create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with owner.connect() as c:
        c.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    limited = sa.create_engine(sa.make_url(pg_url).set(username=role), poolclass=sa.pool.NullPool)
    try:
        with limited.connect() as c:
            database = sa.make_url(pg_url).database
            assert cow.watch_disk(c, database) == cow.DiskWatch(None, None)
            assert cow.DiskWatch(None, None).finish(c, database) == {
                "clone_extra_bytes": None,
                "clone_shared": None,
            }
    finally:
        limited.dispose()
        with owner.connect() as c:
            c.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()
