"""Where the MySQL/MariaDB tests find their server, and a database of their own on it.

DEID_TEST_MYSQL_URL is an admin URL such as `mysql+pymysql://root@127.0.0.1:3306/test` (what .ci/run sets,
for CI's MariaDB 10.11). Unset, every test that needs the server is skipped, saying so. Each test gets a
database of its own (`deid_test_<hex>`), dropped afterwards, so the tests may run in parallel.

A test module uses the fixtures by importing them:

    from tests.mysql_server import MysqlServer, mysql_engine, mysql_server, mysql_url  # noqa: F401
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

VARIABLE = "DEID_TEST_MYSQL_URL"
_quote = mysql.dialect().identifier_preparer.quote_identifier


@dataclass
class MysqlServer:
    admin_url: str
    engine = "mysql"

    @functools.cached_property
    def is_mariadb(self) -> bool:
        engine = sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool)
        with engine.connect() as c:
            return "mariadb" in c.exec_driver_sql("SELECT VERSION()").scalar_one().lower()

    def url(self, database: str) -> str:
        return sa.make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def create_database(self, prefix: str = "deid_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self._admin(f"CREATE DATABASE {_quote(name)} CHARACTER SET utf8mb4")
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {_quote(name)}")

    def _admin(self, statement: str) -> None:
        engine = sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool)
        with engine.begin() as c:
            c.exec_driver_sql(statement)


def configured_url() -> str | None:
    url = os.environ.get(VARIABLE, "").strip()
    if not url:
        return None
    parsed = sa.make_url(url)
    if "+" not in parsed.drivername:  # mysql:// alone would ask SQLAlchemy for mysqlclient
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    return parsed.render_as_string(hide_password=False)


def run(engine: sa.Engine, statements: list[str]) -> None:
    """Run statements one by one (a trigger's BEGIN ... END holds semicolons, so no script splitting)."""
    with engine.begin() as c:
        for statement in statements:
            c.exec_driver_sql(statement)


@pytest.fixture(scope="session")
def mysql_server() -> MysqlServer:
    url = configured_url()
    if url is None:
        pytest.skip(
            f"{VARIABLE} is not set (e.g. mysql+pymysql://root@127.0.0.1:3306/test): no MySQL/MariaDB"
        )
    return MysqlServer(url)


@pytest.fixture
def mysql_url(mysql_server: MysqlServer) -> Iterator[str]:
    """A fresh, empty database on the server; its SQLAlchemy URL. Dropped afterwards."""
    name = mysql_server.create_database()
    try:
        yield mysql_server.url(name)
    finally:
        mysql_server.drop_database(name)


@pytest.fixture
def mysql_engine(mysql_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(mysql_url)
    yield engine
    engine.dispose()
