"""The CLI end to end on a seeded database: schema snapshot, lint against it, documented exit codes."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.cli import main
from deid.demo.seed import seed
from deid.schema import Schema

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo_env(pg_url, monkeypatch):
    seed(pg_url, learners=100)
    monkeypatch.setenv("DEID_CONN_LEARNERS_PROD", pg_url)
    monkeypatch.setenv("DEID_CONFIG", str(ROOT / "deid.yaml"))
    return pg_url


def _comparable(schema: Schema) -> Schema:
    """Structure only: row estimates depend on the seeded size, the version on the server."""
    tables = tuple(dataclasses.replace(t, row_estimate=0) for t in schema.tables)
    return dataclasses.replace(schema, tables=tables, server_version="")


def test_schema_snapshot_then_lint_against_it(demo_env, tmp_path, capsys):
    out = tmp_path / "learners.schema.json"
    assert main(["schema", "learners", "--out", str(out)]) == 0
    assert main(["lint", str(ROOT / "rules" / "learners.yaml"), "--schema", str(out)]) == 0
    assert "ok (13 tables, 102 columns covered" in capsys.readouterr().out
    committed = Schema.load(ROOT / "rules" / "learners.schema.json")
    assert _comparable(Schema.load(out)) == _comparable(committed), (
        "rules/learners.schema.json is stale: run `deid schema learners --out rules/learners.schema.json`"
    )


def test_lint_without_arguments_uses_the_committed_snapshot(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["lint"]) == 0
    assert "schema from rules/learners.schema.json" in capsys.readouterr().out


def test_unclassified_live_column_fails_with_paste_block(demo_env, capsys):
    engine = sa.create_engine(demo_env)
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE learners ADD COLUMN nickname text, ADD COLUMN mobile_phone text")
    engine.dispose()
    code = main(["lint", "--database", "learners", str(ROOT / "rules" / "learners.yaml")])
    err = capsys.readouterr().err
    assert code == 1
    assert "public.learners.nickname, public.learners.mobile_phone" in err
    assert "      mobile_phone: {class: phone}" in err
    assert "      nickname: {class: name}" in err  # a nickname is a name


def test_missing_connection_exits_3_and_lists_places(monkeypatch, capsys):
    monkeypatch.delenv("DEID_CONN_LEARNERS_PROD", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_LEARNERS_PROD", raising=False)
    assert main(["--config", str(ROOT / "deid.yaml"), "plan", "learners"]) == 3
    err = capsys.readouterr().err
    assert "DEID_CONN_LEARNERS_PROD" in err and "AIRFLOW_CONN_LEARNERS_PROD" in err
    assert "Traceback" not in err


def test_unreachable_database_exits_4_without_password(monkeypatch, capsys):
    monkeypatch.setenv("DEID_CONN_LEARNERS_PROD", "postgresql://deid:hunter2@127.0.0.1:1/learners")
    assert main(["--config", str(ROOT / "deid.yaml"), "schema", "learners"]) == 4
    err = capsys.readouterr().err
    assert "127.0.0.1:1" in err and "hunter2" not in err


def test_unknown_transformer_name_suggests(capsys):
    assert main(["transformers", "fake.emial"]) == 1
    assert "Did you mean 'fake.email'?" in capsys.readouterr().err


def test_usage_error_exits_2():
    result = subprocess.run([sys.executable, "-m", "deid.cli", "plan"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage: deid" in result.stderr


def test_the_installed_command_exits_with_the_commands_code_after_the_atexit_handlers(tmp_path):
    """`deid` (the console script) ends with gc.freeze() to skip the interpreter's last collections: the
    exit code is the command's, what it wrote is whole, and atexit handlers still run."""
    deid = Path(sys.executable).parent / "deid"
    out = tmp_path / "rules.schema.json"
    script = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        f"sys.argv = ['deid', 'rules-schema', '--out', {str(out)!r}]\n"
        f"runpy.run_path({str(deid)!r}, run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "atexit ran" in done.stdout
    assert json.loads(out.read_text())["title"]
    failed = subprocess.run([str(deid), "plan"], capture_output=True, text=True)
    assert failed.returncode == 2 and "usage: deid" in failed.stderr


def test_transformers_lists_and_shows(capsys):
    assert main(["transformers"]) == 0
    listing = capsys.readouterr().out
    for name in ("keep", "hash", "fake.email", "shift_date", "generalize_zip", "noise", "json", "redact"):
        assert f"\n{name} " in "\n" + listing
    assert main(["transformers", "shift_date"]) == 0
    shown = capsys.readouterr().out
    assert "applies to: date, timestamp" in shown and "days (an integer, default 30" in shown


# Connection settings in the forms users paste: a password as a URL query parameter, a libpq key=value
# string. Real servers; the secrets must reach no output and no file of the run.

QUERY_SECRET = "q-secret-in-url-41"
KEY_PASSPHRASE = "ssl-key-passphrase-42"
DSN_SECRET = "dsn-password-43"
SECRETS = (QUERY_SECRET, KEY_PASSPHRASE, DSN_SECRET)


def dsn_for(url: str, **changes: str) -> str:
    """The libpq key=value string of `url`, with a password (trust auth ignores it) and `changes`."""
    u = sa.make_url(url)
    params = {"host": u.host, "port": str(u.port or 5432), "dbname": u.database, "user": u.username}
    params.update(password=DSN_SECRET, application_name="deid cli test", **changes)
    return " ".join(f"{k}='{v}'" for k, v in params.items())


