"""Clone time and extra space of a 1 GB PostgreSQL 18 database: reflink (XFS) vs ext4 vs pg_dump | pg_restore.

    sudo .venv/bin/python -m bench.clone_cow [--rows 1000000] [--repeats 3] [--no-save]

Two loop-mounted filesystems (root only), each the data directory of its own embedded PostgreSQL 18 with
fsync on: XFS made with reflink=1 and ext4. On each, the same database (one table of `--rows` rows of about
1 kB and its primary key: 1 GB at the default) is copied the ways deid can copy it:
  template        deid's template cloner (`clone: template`): CREATE DATABASE ... STRATEGY FILE_COPY with
                  file_copy_method = clone, a reflink copy on XFS; on ext4 the kernel copies the bytes
  file_copy       the same cloner with file_copy_method left at copy, as on PostgreSQL 15 to 17 (ext4 only)
  dump            deid's dump cloner (`clone: dump`): pg_dump --format=custom piped into pg_restore (ext4)
  reflink         the whole data directory, once its server is stopped cleanly, copied by
                  deid/backends/postgresql/cloners/datadir.py (`clone: reflink`): FICLONE per file on XFS; on
                  ext4 it refuses, and `full_copy` copies every byte instead. Each copy is then started on a
                  free port until it accepts connections (start_seconds), stopped and removed
Each is timed as the snapshot step times a clone (the whole cloner), with the filesystem's free space taken
before and after (statvfs; the server's WAL counts too); the template cloner's own record fields are kept.
template and file_copy alternate, after one unmeasured copy. Every copy is dropped before the next, and
the filesystems are unmounted at the end, also after a failure.
The loop mounts and the servers come from tests/test_cow_clone.py, which asserts what this measures.
Results: bench/results/<date>-clone-cow-pg18.json (-2, -3... for later runs of the same day).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import sqlalchemy as sa

from bench.servers import RESULTS, machine_facts, save_result, server_facts
from deid.backends.postgresql import cow
from deid.backends.postgresql.cloners import datadir, instance
from deid.backends.postgresql.cloners.dump import DumpCloner
from deid.backends.postgresql.cloners.template import TemplateCloner
from deid.steps.context import RunContext
from tests import runctx
from tests.conftest import Server
from tests.test_cow_clone import (
    DAY,
    PRODUCTION,
    durable_server,
    load_production,
    loop_mounted,
    why_no_loop_mounts,
)

IMAGE_SIZE = 8 << 30  # sparse: the database, one copy of it, and the WAL a restore writes
MB = 1 << 20


def free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bfree * stats.f_frsize


def admin(server: Server, sql: str) -> None:
    engine = sa.create_engine(server.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            c.exec_driver_sql(sql)
    finally:
        engine.dispose()


def copy_as_before_18(ctx: RunContext) -> None:
    """The template cloner as it runs on PostgreSQL 15 to 17: STRATEGY FILE_COPY, file_copy_method left at
    its default, copy (the same cloner, so both rows carry the same overhead)."""
    with mock.patch.object(cow, "file_copy", lambda connection: (" STRATEGY FILE_COPY", cow.FILE_COPY)):
        TemplateCloner().clone(ctx)


def measure(
    server: Server, mountpoint: Path, clone: Callable[[RunContext], None], method: str, repeats: int
) -> list[dict]:
    """`repeats` copies of production by `clone`, each timed and weighed, then dropped."""
    runs = []
    for _ in range(repeats):
        ctx = runctx.make_ctx(server, PRODUCTION, f"cow_bench_{uuid.uuid4().hex[:6]}", DAY, clone=method)
        admin(server, "CHECKPOINT")  # no dirty buffer of the last copy's drop is written during this one
        os.sync()
        before = free_bytes(mountpoint)
        started = time.monotonic()
        clone(ctx)
        seconds = time.monotonic() - started
        os.sync()  # what a full copy wrote is on disk before its space is read (fsync is on: already is)
        run = {"seconds": round(seconds, 3), "extra_bytes": before - free_bytes(mountpoint)}
        run.update({k: v for k, v in ctx.record.items() if k.startswith("clone_")})
        runs.append(run)
        admin(server, f'DROP DATABASE "{ctx.work_name}" WITH (FORCE)')
    return runs


def measure_datadir(data: Path, mountpoint: Path, full_copy: bool, repeats: int) -> list[dict]:
    """`repeats` copies of the stopped data directory `data`, each timed (the whole copy_data_directory:
    checks, copy, preparation) and weighed, then started once until it accepts connections, stopped and
    removed."""
    copies = mountpoint / "copies"
    copies.mkdir(mode=0o711, exist_ok=True)
    runs = []
    for _ in range(repeats):
        target = copies / f"cow_bench__{uuid.uuid4().hex[:6]}"
        os.sync()
        before = free_bytes(mountpoint)
        started = time.monotonic()
        copy = datadir.copy_data_directory(data, target, full_copy=full_copy)
        seconds = time.monotonic() - started
        os.sync()
        run = {"seconds": round(seconds, 3), "extra_bytes": before - free_bytes(mountpoint)}
        run.update(copy.record(), copied_bytes=copy.tree.bytes, files=copy.tree.files)
        started = time.monotonic()
        instance.start(copy.path, copy.binaries, instance.Serving(instance.free_port())).stop()
        run["start_seconds"] = round(time.monotonic() - started, 3)  # start, first connection, clean stop
        shutil.rmtree(target)
        runs.append(run)
    return runs


def on_filesystem(kind: str, folder: Path, rows: int, repeats: int, report) -> dict:
    result: dict = {"filesystem": kind, "measurements": {}}
    with loop_mounted(kind, folder, IMAGE_SIZE) as mountpoint, durable_server(mountpoint / "data") as pg:
        server = Server(id=f"pg18-{kind}", admin_url=pg.url(), version=18)
        started = time.monotonic()
        load_production(server, rows)
        engine = sa.create_engine(server.url(PRODUCTION), poolclass=sa.pool.NullPool)
        with engine.begin() as c:
            c.exec_driver_sql("ALTER TABLE wide ADD PRIMARY KEY (id)")
        engine.dispose()
        admin(server, "CHECKPOINT")
        size = _database_bytes(server)
        report(f"{kind}: production loaded, {size / MB:,.0f} MB in {time.monotonic() - started:.1f} s")
        result.update(database_bytes=size, server=server_facts(server.admin_url))
        plan: list[tuple[str, Callable[[RunContext], None], str]] = [
            ("template", TemplateCloner().clone, "template")
        ]
        if kind == "ext4":
            plan.append(("file_copy", copy_as_before_18, "template"))
        # One copy unmeasured: the first after the load pays for the load's writeback (5.5 s against 3.2 on
        # ext4). Then alternating (template, file_copy, template, ...): neither gets the warmer cache.
        measure(server, mountpoint, TemplateCloner().clone, "template", 1)
        for _ in range(repeats):
            for name, clone, method in plan:
                run = measure(server, mountpoint, clone, method, 1)
                result["measurements"].setdefault(name, []).extend(run)
        if kind == "ext4":
            result["measurements"]["dump"] = measure(server, mountpoint, DumpCloner().clone, "dump", 1)
        pg.stop()  # clone: reflink copies a stopped data directory
        full_copy = kind == "ext4"  # refused otherwise: ext4 has no reflinks
        result["measurements"]["reflink"] = measure_datadir(pg.datadir, mountpoint, full_copy, repeats)
        for name, runs in result["measurements"].items():
            report(
                f"{kind} {name}: "
                + ", ".join(f"{r['seconds']} s {r['extra_bytes'] / MB:,.1f} MB" for r in runs)
            )
    return result


def _database_bytes(server: Server) -> int:
    engine = sa.create_engine(server.admin_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            return int(c.exec_driver_sql(f"SELECT pg_database_size('{PRODUCTION}')").scalar_one())
    finally:
        engine.dispose()


LABELS = {
    ("xfs", "template"): "XFS reflink=1: `clone: template` (file_copy_method = clone: a reflink copy)",
    ("ext4", "template"): "ext4: `clone: template` (file_copy_method = clone: the kernel copies the bytes)",
    ("ext4", "file_copy"): "ext4: `clone: template` with file_copy_method = copy (as on PostgreSQL 15-17)",
    ("ext4", "dump"): "ext4: `clone: dump` (pg_dump --format=custom piped into pg_restore)",
    ("xfs", "reflink"): "XFS reflink=1: `clone: reflink` (the stopped data directory, every file reflinked)",
    ("ext4", "reflink"): "ext4: `clone: reflink` refused; with `full_copy: true` (every byte of it copied)",
}


def markdown(results: list[dict], facts: dict) -> str:
    first = results[0]
    head = (
        f"| {first['database_bytes'] / MB:,.0f} MB database, PostgreSQL {first['server']['server_version']}, "
        f"{facts['nproc']} cores, fsync on | seconds | extra space | blocks shared |"
    )
    lines = [head, "| --- | ---: | ---: | --- |"]
    for result in results:
        for name, runs in result["measurements"].items():
            seconds = statistics.median(r["seconds"] for r in runs)
            extra = statistics.median(r["extra_bytes"] for r in runs)
            shared = {True: "yes", False: "no"}.get(runs[0].get("clone_shared"), "no (a new copy)")
            count = f" (median of {len(runs)})" if len(runs) > 1 else ""
            label = LABELS[result["filesystem"], name]
            lines.append(f"| {label} | {seconds:.2f}{count} | {extra / MB:,.1f} MB | {shared} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clone_cow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of about 1 kB (default: 1 GB)")
    parser.add_argument("--repeats", type=int, default=3, help="copies per clone method (dump: one)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    args = parser.parse_args(argv)

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    reason = why_no_loop_mounts()
    if reason:
        print(f"cannot measure here: {reason}", file=sys.stderr)
        return 1
    facts = machine_facts()
    folder = Path(tempfile.mkdtemp(prefix="deid-cow-bench-"))
    try:
        results = [on_filesystem(kind, folder, args.rows, args.repeats, report) for kind in ("xfs", "ext4")]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    table = markdown(results, facts)
    print(table)
    if not args.no_save:
        name = f"{dt.date.today().isoformat()}-clone-cow-pg18"
        taken = [n for n in range(1, 100) if (RESULTS / f"{name}{f'-{n}' if n > 1 else ''}.json").exists()]
        if taken:  # an earlier run of the same day, which the README may cite: kept
            name += f"-{max(taken) + 1}"
        save_result(name, {"machine": facts, "rows": args.rows, "results": results}, table, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
