"""Bad inputs through the real CLI, each exit code checked against the README's table of exit codes.

The expected code of every case is read from the README (the row that mentions the case's phrase), so the
README and the code cannot drift apart. Each case also shows: no traceback, a message naming what to fix, no
secret in the output or the run record, and, where the run stops before its snapshot, no working copy made.
The runs go against a real PostgreSQL server (the staging server, and an empty database as production).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.cli import main

ROOT = Path(__file__).resolve().parent.parent
SALT = "exit-codes-salt-5f1c0a"
PASSWORD = "prod-password-9d2e7b"  # in the URLs given; the test server trusts, so it is never checked
SECRETS = (SALT, PASSWORD)


def readme_codes() -> list[tuple[str, int]]:
    """(meaning, code) for each row of the README's exit-code table."""
    text = (ROOT / "README.md").read_text()
    table = text.split("Exit codes", 1)[1].split("\n\n", 2)[1]
    rows = []
    for line in table.splitlines():
        found = re.match(r"\| `(\d+)`(?:/`\d+`)? \| (.*) \|$", line)
        if found:
            rows.append((found.group(2), int(found.group(1))))
    return rows


def readme_code(phrase: str) -> int:
    """The exit code of the one README row that mentions `phrase`."""
    codes = {code for meaning, code in readme_codes() if phrase in meaning}
    assert len(codes) == 1, f"the README's exit-code table has {len(codes)} rows mentioning {phrase!r}"
    return codes.pop()


def test_the_readme_table_lists_every_documented_code():
    assert [code for _, code in readme_codes()] == [0, 1, 2, 3, 4, 70, 130]


@dataclass
class Setup:
    """The files and settings of one case: deid.yaml for `learners`, a rule file, the environment."""

    folder: Path
    production_url: str
    staging_url: str
    staging: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def rules(self) -> Path:
        return self.folder / "rules" / "learners.yaml"

    @property
    def records(self) -> Path:
        return self.folder / "records"


@dataclass
class Case:
    name: str
    argv: list[str]
    readme: str  # the phrase of the README row that gives the expected code
    names: tuple[str, ...]  # what the message must name
    change: Callable[[Setup], None] = lambda setup: None
    failed_step: str | None = None  # a run record of the failure, failed at this step; None: no record
    misleads: str = "Traceback"  # what the message must not say


def rules_of(setup: Setup, text: str) -> None:
    setup.rules.write_text(text)


def bad_yaml(setup: Setup) -> None:
    rules_of(setup, setup.rules.read_text().replace("database: learners", "database: [learners"))


def other_database(setup: Setup) -> None:
    rules_of(setup, setup.rules.read_text().replace("database: learners", "database: learnrs"))


def production(url: str) -> Callable[[Setup], None]:
    def change(setup: Setup) -> None:
        setup.env["DEID_CONN_PROD"] = url

    return change


def staging_in_airflow_variable(url: str) -> Callable[[Setup], None]:
    def change(setup: Setup) -> None:
        del setup.env["DEID_CONN_STG"]
        setup.env["AIRFLOW_CONN_STG"] = url

    return change


def no_salt(setup: Setup) -> None:
    del setup.env["DEID_SECRET_SALT"]


def option(setup: Setup, url: str, extra: str) -> str:
    return sa.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False) + extra


