"""Benchmark deid's scrub and whole refresh against what the server itself can do, on one server, in one run.

    .venv/bin/python -m bench.run [--server embedded|URL] [--users N ...] [--only NAME ...]

For each size: build the production database (bench/build.py), then measure side by side
  rewrite  the rewrite limit: CREATE TABLE AS SELECT * FROM users, then its PK, unique email and unique ssn
           built again (on a template copy)
  update   a plain UPDATE of the 8 sensitive columns with deid's expressions (the plan's users statement),
           indexes in place (on a template copy)
  scrub    deid's scrub of users alone: scrub_database(..., tables={'public.users'}) (on a template copy)
  scrub_sql  the same with stream=False: the SQL forms' rewrite, as before the streamed scrub
  dump     pg_dump -Fd -j2 of the whole database into a folder, then pg_restore -j2 into a new database
  stream   deid's snapshot step with clone: dump (pg_dump -Fc piped into pg_restore, no file), the
           same database copied as dump does, for comparison with it
  run      deid's whole refresh in its own process: `python -m deid.cli --config bench/deid.yaml run bench
           --date D` (snapshot to publish), wall time and peak RSS (wait4)
and print a markdown table (seconds, and ratios to the rewrite limit) with the targets:
  scrub of users <= 2x the rewrite limit; whole refresh faster than dump/restore; deid's peak RSS <= 300 MB
  and flat in the number of users.
Results go to bench/results/<date>-<users>-pg<major>.json. Every database a run creates is dropped at the
end (also after a failure); the production database too, unless --keep-prod.

Benchmarks are never part of the tests' pass/fail: a missed target is reported, not raised.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

from bench import build as bench_build
from bench.servers import (
    ROOT,
    SERVER_HELP,
    client_bin,
    libpq_args,
    libpq_env,
    machine_facts,
    server_facts,
    server_url,
    timed,
)

BENCH = ROOT / "bench"
CONFIG = BENCH / "deid.yaml"
RULES = BENCH / "rules" / "bench.yaml"
RESULTS = BENCH / "results"
PROD = "bench_prod"  # the production database named by bench/deid.yaml (connection bench_prod)
STAGING = "bench_staging"  # the staging name in bench/deid.yaml
COPY_PREFIX = "bench_copy_"
RESTORE = "bench_restore"
SALT = "deid-bench-salt"  # fixed: same staging data on every run
LOGICAL_DATE = "2026-11-28"
USERS_TABLE = "public.users"
MEASUREMENTS = ("rewrite", "update", "scrub", "scrub_sql", "dump", "stream", "run", "scan")
LOCK_KEY = 0x6465_6964_6265  # advisory lock: one benchmark at a time per server
TARGET_SCRUB_RATIO = 2.0
TARGET_PEAK_MB = 300.0
SESSIONS = 2  # scrub_sessions in bench/deid.yaml (deid's default): both of the reference machine's cores

Report = Callable[[str], None]


@dataclass
class Measurement:
    name: str
    label: str
    seconds: float | None = None  # None: not measured
    detail: dict = field(default_factory=dict)
    note: str = ""


# ---------------------------------------------------------------------------------------------------------
# Server helpers


class Server:
    def __init__(self, admin_url: str, report: Report):
        self.admin_url = admin_url
        self.report = report
        self.created: list[str] = []

    def url(self, database: str) -> str:
        return bench_build.database_url(self.admin_url, database)

    def admin(self, sql: str) -> None:
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as c:
                c.exec_driver_sql(sql)
        finally:
            engine.dispose()

    def databases(self, like: str) -> list[str]:
        engine = sa.create_engine(self.admin_url)
        try:
            with engine.connect() as c:
                rows = c.execute(
                    sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": like}
                )
                return sorted(r[0] for r in rows)
        finally:
            engine.dispose()

    def drop(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def clone(self, name: str) -> float:
        """A template copy of production (what deid's template cloner does); returns its seconds."""
        self.drop(name)
        self.created.append(name)
        started = time.monotonic()
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{PROD}"')
        return time.monotonic() - started

    def checkpoint(self) -> None:
        """Start every measurement with no dirty buffers left over from the one before."""
        self.admin("CHECKPOINT")


# ---------------------------------------------------------------------------------------------------------
# The measurements


def measure_rewrite(server: Server) -> Measurement:
    m = Measurement("rewrite", "rewrite limit: CREATE TABLE AS SELECT * FROM users + PK, email, ssn indexes")
    name = COPY_PREFIX + "rewrite"
    m.detail["clone_seconds"] = round(server.clone(name), 3)
    server.checkpoint()
    engine = sa.create_engine(server.url(name), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            steps = {
                "create table as": "CREATE TABLE users_rewrite AS SELECT * FROM users",
                "primary key": "ALTER TABLE users_rewrite ADD PRIMARY KEY (id)",
                "unique email": "ALTER TABLE users_rewrite ADD UNIQUE (email)",
                "unique ssn": "ALTER TABLE users_rewrite ADD UNIQUE (ssn)",
            }
            c.exec_driver_sql("BEGIN")
            for step, sql in steps.items():
                m.detail[step] = round(timed(c, sql), 3)
            m.detail["commit"] = round(timed(c, "COMMIT"), 3)
    finally:
        engine.dispose()
        server.drop(name)
    m.seconds = sum(v for k, v in m.detail.items() if k != "clone_seconds")
    m.note = (
        f"CTAS {m.detail['create table as']:.1f} s, indexes "
        f"{m.detail['primary key'] + m.detail['unique email'] + m.detail['unique ssn']:.1f} s"
    )
    return m


def open_deid_session(connection: sa.Connection, plan, salt: str) -> None:
    """The session scrub_database sets up: _deid functions, dictionaries, key, triggers off."""
    from deid.backends.postgresql.forms.dictionaries import load_dictionaries
    from deid.backends.postgresql.forms.support import apply_key, support_sql

    with connection.begin():
        for statement in support_sql():
            connection.exec_driver_sql(statement)
        load_dictionaries(connection, plan.dictionaries)
        apply_key(connection, salt)
        for statement in plan.preamble:
            connection.exec_driver_sql(statement)


def users_plan(plan):
    return next(t for t in plan.tables if t.table == USERS_TABLE)


def measure_update(server: Server, plan, salt: str) -> Measurement:
    m = Measurement("update", "plain UPDATE of the 8 columns (deid's expressions), indexes in place")
    name = COPY_PREFIX + "update"
    m.detail["clone_seconds"] = round(server.clone(name), 3)
    engine = sa.create_engine(server.url(name))
    try:
        with engine.connect() as c:
            open_deid_session(c, plan, salt)
            # A non-deferrable unique constraint is checked row by row: a new SSN equal to the old SSN of a
            # row not yet rewritten fails the statement (about 1 row in 1,000 at 1M users, so always). The
            # plain UPDATE therefore keeps an ordinary index on ssn instead: the same index maintenance,
            # without the check that makes it fail. (deid sets the indexes aside for exactly this reason.)
            with c.begin():
                c.exec_driver_sql("ALTER TABLE users DROP CONSTRAINT users_ssn_key")
                c.exec_driver_sql("CREATE INDEX users_ssn_idx ON users (ssn)")
            server.checkpoint()
            with c.begin():
                started = time.monotonic()
                rows = c.exec_driver_sql(users_plan(plan).statement).rowcount
            m.seconds = time.monotonic() - started
            m.detail["rows"] = rows
    finally:
        engine.dispose()
        server.drop(name)
    m.note = "PK and unique email in place; ssn's unique constraint as a plain index (see detail)"
    m.detail["why_plain_ssn_index"] = (
        "a non-deferrable unique constraint is checked per row and a new SSN can equal an old one not yet "
        "rewritten, so the UPDATE fails with the constraint in place"
    )
    return m


def measure_scrub(server: Server, plan, salt: str, stream: bool = True) -> Measurement:
    from deid.db import engine as deid_engine
    from deid.steps.scrub import scrub_database
    from deid.vector import warm

    name = "scrub" if stream else "scrub_sql"
    how = "" if stream else ", stream=False: the SQL forms"
    m = Measurement(
        name, f"deid scrub of users (scrub_database, tables={{'public.users'}}, sessions={SESSIONS}{how})"
    )
    name = COPY_PREFIX + name
    m.detail["clone_seconds"] = round(server.clone(name), 3)
    server.checkpoint()
    engine = deid_engine(server.url(name))
    try:
        if stream:  # as `deid run` has them by its scrub: loaded on a thread while its snapshot works
            warm.load()
        started = time.monotonic()
        results = scrub_database(engine, plan, salt, tables={USERS_TABLE}, sessions=SESSIONS, stream=stream)
        m.detail["call_seconds"] = round(time.monotonic() - started, 3)
    finally:
        engine.dispose()
        server.drop(name)
    users = users_result(results)
    # the whole call: the table's stream and swap, and the end of the scrub, which validates the foreign keys
    # the swap added back NOT VALID and analyzes the table
    m.seconds = m.detail["call_seconds"]
    m.detail["rows"] = users.rows
    m.detail["action"] = users.action
    m.note = (
        f"{users.action} (streamed through the vector forms, then swapped in: indexes built, foreign keys "
        "validated, statistics taken; kernels loaded beforehand, as `deid run` loads them during its "
        f"snapshot); the table alone {users.seconds:.1f} s"
        if stream
        else "indexes set aside (PK kept: foreign keys use it), one UPDATE split over the sessions, indexes "
        f"rebuilt; the table alone {users.seconds:.1f} s"
    )
    return m


def users_result(results):
    """The scrub's result for users: its parts added up when it was split (their seconds: the longest, as
    they run side by side)."""
    from deid.steps.scrub import TableResult

    found = [r for r in results if r.table == USERS_TABLE]
    if len(found) == 1:
        return found[0]
    action = f"{found[0].action} in {len(found)} parts, then rebuilt"
    return TableResult(
        USERS_TABLE, sum(r.rows for r in found), max(r.seconds for r in found), action, len(found)
    )


def measure_dump(server: Server, jobs: int = 2) -> Measurement:
    m = Measurement("dump", f"pg_dump -Fd -j{jobs} + pg_restore -j{jobs} of the whole database (no scrub)")
    folder = Path(tempfile.mkdtemp(prefix="deid-bench-dump-"))
    target = folder / "dump"
    env = libpq_env(server.admin_url)
    dump = [
        str(client_bin("pg_dump", server.admin_url)),
        *libpq_args(server.admin_url),
        "-Fd",
        f"-j{jobs}",
        "-f",
        str(target),
    ]
    restore = [
        str(client_bin("pg_restore", server.admin_url)),
        *libpq_args(server.admin_url),
        f"-j{jobs}",
        "-d",
        RESTORE,
    ]
    try:
        server.checkpoint()
        started = time.monotonic()
        subprocess.run([*dump, PROD], check=True, env=env, capture_output=True, text=True)
        m.detail["pg_dump"] = round(time.monotonic() - started, 3)
        m.detail["dump_mb"] = round(sum(f.stat().st_size for f in target.iterdir()) / 2**20, 1)
        server.drop(RESTORE)
        server.created.append(RESTORE)
        started = time.monotonic()
        server.admin(f'CREATE DATABASE "{RESTORE}"')
        subprocess.run(restore + [str(target)], check=True, env=env, capture_output=True, text=True)
        m.detail["pg_restore"] = round(time.monotonic() - started, 3)
    except subprocess.CalledProcessError as exc:
        m.note = f"failed: {exc.stderr.strip()[-300:]}"
        return m
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        server.drop(RESTORE)
    m.seconds = m.detail["pg_dump"] + m.detail["pg_restore"]
    m.detail["clients"] = str(client_bin("pg_dump", server.admin_url).parent)
    m.note = (
        f"dump {m.detail['pg_dump']:.1f} s ({m.detail['dump_mb']:.0f} MB, default compression), "
        f"restore {m.detail['pg_restore']:.1f} s"
    )
    return m


def measure_stream(server: Server, salt: str) -> Measurement:
    """deid's snapshot step with clone: dump, whole: tools chosen, working copy created, pg_dump | pg_restore
    streamed, metadata set. The working copy is dropped afterwards."""
    import dataclasses

    from deid.config import load_config
    from deid.steps.context import RunContext
    from deid.steps.snapshot import snapshot

    m = Measurement("stream", "deid's clone: dump, pg_dump -Fc piped into pg_restore (no file)")
    config = load_config(CONFIG)
    database = dataclasses.replace(config.database("bench"), clone="dump")
    ctx = RunContext(
        config=config,
        database=database,
        logical_date=dt.date.fromisoformat(LOGICAL_DATE),
        production_url=server.url(PROD),
        staging_server_url=server.admin_url,
        salt=salt,
    )
    server.created.append(ctx.work_name)
    server.checkpoint()
    started = time.monotonic()
    try:
        snapshot(ctx)
        m.seconds = time.monotonic() - started
    finally:
        server.drop(ctx.work_name)
    m.detail["clone_seconds"] = ctx.record["clone_seconds"]
    m.detail["clients"] = str(client_bin("pg_dump", server.admin_url).parent)
    m.note = "one restore session overlapping the dump; uncompressed; nothing written to disk"
    return m


def staging_databases(server: Server) -> list[str]:
    return [d for d in server.databases(STAGING + "%") if d == STAGING or d.startswith(STAGING + "__")]


def _deid_env(server: Server, salt: str) -> dict[str, str]:
    return {
        **os.environ,
        "DEID_CONN_BENCH_PROD": server.url(PROD),
        "DEID_CONN_BENCH_STAGING": server.admin_url,
        "DEID_SECRET_BENCH_SALT": salt,
        "PYTHONUNBUFFERED": "1",
    }


def _timed(m: Measurement, command: list[str], env: dict, report: Report, timeout: float) -> list[str]:
    """Run `deid ...` as its own process, echoing its lines; its time, exit code and peak RSS (from wait4:
    that process alone) go into `m`. Returns its output lines."""
    m.detail["command"] = " ".join(command[1:])
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip())
        report(f"  | {lines[-1]}")
    _, status, usage = os.wait4(process.pid, 0)
    killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    m.detail["exit_code"] = process.returncode
    m.detail["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux: kilobytes
    m.detail["user_cpu_seconds"] = round(usage.ru_utime, 2)
    m.detail["output_tail"] = lines[-15:]
    if process.returncode != 0:
        tail = " / ".join(lines[-3:])[-300:]
        m.note = f"not measured: deid failed (exit {process.returncode}): {tail}"
    else:
        m.seconds = time.monotonic() - started
    return lines


def measure_run(server: Server, date: str, salt: str, report: Report, timeout: float) -> Measurement:
    """deid's whole refresh as its own process, with its peak RSS."""
    m = Measurement("run", "deid run bench: snapshot (template), scrub, rebase, migrate, validate, publish")
    for name in staging_databases(server):
        server.drop(name)
    command = [sys.executable, "-m", "deid.cli", "--config", str(CONFIG), "run", "bench", "--date", date]
    server.checkpoint()
    lines = _timed(m, command, _deid_env(server, salt), report, timeout)
    steps = {}
    for line in lines:
        head, found, seconds = line.rpartition(": done in ")  # "deid run bench: scrub: done in 12.3s"
        if found:
            steps[head.rsplit(": ", 1)[-1]] = float(seconds.rstrip("s"))
    m.detail["steps"] = steps
    if m.seconds is not None:
        m.note = "steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
    return m


def measure_scan(server: Server, salt: str, report: Report, timeout: float) -> Measurement:
    """`deid scan bench` (its default sample) as its own process: what an owner waits for on a large
    database, and its peak RSS (documents are parsed in memory)."""
    m = Measurement("scan", "deid scan bench: every column classified from a read-only sample")
    command = [sys.executable, "-m", "deid.cli", "--config", str(CONFIG), "scan", "bench"]
    lines = _timed(m, command, _deid_env(server, salt), report, timeout)
    m.detail["columns"] = sum(1 for line in lines if line.startswith(("public.", '"')))
    if m.seconds is not None:
        m.note = f"{m.detail['columns']} columns classified"
    return m


# ---------------------------------------------------------------------------------------------------------
# One size


def table_sizes(url: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            rows = c.exec_driver_sql(
                "SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1"
            ).all()
            total = c.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    finally:
        engine.dispose()
    return {
        "database_mb": round(total / 2**20, 1),
        "tables": {
            r[0]: {"rows": r[1], "table_mb": round(r[2] / 2**20, 1), "indexes_mb": round(r[3] / 2**20, 1)}
            for r in rows
        },
    }


def production_plan(server: Server):
    from deid import plan as planning
    from deid.backends import backend_for
    from deid.db import connect_readonly
    from deid.rules.load import load_rules

    engine = connect_readonly(server.url(PROD))
    try:
        with engine.connect() as c:
            schema = backend_for("postgresql").introspect(c, "bench")
    finally:
        engine.dispose()
    return planning.build_plan(load_rules(RULES), schema)


def prod_users(server: Server) -> int | None:
    """The size of an existing production database built by bench/build.py (its comment), or None."""
    engine = sa.create_engine(server.admin_url)
    try:
        with engine.connect() as c:
            comment = c.execute(
                sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
                {"n": PROD},
            ).scalar()
    finally:
        engine.dispose()
    if comment and comment.startswith("deid bench: "):
        return int(comment.split()[2])
    return None


def bench_size(server: Server, users: int, args: argparse.Namespace, report: Report) -> dict:
    result: dict = {
        "users": users,
        "enrollments": 3 * users,
        "payments": users,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "server": {"spec": args.server, **server_facts(server.admin_url)},
        "deid_commit": _commit(),
        "logical_date": args.date,
    }
    if args.reuse_prod and prod_users(server) == users:
        report(f"== {users} users: reusing {PROD}")
        result["build_seconds"] = None
    else:
        report(f"== {users} users: building {PROD}")
        result["build_seconds"] = bench_build.build(server.admin_url, users, PROD, report=report)
        server.admin(f"COMMENT ON DATABASE \"{PROD}\" IS 'deid bench: {users} users'")
    result["sizes"] = table_sizes(server.url(PROD))
    plan = production_plan(server)
    result["users_statement"] = users_plan(plan).statement
    measurements: list[Measurement] = []
    steps = {
        "rewrite": lambda: measure_rewrite(server),
        "update": lambda: measure_update(server, plan, args.salt),
        "scrub": lambda: measure_scrub(server, plan, args.salt),
        "scrub_sql": lambda: measure_scrub(server, plan, args.salt, stream=False),
        "dump": lambda: measure_dump(server),
        "stream": lambda: measure_stream(server, args.salt),
        "run": lambda: measure_run(server, args.date, args.salt, report, args.run_timeout),
        "scan": lambda: measure_scan(server, args.salt, report, args.run_timeout),
    }
    for name in MEASUREMENTS:
        if name not in args.only:
            continue
        report(f"-- {name}")
        try:
            m = steps[name]()
        except Exception as exc:  # a broken measurement is reported, and the others still run
            m = Measurement(name, name, note=f"not measured: {type(exc).__name__}: {str(exc)[:300]}")
        report(f"   {m.seconds:.1f} s  {m.note}" if m.seconds is not None else f"   {m.note}")
        measurements.append(m)
    result["measurements"] = [asdict(m) for m in measurements]
    result["targets"] = targets(measurements)
    result["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def targets(measurements: list[Measurement]) -> list[dict]:
    by = {m.name: m for m in measurements}

    def seconds(name: str) -> float | None:
        return by[name].seconds if name in by else None

    out = []
    limit, scrub = seconds("rewrite"), seconds("scrub")
    if limit and scrub is not None:
        out.append(
            {
                "target": f"scrub of users <= {TARGET_SCRUB_RATIO:g}x the rewrite limit",
                "measured": f"{scrub / limit:.2f}x",
                "met": scrub / limit <= TARGET_SCRUB_RATIO,
            }
        )
    dump, run = seconds("dump"), seconds("run")
    if dump is not None and run is not None:
        out.append(
            {
                "target": "whole refresh faster than plain dump/restore",
                "measured": f"{run:.1f} s vs {dump:.1f} s",
                "met": run < dump,
            }
        )
    if "run" in by and "peak_rss_mb" in by["run"].detail and by["run"].seconds is not None:
        peak = by["run"].detail["peak_rss_mb"]
        out.append(
            {
                "target": f"deid process peak memory <= {TARGET_PEAK_MB:g} MB",
                "measured": f"{peak:.0f} MB",
                "met": peak <= TARGET_PEAK_MB,
            }
        )
    return out


def markdown(result: dict) -> str:
    ms = [Measurement(**m) for m in result["measurements"]]
    limit = next((m.seconds for m in ms if m.name == "rewrite"), None)
    server = result["server"]
    machine = result["machine"]
    lines = [
        f"### {result['users']:,} users, {result['enrollments']:,} enrollments, {result['payments']:,} "
        f"payments — PostgreSQL {server['server_version']} ({server['spec'].split('@')[-1]})",
        "",
        f"{machine.get('nproc')} cores ({machine.get('cpu', '?')}), {machine.get('memory_gib')} GiB; "
        f"database {result['sizes']['database_mb']:.0f} MB, users "
        f"{result['sizes']['tables']['users']['table_mb']:.0f} MB + "
        f"{result['sizes']['tables']['users']['indexes_mb']:.0f} MB indexes; load average at start "
        f"{machine['load_average'][0]}",
        "",
        "| measurement | seconds | × rewrite limit | notes |",
        "| --- | ---: | ---: | --- |",
    ]
    for m in ms:
        secs = f"{m.seconds:.1f}" if m.seconds is not None else "not measured"
        ratio = f"{m.seconds / limit:.2f}" if (m.seconds is not None and limit) else "–"
        note = m.note
        if m.name == "run" and "peak_rss_mb" in m.detail:
            note = f"peak RSS {m.detail['peak_rss_mb']:.0f} MB; " + note
        lines.append(f"| {m.label} | {secs} | {ratio} | {note} |")
    if result["targets"]:
        lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
        for t in result["targets"]:
            lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines)


def memory_flatness(results: list[dict]) -> str | None:
    peaks = []
    for r in results:
        run = next((m for m in r["measurements"] if m["name"] == "run" and m["seconds"] is not None), None)
        if run:
            peaks.append((r["users"], run["detail"]["peak_rss_mb"]))
    if len(peaks) < 2:
        return None
    (u0, p0), (u1, p1) = min(peaks), max(peaks)
    flat = p1 <= p0 * 1.2 + 10
    return (
        f"deid peak RSS {p0:.0f} MB at {u0:,} users, {p1:.0f} MB at {u1:,} users: "
        f"{'flat' if flat else 'NOT flat'} (target: flat, <= {TARGET_PEAK_MB:g} MB)"
    )


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def results_path(result: dict) -> Path:
    day = result["started"][:10]
    major = str(result["server"]["server_version"]).split(".")[0]
    return RESULTS / f"{day}-{result['users']}-pg{major}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default="embedded",
        help=SERVER_HELP,
    )
    parser.add_argument(
        "--users", type=int, nargs="+", default=[bench_build.DEFAULT_USERS], help="sizes to run (default 1M)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS), help="measurements to run"
    )
    parser.add_argument(
        "--date", default=LOGICAL_DATE, help=f"deid run's logical date (default {LOGICAL_DATE})"
    )
    parser.add_argument("--salt", default=SALT, help=argparse.SUPPRESS)
    parser.add_argument(
        "--reuse-prod",
        action="store_true",
        help=f"reuse an existing {PROD} of the same size",
    )
    parser.add_argument("--keep-prod", action="store_true", help=f"do not drop {PROD} at the end")
    parser.add_argument("--run-timeout", type=float, default=1800, help="seconds before deid run is killed")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    args = parser.parse_args(argv)

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    server = Server(server_url(args.server), report)
    lock = sa.create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    results = []
    with lock.connect() as held:
        if not held.exec_driver_sql(f"SELECT pg_try_advisory_lock({LOCK_KEY})").scalar():
            print("another benchmark is running on this server", file=sys.stderr)
            return 1
        try:
            for users in args.users:
                try:
                    result = bench_size(server, users, args, report)
                finally:
                    for name in server.created:
                        server.drop(name)
                    server.created.clear()
                    for name in staging_databases(server):
                        server.drop(name)
                    if not args.keep_prod:
                        server.drop(PROD)
                results.append(result)
                table = markdown(result)
                print(table + "\n", flush=True)
                if not args.no_save:
                    RESULTS.mkdir(parents=True, exist_ok=True)
                    path = results_path(result)
                    path.write_text(json.dumps({**result, "markdown": table}, indent=2) + "\n")
                    report(f"wrote {path.relative_to(ROOT)}")
        finally:
            held.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_KEY})")
    lock.dispose()
    flat = memory_flatness(results)
    if flat:
        print(flat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
