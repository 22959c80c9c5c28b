"""The `production-seed` service of docker-compose.yml: the demo production database, and deid's role on it.

    python docker/seed_production.py learners [--learners 2000]

1. Seeds the database named by PRODUCTION_ADMIN_URL (an admin URL) with the demo data of `./dev demo`
   (deid.demo.seed, same seed, same rows), unless it already holds tables: a second start changes nothing.
2. Creates the role that the database's production connection logs in as (deid.yaml names the connection;
   AIRFLOW_CONN_<NAME> or DEID_CONN_<NAME> holds its URL), or resets its password, and makes it read-only:
   it may read every table and sequence (pg_read_all_data) and its transactions are read-only by default.

Passwords are never printed. The role must not be the admin role of PRODUCTION_ADMIN_URL: that one seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import psycopg
import sqlalchemy as sa
from psycopg import sql

from deid.config import EnvSettings, load_config
from deid.demo.seed import seed
from deid.errors import ConfigError

USER_TABLES = """
    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
"""


def connect(url: sa.URL) -> psycopg.Connection:
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=True,
    )


def where(url: sa.URL) -> str:
    return f"{url.host}:{url.port or 5432}/{url.database}"


def ensure_seeded(admin: sa.URL, learners: int) -> bool:
    """Seed the database unless it already has tables; True when it seeded."""
    with connect(admin) as c:
        if c.execute(USER_TABLES).fetchone()[0]:
            return False
    started = time.perf_counter()
    counts = seed(admin.render_as_string(hide_password=False), learners=learners)
    for table, count in counts.items():
        print(f"  {table:28} {count:>10,}")
    print(f"seeded {sum(counts.values()):,} rows in {time.perf_counter() - started:.1f}s")
    return True


def ensure_reader(admin: sa.URL, reader: sa.URL) -> None:
    """The role of `reader`: may log in with its password, read everything, write nothing."""
    role = sql.Identifier(reader.username)
    password = sql.Literal(reader.password) if reader.password else sql.SQL("NULL")
    with connect(admin) as c:
        exists = c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (reader.username,)).fetchone()
        verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
        c.execute(
            sql.SQL("{} {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                verb, role, password
            )
        )
        c.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(role))
        c.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
    print(f"role {reader.username}: read-only (pg_read_all_data, default_transaction_read_only = on)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", help="a database of deid.yaml (DEID_CONFIG)")
    parser.add_argument("--learners", type=int, default=2000, help="size of the seeded database")
    args = parser.parse_args(argv)
    if not os.environ.get("PRODUCTION_ADMIN_URL"):
        raise SystemExit("set PRODUCTION_ADMIN_URL to an admin URL of the production database")
    try:
        database = load_config().database(args.database)
        reader = sa.make_url(EnvSettings().connection(database.production))
    except ConfigError as e:
        raise SystemExit(str(e)) from None
    admin = sa.make_url(os.environ["PRODUCTION_ADMIN_URL"])
    if not reader.username or reader.username == admin.username:
        raise SystemExit(
            f"connection {database.production} logs in as '{reader.username or ''}': give deid a role of its "
            f"own, read-only, not the admin role '{admin.username}' that seeds the database"
        )
    if where(reader) != where(admin):
        raise SystemExit(
            f"connection {database.production} points at {where(reader)}, not at the database this script "
            f"seeds ({where(admin)})"
        )
    seeded = ensure_seeded(admin, args.learners)
    if not seeded:
        print(f"{admin.database}: already seeded, left as it is")
    ensure_reader(admin, reader)
    return 0


if __name__ == "__main__":
    sys.exit(main())