DATE = "2026-11-27"
CASES = [
    Case(
        "rule file not valid YAML",
        ["run", "learners", "--date", DATE],
        "not valid YAML",
        ("learners.yaml:", "not valid YAML", "fix:"),
        bad_yaml,
        failed_step="preflight",
    ),
    Case(
        "rule file for another database",
        ["run", "learners", "--date", DATE],
        "`database:`",
        ("learners.yaml:", "'learnrs'", "'learners'", "deid.yaml:", "fix:", "database: learners"),
        other_database,
        failed_step="preflight",
    ),
    Case(
        "lint of a rule file for another database",
        ["lint", "RULES"],
        "`database:`",
        ("learners.yaml:", "'learnrs'", "'learners'", "deid.yaml:", "fix:"),
        other_database,
    ),
    Case(
        "production URL with a port that is not a number",
        ["run", "learners", "--date", DATE],
        "malformed",
        ("connection 'prod'", "DEID_CONN_PROD", "port", "fix:"),
        production(f"postgresql://deid:{PASSWORD}@127.0.0.1:notaport/learners"),
        failed_step="preflight",
    ),
    Case(
        "the same production URL, planned",
        ["plan", "learners"],
        "malformed",
        ("connection 'prod'", "DEID_CONN_PROD", "port", "fix:"),
        production(f"postgresql://deid:{PASSWORD}@127.0.0.1:notaport/learners"),
    ),
    Case(
        "production URL with a port out of range",
        ["run", "learners", "--date", DATE],
        "malformed",
        ("connection 'prod'", "DEID_CONN_PROD", "port 99999", "fix:"),
        production(f"postgresql://deid:{PASSWORD}@127.0.0.1:99999/learners"),
        failed_step="preflight",
    ),
    Case(
        "staging URL of an Airflow-style variable, malformed",
        ["run", "learners", "--date", DATE],
        "malformed",
        ("connection 'stg'", "AIRFLOW_CONN_STG", "fix:"),
        staging_in_airflow_variable(f"postgresql://deid:{PASSWORD}@127.0.0.1:5432/postgres?port=x"),
        failed_step="preflight",
    ),
    Case(
        "staging URL with an option the driver refuses",
        ["run", "learners", "--date", DATE],
        "an option the driver refuses",
        ('invalid connection option "no_such_option"', "Fix the connection's parameters"),
        lambda s: s.env.update(DEID_CONN_STG=option(s, s.staging_url, "?no_such_option=1")),
        failed_step="lock",
        misleads="Create that database",  # the lock's database is there: the connection's option is wrong
    ),
    Case(
        "staging URL with an option value the driver refuses",
        ["run", "learners", "--date", DATE],
        "an option the driver refuses",
        ("invalid sslmode value", "Fix the connection's parameters"),
        lambda s: s.env.update(DEID_CONN_STG=option(s, s.staging_url, "?sslmode=bogus")),
        failed_step="lock",
        misleads="Create that database",
    ),
    Case(
        "date that is not a date",
        ["run", "learners", "--date", "2026-13-01"],
        "`--date`",
        ("--date '2026-13-01'", "YYYY-MM-DD"),
    ),
    Case(
        "rollback to a date that is not a date",
        ["rollback", "learners", "--to", "27/11/2026"],
        "`--to`",
        ("--to '27/11/2026'", "YYYY-MM-DD"),
    ),  # fmt: skip
    Case("unknown option", ["run", "learners", "--dates", DATE], "unknown option", ("--dates",)),
    Case(
        "unknown database",
        ["run", "learnrs", "--date", DATE],
        "unknown database",
        ("'learnrs'", "Did you mean 'learners'?"),
    ),
    Case(
        "salt's secret unset",
        ["run", "learners", "--date", DATE],
        "secret that is missing",
        ("secret 'salt'", "DEID_SECRET_SALT", "AIRFLOW_VAR_SALT"),
        no_salt,
        failed_step="preflight",
    ),
]


@pytest.fixture
def setup(tmp_path, postgres, staging, pg_url) -> Setup:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "learners.yaml").write_text((ROOT / "rules" / "learners.yaml").read_text())
    (tmp_path / "deid.yaml").write_text(
        "databases:\n  learners:\n    production: prod\n    staging_server: stg\n"
        f"    staging_name: {staging}\n    salt_secret: salt\n    rules: rules/learners.yaml\n"
    )
    made = Setup(tmp_path, pg_url, postgres.admin_url, staging)
    made.env = {
        "DEID_CONFIG": str(tmp_path / "deid.yaml"),
        "DEID_CONN_PROD": option(made, pg_url, ""),
        "DEID_CONN_STG": postgres.admin_url,
        "DEID_SECRET_SALT": SALT,
        "DEID_RECORDS_DIR": str(tmp_path / "records"),
    }
    return made


