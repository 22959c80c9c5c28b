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


def test_a_libpq_dsn_resolves_to_the_equivalent_url():
    """Users paste key=value strings from psql or pg_dump: read once, here, so every step sees a URL."""
    import sqlalchemy as sa

    env = {"DEID_CONN_LEARNERS_PROD": "host=db.internal port=6432 dbname=learners user=deid sslmode=require"}
    url = sa.make_url(EnvSettings(env).connection("learners_prod"))
    assert (url.host, url.port, url.database, url.username, dict(url.query)) == (
        "db.internal",
        6432,
        "learners",
        "deid",
        {"sslmode": "require"},
    )


def test_a_connection_that_is_neither_url_nor_dsn_is_named_and_not_shown():
    env = {"AIRFLOW_CONN_LEARNERS_PROD": "db.internal:5432 learners deid pw-not-shown-7"}
    with pytest.raises(ConfigError) as caught:
        EnvSettings(env).connection("learners_prod")
    text = str(caught.value)
    assert text.startswith(
        "connection 'learners_prod' (environment variable AIRFLOW_CONN_LEARNERS_PROD) is not a database URL"
    )
    assert "pw-not-shown-7" not in text and caught.value.exit_code == 3


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
            "deid.yaml:6: databases.a.retention must be a whole number ≥ 0",
        ),
        (
            BASE + "    engin: postgresql\n",
            "deid.yaml:6: unknown key 'engin' in databases.a. Did you mean 'engine'?",
        ),
        (
            "databases:\n  a:\n    production: p\n    salt_secret: k\n",
            "deid.yaml:2: databases.a needs 'staging_server' (the staging server's connection name",
        ),
        (
            BASE + "    engine: postgress\n",
            "Did you mean 'postgresql'?",
        ),
        (
            BASE + "    validation: {sample_rows: 0}\n",
            "deid.yaml:6: databases.a.validation.sample_rows must be a whole number ≥ 1",
        ),
        (BASE + "    validation:\n      sample_row: 5\n", "deid.yaml:7: unknown key 'sample_row'"),
        (
            BASE + "    validation: {pii_scan_rows: every}\n",
            "deid.yaml:6: databases.a.validation.pii_scan_rows must be a whole number ≥ 1, or all",
        ),
        (
            BASE + "    validation: {search_production: 1}\n",
            "deid.yaml:6: databases.a.validation.search_production must be true or false",
        ),
        (
            BASE + "record: {dir: r}\n",
            "deid.yaml:6: unknown key 'record' in deid.yaml. Did you mean 'records'?",
        ),
        (BASE + "records: {s3: {prefix: p}}\n", "deid.yaml:6: records.s3 needs 'bucket'"),
        (
            BASE + "records:\n  s3: {bucket: b, sse: none}\n",
            "deid.yaml:7: records.s3.sse must be one of AES256, aws:kms",
        ),
        (BASE + "records:\n  s3: {bucket: b, kms_key_id: k}\n", "kms_key_id needs sse: aws:kms"),
        (
            BASE + "records:\n  s3: {bucket: b, endpoint: e}\n",
            "unknown key 'endpoint' in records.s3. Did you mean 'endpoint_url'?",
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


def test_validation_and_records_settings_are_read(tmp_path, monkeypatch):
    path = tmp_path / "deid.yaml"
    path.write_text(
        BASE + "    validation: {sample_rows: 50, pii_scan_rows: all, pii_max_hits: 2}\n"
        "records:\n  dir: runs\n  s3: {bucket: b, prefix: p/, sse: 'aws:kms', kms_key_id: alias/deid}\n"
    )
    monkeypatch.delenv("DEID_RECORDS_DIR", raising=False)
    config = load_config(path)
    validation = config.database("a").validation
    assert (validation.sample_rows, validation.pii_scan_rows, validation.pii_max_hits) == (50, None, 2)
    assert validation.free_text_rows == 20_000  # the default stays where nothing is said
    assert config.records_dir == tmp_path / "runs"
    assert config.records.s3.key("a/x.json") == "p/a/x.json" and config.records.s3.kms_key_id == "alias/deid"
    monkeypatch.setenv("DEID_RECORDS_DIR", str(tmp_path / "elsewhere"))
    assert config.records_dir == tmp_path / "elsewhere"


HOSTILE = [
    (BASE + "    retention: &r 3\n    scrub_sessions: *r\n", "deid.yaml:6: anchor &r: YAML anchors"),
    (BASE + "    retention: !!int 3\n", "deid.yaml:6: explicit tag !!int is not allowed"),
    (BASE + "    <<: {retention: 3}\n", "deid.yaml:6: merge keys (<<) are not allowed"),
    ("databases: [a, b]\n", "deid.yaml:1: databases must be a mapping of database names"),
    (BASE + "    staging_roles: 5\n", "deid.yaml:6: databases.a.staging_roles must be a list of role names"),
    (
        BASE + "    staging_roles: [a, [b]]\n",
        "deid.yaml:6: databases.a.staging_roles must be a list of role names",
    ),
    (BASE + "    rules: [a.yaml]\n", "deid.yaml:6: databases.a.rules must be a path"),
    (BASE + "    staging_name: {a: 1}\n", "deid.yaml:6: databases.a.staging_name must be a name"),
    (BASE + "    schedule: [1]\n", "deid.yaml:6: databases.a.schedule must be a cron expression"),
    (BASE + "    description: [1]\n", "deid.yaml:6: databases.a.description must be text"),
    (
        BASE + "    migrations: {sql: [a]}\n",
        "deid.yaml:6: databases.a.migrations must be {sql: FOLDER} or {alembic: SCRIPT_LOCATION}",
    ),
    ("[1, 2]\n", "deid.yaml:1: deid.yaml is a mapping with databases (and optionally records)"),
]


@pytest.mark.parametrize(("body", "message"), HOSTILE, ids=[m.split(": ", 1)[1][:40] for _, m in HOSTILE])
def test_hostile_config_is_a_config_error_with_its_line(tmp_path, body, message):
    test_bad_config_names_file_line_and_fix(tmp_path, body, message)


def test_a_config_that_is_a_folder_or_not_utf8_is_a_config_error(tmp_path):
    folder = tmp_path / "deid.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="cannot read .*deid.yaml: it is a folder"):
        load_config(folder)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(BASE.encode() + b"    description: caf\xe9\n")
    with pytest.raises(ConfigError, match="latin.yaml:6: not UTF-8"):
        load_config(latin)


def test_an_unreadable_config_exits_3_naming_it(tmp_path, monkeypatch, capsys):
    from deid.cli import main
    from tests.test_yamlsrc import deny_reading

    path = tmp_path / "deid.yaml"
    path.write_text(BASE)
    deny_reading(monkeypatch, path)
    assert main(["--config", str(path), "history", "a"]) == 3
    err = capsys.readouterr().err
    assert f"cannot read {path}: permission denied" in err and "Traceback" not in err


def _two(tmp_path, a: str, b: str) -> Path:
    path = tmp_path / "deid.yaml"
    base = "    production: p\n    salt_secret: k\n"
    path.write_text(f"databases:\n  a:\n{base}{a}  b:\n{base}{b}")
    return path


def test_two_databases_publishing_under_one_staging_name_on_one_server_are_refused(tmp_path):
    path = _two(tmp_path, "    staging_server: s\n    staging_name: shared\n",
                "    staging_server: s\n    staging_name: shared\n")  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "deid.yaml:11:" in message  # b's staging_name
    assert (
        "databases.b" in message
        and "databases.a (line 2)" in message
        and "staging_name of its own" in message
    )


def test_a_default_staging_name_counts_and_another_server_is_another_copy(tmp_path):
    # b's default staging name is b_staging: a may not take it on the same server
    with pytest.raises(
        ConfigError, match=r"deid\.yaml:7: databases\.b publishes its staging copy as b_staging"
    ):
        load_config(
            _two(tmp_path, "    staging_server: s\n    staging_name: b_staging\n", "    staging_server: s\n")
        )
    config = load_config(_two(tmp_path, "    staging_server: s\n    staging_name: same\n",
                              "    staging_server: t\n    staging_name: same\n"))  # fmt: skip
    assert {(d.staging_server, d.staging_name) for d in config.databases.values()} == {
        ("s", "same"),
        ("t", "same"),
    }
