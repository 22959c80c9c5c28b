"""deid.env beside deid.yaml (deid.envfile): what the demo leaves for the CLI. The environment wins over
the file, a missing name's error names the file, the file must be its owner's only, and its mistakes are
named by file:line without the value."""

from __future__ import annotations

import os
import stat

import pytest

from deid import envfile
from deid.config import load_config
from deid.errors import ConfigError, MissingSetting

CONFIG = """databases:
  learners:
    production: learners_prod
    staging_server: staging
    salt_secret: deid_salt
"""
URL = "postgresql://postgres@127.0.0.1:54329/postgres"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A deid.yaml with a deid.env beside it, and none of their names in the environment."""
    monkeypatch.delenv("DEID_ENV_FILE")  # the suite's conftest turns the file off; these tests turn it on
    for name in (
        "DEID_CONN_STAGING",
        "AIRFLOW_CONN_STAGING",
        "DEID_SECRET_DEID_SALT",
        "AIRFLOW_VAR_DEID_SALT",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "deid.yaml").write_text(CONFIG)
    envfile.write(
        tmp_path / "deid.env",
        {"DEID_CONN_STAGING": URL, "DEID_SECRET_DEID_SALT": "salt-from-the-file"},
        "written by a test",
    )
    return tmp_path


def test_the_cli_finds_connections_and_secrets_in_deid_env_beside_deid_yaml(folder):
    settings = load_config(folder / "deid.yaml").settings()
    assert settings.connection("staging") == URL
    assert settings.secret("deid_salt") == "salt-from-the-file"
    assert stat.S_IMODE((folder / "deid.env").stat().st_mode) == 0o600
    assert (folder / "deid.env").read_text().startswith("# written by a test\nDEID_CONN_STAGING=")


def test_the_environment_wins_over_the_file(folder, monkeypatch):
    monkeypatch.setenv("DEID_SECRET_DEID_SALT", "salt-from-the-environment")
    assert load_config(folder / "deid.yaml").settings().secret("deid_salt") == "salt-from-the-environment"


def test_a_missing_name_lists_the_file_among_the_places_looked_at(folder, monkeypatch):
    (folder / "deid.env").unlink()
    with pytest.raises(MissingSetting) as caught:
        load_config(folder / "deid.yaml").settings().connection("staging")
    missing = f"DEID_CONN_STAGING in {folder / 'deid.env'} (no such file; `./dev demo` writes it"
    assert missing in str(caught.value)
    assert "environment variable AIRFLOW_CONN_STAGING" in str(caught.value)
    monkeypatch.setenv("DEID_ENV_FILE", "")  # no file at all: it is not listed
    with pytest.raises(MissingSetting) as caught:
        load_config(folder / "deid.yaml").settings().connection("staging")
    assert "deid.env" not in str(caught.value)


def test_deid_env_file_names_another_file(folder, monkeypatch, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "settings.env"
    envfile.write(other, {"DEID_CONN_STAGING": "postgresql://h/elsewhere"}, "another")
    monkeypatch.setenv("DEID_ENV_FILE", str(other))
    assert load_config(folder / "deid.yaml").settings().connection("staging") == "postgresql://h/elsewhere"


def test_a_file_others_can_read_is_refused_with_the_fix(folder):
    path = folder / "deid.env"
    path.chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        load_config(folder / "deid.yaml").settings().secret("deid_salt")
    assert str(caught.value) == (
        f"{path} may hold secrets and others can read it (mode 0644): chmod 600 {path}"
    )
    envfile.write(path, {"DEID_SECRET_DEID_SALT": "again"}, "rewritten")  # an older file's mode goes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("export DEID_CONN_STAGING=postgresql://h/db", "not a NAME=value line"),
        ("PGPASSWORD=hunter2", "PGPASSWORD is neither a connection (DEID_CONN_<NAME>) nor a secret"),
    ],
)
def test_a_line_deid_cannot_read_is_named_by_file_and_line_never_by_value(folder, line, message):
    path = folder / "deid.env"
    with open(path, "a") as out:
        out.write(f"\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(folder / "deid.yaml").settings().secret("deid_salt")
    text = str(caught.value)
    assert text.startswith(f"{path}:5: {message}") and "hunter2" not in text and "//h/db" not in text
    assert os.environ.get("DEID_SECRET_DEID_SALT") is None  # reading the file sets nothing in the process
