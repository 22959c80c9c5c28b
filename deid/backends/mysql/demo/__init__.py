"""The demo database on MariaDB: the learners schema in MariaDB's SQL (schema.sql, which says how each
PostgreSQL-only form was carried over) and the demo's rows loaded into it (load.py). The server is the
user's (`python -m deid.demo --server mysql+pymysql://...`): there is no embedded one.

What every engine's demo package offers deid.demo: see deid.demo.engines.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from deid import rawsql
from deid.backends.mysql.demo.load import SCHEMA_SQL, load
from deid.backends.mysql.quoting import quote_identifier
from deid.db import normalise_url

__all__ = ["RULES", "SCHEMA_SQL", "config_text", "create_database", "load", "shell_command"]

# The rule file of the learners database on this engine: rules/learners.yaml with the key its one namespace
# gives partner_staff (public.partner_staff), less the rules waiting for migrations/learners, whose SQL is
# PostgreSQL's (tests/test_demo_mysql.py keeps the two files in step).
RULES = "rules/learners_mysql.yaml"
# Byte order and case-sensitive comparison, as the PostgreSQL demo's C collation: the same rows satisfy
# the same UNIQUE keys on both engines.
CHARSET, COLLATION = "utf8mb4", "utf8mb4_bin"


def config_text(production: str, rules: Path) -> str:
    """deid.yaml for the demo database `production` on a MariaDB server: what `python -m deid.demo
    --server ...` writes to .cache/demo-mysql/<production>/deid.yaml and leaves there (the checkout's
    deid.yaml names PostgreSQL). The connection and secret names are the checkout's: the demo points them
    at the server. The staging name follows the production database's, so a second demo database on one
    server (`--database learners_bench`) publishes beside the first, not over it."""
    return f"""# Written by `python -m deid.demo --server mysql+pymysql://...`: the demo database
# '{production}' on MariaDB. deid reads it through $DEID_CONFIG; the names below resolve from deid.env
# beside it, which the demo writes too (the server's connections and the demo's salt).
databases:
  learners:
    description: Online learning platform (the demo database), on MariaDB.
    engine: mysql
    production: learners_prod          # the production database '{production}'
    staging_server: staging            # the same server: it holds the staging copies
    staging_name: {production}_staging
    clone: dump                        # mariadb-dump | mariadb (a server copies no database itself)
    retention: 3                       # previous staging copies kept for `deid rollback`
    salt_secret: deid_salt
    rules: {rules}
    schedule: "0 3 * * *"
"""


def create_database(server_url: str, name: str) -> bool:
    """Create the database `name` on the server unless it exists; True when it was created."""
    admin = sa.create_engine(normalise_url(server_url), poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as c:
            found = c.execute(
                sa.text("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"), {"n": name}
            ).scalar()
            if found:
                return False
            quoted = quote_identifier(name)
            rawsql.execute(c, f"CREATE DATABASE {quoted} CHARACTER SET {CHARSET} COLLATE {COLLATION}")
            return True
    finally:
        admin.dispose()


def shell_command(url: str) -> str:
    """How a person opens `url` in the engine's shell (`mysql`, which MariaDB ships too); -p makes it ask
    for the password, which is never shown."""
    u = sa.make_url(url)
    words = ["mysql", "-h", u.host or "127.0.0.1", "-P", str(u.port or 3306), "-u", u.username or "root"]
    return " ".join([*words, *(["-p"] if u.password else []), *([u.database] if u.database else [])])
