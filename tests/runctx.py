"""Run contexts for step tests: a demo database config pointing at one test server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from deid.config import Config, DatabaseConfig, Migrations
from deid.steps.context import RunContext

ROOT = Path(__file__).resolve().parent.parent


def make_ctx(
    postgres, production: str, staging: str, day: dt.date, database_class=DatabaseConfig, **fields
) -> RunContext:
    """A RunContext for `learners` whose production and staging copies live on the `postgres` test server."""
    fields.setdefault("migrations", Migrations("sql", "migrations/learners"))  # as the repository's deid.yaml
    fields.setdefault("rules", "rules/learners.yaml")
    database = database_class(
        name="learners",
        engine="postgresql",
        production="production",
        staging_server="staging",
        staging_name=staging,
        salt_secret="salt",
        **fields,
    )
    return RunContext(
        config=Config(file="deid.yaml", root=ROOT, databases={"learners": database}),
        database=database,
        logical_date=day,
        production_url=postgres.url(production),
        staging_server_url=postgres.admin_url,
        salt="not-a-secret",
    )
