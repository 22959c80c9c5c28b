"""A production database, its rule file and deid.yaml in a folder of the test's, and `deid` run against them.

The gauntlet tests (tests/test_gauntlet_*.py) each build a small production database of their own from SQL,
write the rules the case needs, and drive the CLI as a user would: in this process (`cli`, fast: Great
Expectations is imported once) or as a child process (`start`, for signals and kills).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from deid.cli import main
from deid.steps.copies import admin, copies_on, drop_database, read_metadata
from deid.steps.state import CopyState, parse_state

ROOT = Path(__file__).resolve().parent.parent
SALT = "gauntlet-salt-not-a-secret"
DATABASE = "shop"


def supports_xml(connection: sa.Connection) -> bool:
    """Whether the server was built with XML support (the embedded PostgreSQL 18 is not)."""
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("SELECT '<a/>'::xml")
        return True
    except sa.exc.NotSupportedError:
        return False


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Refresh:
    postgres: object  # conftest.Server
    folder: Path
    production: str = ""
    staging: str = field(default_factory=lambda: f"st_{uuid.uuid4().hex[:8]}")

    def setup(
        self, sql: str, rules: str, *, migrations: dict[str, str] | None = None, extra: str = ""
    ) -> None:
        """Production from `sql`, the rule file `rules` (its tables: part), migrations (file name -> SQL,
        configured when given, even empty), and deid.yaml."""
        self.production = self.postgres.create_database("deid_prod")
        self.sql(self.production, sql)
        self.write_rules(rules)
        lines = [
            "databases:",
            f"  {DATABASE}:",
            "    production: prod",
            "    staging_server: stg",
            f"    staging_name: {self.staging}",
            "    salt_secret: salt",
            "    retention: 2",
            f"    rules: {self.folder / 'rules' / 'shop.yaml'}",
        ]
        if migrations is not None:
            folder = self.folder / "migrations"
            folder.mkdir(exist_ok=True)
            for name, text in migrations.items():
                (folder / name).write_text(text)
            lines.append(f"    migrations: {{sql: {folder}}}")
        (self.folder / "deid.yaml").write_text("\n".join(lines) + "\n" + extra)

    def write_rules(self, tables: str) -> Path:
        path = self.folder / "rules" / "shop.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"version: 1\ndatabase: {DATABASE}\ntables:\n{tables}")
        return path

    @property
    def env(self) -> dict[str, str]:
        return {
            "DEID_CONFIG": str(self.folder / "deid.yaml"),
            "DEID_CONN_PROD": self.postgres.url(self.production),
            "DEID_CONN_STG": self.postgres.admin_url,
            "DEID_SECRET_SALT": SALT,
            "DEID_RECORDS_DIR": str(self.folder / "records"),
        }

    def cli(self, *args: str) -> Result:
        """`deid ARGS` in this process, with this refresh's settings in the environment."""
        out, err = io.StringIO(), io.StringIO()
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return Result(code, out.getvalue(), err.getvalue())

    def run(self, day: str, *extra: str) -> Result:
        return self.cli("run", DATABASE, "--date", day, *extra)

    def start(self, *args: str) -> subprocess.Popen:
        """`deid ARGS` as a child process (stdout and stderr piped, as text)."""
        return subprocess.Popen(
            [sys.executable, "-m", "deid.cli", *args],
            env={**os.environ, **self.env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # --- looking at the databases --------------------------------------------------------------------

    def sql(self, database: str, statement: str) -> None:
        engine = sa.create_engine(self.postgres.url(database), poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as c:
                c.exec_driver_sql(statement)
        finally:
            engine.dispose()

    def rows(self, database: str, query: str) -> list[tuple]:
        engine = sa.create_engine(self.postgres.url(database), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as c:
                return [tuple(r) for r in c.exec_driver_sql(query)]
        finally:
            engine.dispose()

    def copies(self) -> dict[str, object]:
        with admin(self.postgres.admin_url) as c:
            return {x.name: x for x in copies_on(c, self.staging)}

    def state(self, database: str) -> CopyState | None:
        with admin(self.postgres.admin_url) as c:
            return parse_state(read_metadata(c, database))

    def work(self, day: str) -> str:
        return f"{self.staging}__work_{day.replace('-', '')}"

    def close(self) -> None:
        with admin(self.postgres.admin_url) as c:
            for name in self.copies():
                drop_database(c, name)
        if self.production:
            self.postgres.drop_database(self.production)
