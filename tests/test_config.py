"""deid.yaml and the resolution of the names it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from deid.config import EnvSettings, load_config
from deid.errors import ConfigError, MissingSetting

BASE = "databases:\n  a:\n    production: p\n    staging_server: s\n    salt_secret: k\n"

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_declares_the_demo_database():
    config = load_config(ROOT / "deid.yaml")
    db = config.database("learners")
    assert (db.engine, db.production, db.staging_name, db.clone, db.retention) == (
        "postgresql",
        "learners_prod",
        "learners_staging",
        "template",
        3,
    )
    assert config.rules_path("learners") == ROOT / "rules" / "learners.yaml"


def test_unknown_database_suggests_the_configured_one():
    with pytest.raises(ConfigError, match="database 'learner' is not in .*Did you mean 'learners'"):
        load_config(ROOT / "deid.yaml").database("learner")


def test_missing_connection_lists_every_place_looked():
    with pytest.raises(MissingSetting) as caught:
        EnvSettings({}).connection("learners_prod")
    text = str(caught.value)
    assert "environment variable DEID_CONN_LEARNERS_PROD" in text
    assert "environment variable AIRFLOW_CONN_LEARNERS_PROD" in text
    assert caught.value.exit_code == 3


def test_settings_are_found_under_either_spelling():
    env = {"AIRFLOW_CONN_LEARNERS_PROD": "postgresql://h/db", "DEID_SECRET_DEID_SALT": "s3cret"}
    assert EnvSettings(env).connection("learners_prod") == "postgresql://h/db"
    assert EnvSettings(env).secret("deid_salt") == "s3cret"


def test_missing_secret_message_never_contains_other_secrets():
    env = {"DEID_SECRET_OTHER": "do-not-print"}
    with pytest.raises(MissingSetting) as caught:
        EnvSettings(env).secret("deid_salt")
    assert "do-not-print" not in str(caught.value)
    assert "AIRFLOW_VAR_DEID_SALT" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            BASE + "    clone: snapshot\n",
            "deid.yaml:6: unknown clone method 'snapshot'",
        ),
        (
            BASE + "    retention: -1\n",
            "deid.yaml:6: retention must be a whole number",
        ),
        (
            BASE + "    engin: postgresql\n",
            "deid.yaml:6: unknown key 'engin' in database a. Did you mean 'engine'?",
        ),
        (
            "databases:\n  a:\n    production: p\n    salt_secret: k\n",
            "deid.yaml:2: database a needs 'staging_server'",
        ),
        (
            BASE + "    engine: postgress\n",
            "Did you mean 'postgresql'?",
        ),
    ],
)
def test_bad_config_names_file_line_and_fix(tmp_path, body, message):
    path = tmp_path / "deid.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value).replace(str(tmp_path) + "/", "")


def test_a_run_context_shows_no_password_or_salt():
    """A context that reaches a log, a rendered Airflow field or a traceback shows neither secret."""
    import datetime as dt

    from deid.steps.context import RunContext

    env = EnvSettings(
        {
            "DEID_CONN_LEARNERS_PROD": "postgresql://deid:prod-pw-1@db.internal/learners",
            "DEID_CONN_STAGING": "postgresql://deid:stg-pw-2@stg.internal/postgres",
            "DEID_SECRET_DEID_SALT": "the-salt-3",
        }
    )
    ctx = RunContext.resolve(load_config(ROOT / "deid.yaml"), "learners", dt.date(2026, 11, 28), env)
    assert ctx.production_url.endswith("@db.internal/learners")  # resolved, yet not shown:
    shown = repr(ctx) + str(ctx)
    assert "learners" in shown and not any(s in shown for s in ("prod-pw-1", "stg-pw-2", "the-salt-3"))
