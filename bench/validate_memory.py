"""Peak memory of deid's validate step on the demo database, in a process of its own.

    .venv/bin/python -m bench.validate_memory [--server URL] [--learners 2000] [--runs 3] [--label NAME]

Seeds the demo's learners database (deid.demo.seed) on the server as a production database of its own, runs
`deid run --only snapshot`, `scrub`, `rebase` and `migrate` for one date, then `deid run --only validate`
`--runs` times, each a fresh process whose peak RSS is read from wait4 (ru_maxrss), with its wall time. It
also measures, as many times, a bare `import great_expectations` in a fresh process of the same Python: the
floor GX sets as it ships, which deid does not control, and deid's share over it. The budget is 300 MB for
the step (issue 15, item 7); GX 1.24's import alone is about 261 MB (README, "Performance"). Results go to
bench/results/<date>-validate-memory-<label>.json. Every database it made is dropped at the end, also after
a failure.

Benchmarks are never part of the tests' pass/fail: a missed budget is reported, not raised.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.servers import ROOT, machine_facts, save_result, server_facts

BUDGET_MB = 300
PRODUCTION = "vbench_learners"
STAGING = "vbench_staging"
DATE = "2026-01-15"


def _config(folder: Path) -> Path:
    path = folder / "deid.yaml"
    path.write_text(
        "databases:\n"
        "  learners:\n"
        "    engine: postgresql\n"
        "    production: vbench_prod\n"
        "    staging_server: vbench_staging\n"
        f"    staging_name: {STAGING}\n"
        "    clone: template\n"
        f"    migrations: {{sql: {ROOT / 'migrations' / 'learners'}}}\n"
        "    retention: 1\n"
        "    salt_secret: vbench_salt\n"
        f"    rules: {ROOT / 'rules' / 'learners.yaml'}\n"
        "records:\n"
        f"  dir: {folder / 'records'}\n"
    )
    return path


def _deid(config: Path, env: dict[str, str], *args: str) -> tuple[float, float]:
    """Run `deid` in a process of its own: (peak RSS in MB, seconds)."""
    return _measured([sys.executable, "-m", "deid.cli", "--config", str(config), *args], env)


def _gx_import(env: dict[str, str]) -> tuple[float, float]:
    """A bare `import great_expectations` in a process of its own: (peak RSS in MB, seconds)."""
    return _measured([sys.executable, "-c", "import great_expectations"], env)


def _measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command[1:4])} failed:\n{stderr[-2000:]}")
    return round(usage.ru_maxrss / 1024, 1), round(seconds, 2)


def _drop_all(admin: sa.Engine) -> None:
    with admin.connect() as c:
        names = c.execute(
            sa.text("SELECT datname FROM pg_database WHERE datname LIKE 'vbench%' OR datname LIKE :s"),
            {"s": f"{STAGING}%"},
        ).scalars()
        for name in list(names):
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--learners", type=int, default=2000, help="the demo's default size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--label", default="now")
    parser.add_argument("--keep", metavar="FOLDER", help="keep the databases and write the config to FOLDER")
    args = parser.parse_args(argv)

    from deid.demo.seed import seed

    admin = sa.create_engine(args.server, isolation_level="AUTOCOMMIT")
    production = sa.make_url(args.server).set(database=PRODUCTION).render_as_string(hide_password=False)
    _drop_all(admin)
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{PRODUCTION}"')
        seed(production, learners=args.learners)
        with tempfile.TemporaryDirectory(prefix="deid-vbench-") as folder:
            config = _config(Path(args.keep or folder))
            env = {
                **os.environ,
                "DEID_CONN_VBENCH_PROD": production,
                "DEID_CONN_VBENCH_STAGING": args.server,
                "DEID_SECRET_VBENCH_SALT": "bench-salt-not-a-secret",
            }
            for step in ("snapshot", "scrub", "rebase", "migrate"):
                _deid(config, env, "run", "learners", "--date", DATE, "--only", step)
            runs = [
                dict(zip(("peak_rss_mb", "seconds"), _deid(config, env, "run", "learners", "--date", DATE,
                                                          "--only", "validate"), strict=True))
                for _ in range(args.runs)
            ]  # fmt: skip
            floors = [
                dict(zip(("peak_rss_mb", "seconds"), _gx_import(env), strict=True)) for _ in range(args.runs)
            ]
    finally:
        if not args.keep:
            _drop_all(admin)
        admin.dispose()
    peak = max(r["peak_rss_mb"] for r in runs)
    floor = min(r["peak_rss_mb"] for r in floors)
    share = round(peak - floor, 1)
    result = {
        "what": "peak RSS of `deid run --only validate` on the demo database, a process per run (wait4)",
        "label": args.label,
        "learners": args.learners,
        "budget_mb": BUDGET_MB,
        "runs": runs,
        "peak_rss_mb": peak,
        "within_budget": peak <= BUDGET_MB,
        "gx_import_runs": floors,
        "gx_import_mb": floor,
        "deid_share_mb": share,
        "server": server_facts(args.server),
        "machine": machine_facts(),
    }
    table = (
        "| process | peak RSS, MB | seconds |\n| --- | ---: | ---: |\n"
        + "".join(
            f"| validate step, run {i + 1} | {r['peak_rss_mb']} | {r['seconds']} |\n"
            for i, r in enumerate(runs)
        )
        + "".join(
            f"| `import great_expectations`, run {i + 1} | {r['peak_rss_mb']} | {r['seconds']} |\n"
            for i, r in enumerate(floors)
        )
        + f"\ndeid's share over GX's import: {share} MB; budget {BUDGET_MB} MB for the step\n"
    )
    print(table)
    name = f"{dt.date.today().isoformat()}-validate-memory-{args.label}"
    save_result(name, result, table, print)


if __name__ == "__main__":
    main()
