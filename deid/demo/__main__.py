"""`./dev demo`: start an embedded PostgreSQL 18, seed the 'learners' production database once, then run the
nightly job on it under real Airflow: lint the rules against the live schema, run the DAG
staging_refresh__learners with `airflow dags test` (snapshot, scrub, rebase, migrate, validate, publish
`learners_staging`), print the run's summary, and show what is published (previous runs' copies are kept for
rollback). Airflow's home is `airflow_home/` in the checkout (see deid.demo.local_airflow)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from deid.demo import embedded

ROOT = Path(__file__).resolve().parents[2]
DEMO_DATABASE = "learners"
DEFAULT_DATA = ROOT / ".cache" / "demo-pg18"
DAG_ID = f"staging_refresh__{DEMO_DATABASE}"
# `airflow dags test` logs "<time> [<level>] <message> [<logger>] key=value ..."; deid's loggers' lines are
# shown as it runs (the failure alert among them), everything goes to a file.
DEID_LINE = re.compile(r"^\S+\s+\[(?P<level>\w+)\s*\]\s+(?P<message>.*?)\s+\[deid[.\w]*\](\s+\w+=\S+)*$")


def ensure_seeded(server: embedded.EmbeddedPostgres, learners: int) -> bool:
    """Create and seed the demo production database unless it is already there. True when it seeded."""
    from deid.demo.seed import seed

    admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        exists = c.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DEMO_DATABASE}
        ).scalar()
        if not exists:
            c.exec_driver_sql(f'CREATE DATABASE "{DEMO_DATABASE}"')
    admin.dispose()
    if exists:
        return False
    seed(server.url(DEMO_DATABASE), learners=learners)
    return True


def main(argv: list[str] | None = None) -> int:
    from deid.demo import local_airflow

    parser = argparse.ArgumentParser(prog="./dev demo", description=__doc__)
    parser.add_argument(
        "--learners", type=int, default=2000, help="size of the seeded database (first run only)"
    )
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="embedded server's data folder")
    parser.add_argument("--date", help="logical date of the run, YYYY-MM-DD (default: today, UTC)")
    args = parser.parse_args(argv)
    try:
        day = dt.date.fromisoformat(args.date) if args.date else dt.datetime.now(dt.UTC).date()
    except ValueError:
        parser.error(f"--date {args.date!r} is not a date: use YYYY-MM-DD")

    started = time.monotonic()
    server = embedded.start(Path(args.data))
    seeded = ensure_seeded(server, args.learners)
    print(
        f"demo: embedded PostgreSQL 18 on 127.0.0.1:{server.port}; production database '{DEMO_DATABASE}' "
        f"{'seeded' if seeded else 'already seeded'} ({time.monotonic() - started:.1f}s)"
    )
    env = local_airflow.environment(server, DEMO_DATABASE)
    os.environ.update(env)
    # The CLI below reads Airflow's spellings too, but prefers its own: set those, so that a DEID_CONN_...
    # left in the shell cannot point it at another server than the DAG's.
    os.environ.update(
        {
            key.replace("AIRFLOW_CONN_", "DEID_CONN_").replace("AIRFLOW_VAR_", "DEID_SECRET_"): value
            for key, value in env.items()
            if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        }
    )

    from deid.cli import main as deid

    lint = ["lint", "--database", DEMO_DATABASE, str(ROOT / "rules" / "learners.yaml")]
    print(f"\n$ deid {' '.join(lint)}", flush=True)
    if code := deid(lint):
        return code

    local_airflow.migrate_metadata(env)
    code = run_dag(env, day)
    if code:
        return code
    from deid.cli import print_summary
    from deid.config import load_config
    from deid.records.store import read_records

    record = next(
        r for r in read_records(load_config().records_dir, DEMO_DATABASE) if r["logical_date"] == str(day)
    )
    print(f"\nrun summary (record {_shown(record['files']['record'])}):")
    print_summary(record)
    print(f"report (open it in a browser): {_shown(record['files']['report'])}")

    for command in (["status", DEMO_DATABASE], ["history", DEMO_DATABASE, "--limit", "5"]):
        print(f"\n$ deid {' '.join(command)}", flush=True)
        if code := deid(command):
            return code
    print(
        f"\ndemo: done in {time.monotonic() - started:.1f}s. The server keeps running; to look around:\n"
        f"  psql postgresql://postgres@127.0.0.1:{server.port}/learners_staging\n"
        "  ./dev airflow                 # the Airflow UI on http://127.0.0.1:8080 with this DAG\n"
        f"  ./dev demo --date {day - dt.timedelta(days=1)}  # another logical date: "
        "the published copy is kept for rollback"
    )
    return 0


def _shown(path: str) -> str:
    """A path relative to the checkout when it is inside it: shorter to read."""
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


def run_dag(env: dict[str, str], day: dt.date) -> int:
    """`airflow dags test` of the demo DAG for `day`, showing deid's log lines; the full log goes to a file"""
    from deid.demo.local_airflow import AIRFLOW, HOME

    log = HOME / "logs" / "demo-dags-test.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [str(AIRFLOW), "dags", "test", DAG_ID, day.isoformat()]
    print(f"\n$ airflow dags test {DAG_ID} {day}   (full log: {_shown(str(log))})", flush=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            if shown := DEID_LINE.match(line.rstrip()):
                level = "" if shown["level"] == "info" else f"{shown['level']}: "
                print(f"  {level}{shown['message']}", flush=True)
        code = process.wait()
    if code:
        tail = log.read_text().splitlines()[-15:]
        print("\n".join(["  ...", *tail]), file=sys.stderr)
        print(f"demo: the DAG run failed (exit {code}); the full log is {log}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