def run_cli(setup: Setup, argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    for key in (
        "DEID_CONN_PROD",
        "DEID_CONN_STG",
        "AIRFLOW_CONN_PROD",
        "AIRFLOW_CONN_STG",
        "AIRFLOW_VAR_SALT",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in setup.env.items():
        monkeypatch.setenv(key, value)
    argv = [str(setup.rules) if a == "RULES" else a for a in argv]
    try:
        code = main(argv)
    except SystemExit as exited:  # argparse's own exit on wrong usage
        code = exited.code
    out, err = capsys.readouterr()
    return code, out + err


def copies_of(setup: Setup) -> list[str]:
    """The databases under the staging name (working copies, published, kept)."""
    engine = sa.create_engine(setup.staging_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            names = c.exec_driver_sql("SELECT datname FROM pg_database").scalars()
            return sorted(n for n in names if n.startswith(setup.staging))
    finally:
        engine.dispose()


def records_of(setup: Setup) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(setup.records.rglob("*.json"))]


def check_clean_of_secrets(setup: Setup, output: str) -> None:
    texts = [output] + [
        p.read_text() for p in setup.records.rglob("*") if p.is_file() and p.suffix != ".parquet"
    ]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


@pytest.mark.one_server
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_exits_with_the_readme_code(case: Case, setup: Setup, monkeypatch, capsys):
    case.change(setup)
    code, output = run_cli(setup, case.argv, monkeypatch, capsys)
    assert code == readme_code(case.readme), output
    assert "Traceback" not in output and case.misleads not in output
    for name in case.names:
        assert name in output, (name, output)
    check_clean_of_secrets(setup, output)
    assert copies_of(setup) == []  # nothing was copied: every case stops before the snapshot
    records = records_of(setup)
    if case.failed_step is None:
        assert records == []
    else:
        assert [(r["outcome"], r["failed_step"]) for r in records] == [("failed", case.failed_step)]
        assert "Traceback" not in records[0]["error"] and case.names[-1] in records[0]["error"]


@pytest.mark.one_server
def test_a_run_meeting_the_lock_of_another_process_exits_with_the_retry_code(
    setup: Setup, monkeypatch, capsys
):
    """Another process holds the staging name's run lock: the run does nothing, says who holds it, and
    exits with the README's code for "retry later"; its record names the lock as the failed step."""
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\nfrom deid.lock import run_lock\n"
            f"with run_lock({setup.staging_url!r}, {setup.staging!r}):\n"
            "    print('held', flush=True)\n    sys.stdin.read()\n"
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        code, output = run_cli(setup, ["run", "learners", "--date", DATE], monkeypatch, capsys)
    finally:
        holder.communicate("", timeout=60)
    assert code == readme_code("another run holding the lock") == 4
    assert f"another deid run for {setup.staging} is in progress" in output
    assert "Traceback" not in output
    check_clean_of_secrets(setup, output)
    assert copies_of(setup) == []
    assert [(r["outcome"], r["failed_step"]) for r in records_of(setup)] == [("failed", "lock")]


@pytest.mark.one_server
def test_the_installed_command_prints_no_traceback_for_a_malformed_url(setup: Setup):
    """The console script, as a user runs it: the malformed production URL is a configuration error, said
    in one message naming the connection and its variable, without a traceback or the password."""
    env = {**os.environ, **setup.env, "DEID_CONN_PROD": f"postgresql://deid:{PASSWORD}@127.0.0.1:notaport/x"}
    started = time.monotonic()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "deid"), "run", "learners", "--date", DATE],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == readme_code("malformed") == 3, output
    assert "Traceback" not in output and PASSWORD not in output
    assert "connection 'prod' (environment variable DEID_CONN_PROD)" in output
    assert copies_of(setup) == [] and len(records_of(setup)) == 1
    assert time.monotonic() - started < 120


@pytest.mark.one_server
def test_airflows_preflight_checks_the_rule_file_before_production(setup: Setup):
    """The DAG's first task (PreflightOperator calls production_plan): a rule file for another database
    fails it before production is dialled (here production is a port nobody listens on, which would be a
    transient error, retried, if it were reached first)."""
    import datetime as dt

    from deid.config import load_config
    from deid.errors import RuleProblems
    from deid.steps.context import RunContext
    from deid.steps.preflight import production_plan

    other_database(setup)
    config = load_config(setup.folder / "deid.yaml")
    ctx = RunContext(
        config=config,
        database=config.database("learners"),
        logical_date=dt.date(2026, 11, 27),
        production_url="postgresql://deid@127.0.0.1:1/learners",
        staging_server_url=setup.staging_url,
        salt=SALT,
    )
    with pytest.raises(RuleProblems, match="the rule file is for database 'learnrs'"):
        production_plan(ctx)
