"""`./dev demo`: start an embedded PostgreSQL 18, seed the 'learners' production database once, then run the
nightly job on it: lint the rules against the live schema, snapshot, scrub, rebase, migrate, validate and
publish `learners_staging`, and show what is published (previous runs' copies are kept for rollback)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from deid.demo import embedded

ROOT = Path(__file__).resolve().parents[2]
DEMO_DATABASE = "learners"


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
    parser = argparse.ArgumentParser(prog="./dev demo", description=__doc__)
    parser.add_argument(
        "--learners", type=int, default=2000, help="size of the seeded database (first run only)"
    )
    parser.add_argument(
        "--data", default=str(ROOT / ".cache" / "demo-pg18"), help="embedded server's data folder"
    )
    parser.add_argument("--date", help="logical date of the run (default: today, UTC)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    server = embedded.start(Path(args.data))
    seeded = ensure_seeded(server, args.learners)
    print(
        f"demo: embedded PostgreSQL 18 on 127.0.0.1:{server.port}; production database '{DEMO_DATABASE}' "
        f"{'seeded' if seeded else 'already seeded'} ({time.monotonic() - started:.1f}s)"
    )
    os.environ["DEID_CONN_LEARNERS_PROD"] = server.url(DEMO_DATABASE)
    os.environ["DEID_CONN_STAGING"] = server.url()
    # A demo salt, labelled as one. Real deployments keep theirs in a secret store (deid.yaml names it).
    os.environ.setdefault("DEID_SECRET_DEID_SALT", "demo-salt-not-a-secret")
    os.environ.setdefault("DEID_CONFIG", str(ROOT / "deid.yaml"))

    from deid.cli import main as deid

    run = ["run", DEMO_DATABASE] + (["--date", args.date] if args.date else [])
    lint = ["lint", "--database", DEMO_DATABASE, str(ROOT / "rules" / "learners.yaml")]
    for command in (lint, run, ["status", DEMO_DATABASE]):
        print(f"\n$ deid {' '.join(command)}", flush=True)
        code = deid(command)
        if code:
            return code
    print(
        f"\ndemo: done in {time.monotonic() - started:.1f}s. The server keeps running; to look around:\n"
        f"  psql postgresql://postgres@127.0.0.1:{server.port}/learners_staging\n"
        f"  export DEID_CONN_LEARNERS_PROD={server.url(DEMO_DATABASE)} DEID_CONN_STAGING={server.url()}\n"
        "  .venv/bin/deid plan learners   # also: status learners, rollback learners, run learners --date D"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