@pytest.fixture
def own_config(tmp_path, staging, monkeypatch):
    """deid.yaml for `learners` with this test's staging name, its records dir, and a salt."""
    config = tmp_path / "deid.yaml"
    config.write_text(
        "databases:\n  learners:\n    production: prod\n    staging_server: stg\n"
        f"    staging_name: {staging}\n    salt_secret: salt\n    rules: {ROOT / 'rules' / 'learners.yaml'}\n"
        f"    migrations: {{sql: {ROOT / 'migrations' / 'learners'}}}\n"
    )
    monkeypatch.setenv("DEID_CONFIG", str(config))
    monkeypatch.setenv("DEID_SECRET_SALT", "cli-test-salt-not-secret")
    monkeypatch.setenv("DEID_RECORDS_DIR", str(tmp_path / "records"))
    return tmp_path / "records"


def assert_no_secret(text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    leaked = [s for s in SECRETS if s.encode() in data]
    assert leaked == []


def run_files(records) -> dict[str, bytes]:
    """Every file the run saved, by suffix; all three must be there (a refused record proves nothing)."""
    files = {p.suffix: p.read_bytes() for p in records.rglob("*") if p.is_file()}
    assert set(files) == {".json", ".html", ".parquet"}, sorted(files)
    return files


def test_plan_and_schema_accept_a_libpq_dsn(pg_url, monkeypatch, capsys):
    seed(pg_url, learners=100)
    monkeypatch.setenv("DEID_CONN_LEARNERS_PROD", dsn_for(pg_url))
    config = str(ROOT / "deid.yaml")
    assert main(["--config", config, "plan", "learners", "--no-sql"]) == 0
    out, err = capsys.readouterr()
    assert "public.learners" in out and err == ""
    assert main(["--config", config, "schema", "learners"]) == 0
    out, err = capsys.readouterr()
    assert '"public"' in out and err == ""
    assert_no_secret(out + err)


def test_run_accepts_a_libpq_dsn_and_a_password_in_the_query(
    pg_url, postgres, own_config, monkeypatch, capsys
):
    seed(pg_url, learners=100)
    monkeypatch.setenv("DEID_CONN_PROD", dsn_for(pg_url, sslpassword=KEY_PASSPHRASE))
    monkeypatch.setenv("DEID_CONN_STG", f"{postgres.admin_url}?password={QUERY_SECRET}")
    assert main(["run", "learners", "--date", "2026-11-28", "--only", "snapshot"]) == 0
    out, err = capsys.readouterr()
    assert "snapshot: done" in out and "warning" not in out
    assert_no_secret(out + err)
    for data in run_files(own_config).values():
        assert_no_secret(data)


@pytest.mark.parametrize("form", ["url", "dsn"])
def test_a_refused_connection_names_the_server_and_no_secret(form, postgres, own_config, monkeypatch, capsys):
    """The server answers "no such database": exit 3, the message names the server, the record of the failed
    run is saved, and no secret is in the output, the record, the report or the metrics."""
    missing = sa.make_url(postgres.admin_url).set(database="deid_no_such_db").render_as_string(False)
    production = {
        "url": f"{missing}?password={QUERY_SECRET}&sslpassword={KEY_PASSPHRASE}&sslmode=prefer",
        "dsn": dsn_for(missing, sslpassword=KEY_PASSPHRASE),
    }[form]
    monkeypatch.setenv("DEID_CONN_PROD", production)
    monkeypatch.setenv("DEID_CONN_STG", f"{postgres.admin_url}?password={QUERY_SECRET}")
    assert main(["run", "learners", "--date", "2026-11-28"]) == 3
    out, err = capsys.readouterr()
    assert "Cannot connect to postgresql+psycopg://postgres" in err and "deid_no_such_db" in err
    masked = ("password=***", "sslpassword=***") if form == "url" else ("postgres:***@", "sslpassword=***")
    assert all(m in err for m in masked), err
    assert "record: " in out
    assert_no_secret(out + err)
    files = run_files(own_config)
    assert b"deid_no_such_db" in files[".json"]  # the error is recorded, without its secrets
    for data in files.values():
        assert_no_secret(data)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no such file or directory"),
        ("folder", "it is a folder"),
        ("database: learners\n", "not JSON (line 1, column 1)"),
        ('{"tables": 5}', "not a schema snapshot (KeyError)"),
        ("[]", "not a schema snapshot (TypeError)"),
        (b"\xff\xfe{}", "not a schema snapshot (UnicodeDecodeError)"),
    ],
    ids=["missing", "folder", "yaml", "no database", "a list", "utf-16"],
)
def test_a_schema_option_naming_no_snapshot_exits_2(tmp_path, capsys, content, reason):
    schema = tmp_path / "learners.schema.json"
    if content == "folder":
        schema.mkdir()
    elif content is not None:
        schema.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["lint", str(ROOT / "rules" / "learners.yaml"), "--schema", str(schema)]) == 2
    err = capsys.readouterr().err
    assert f"cannot read the schema snapshot {schema}: {reason}. Write one with `deid schema" in err
    assert "Traceback" not in err
