"""`./dev demo`: start the default engine's embedded server, seed the 'learners' production database once,
then run the nightly job on it under real Airflow: lint the rules against the live schema, run the DAG
staging_refresh__learners with `airflow dags test` (snapshot, scrub, rebase, migrate, validate, publish
`learners_staging`), print the run's summary, and show what is published (previous runs' copies are kept for
rollback). Airflow's home is `airflow_home/` in the checkout (see deid.demo.local_airflow).

`--engine E --server URL` seeds the learners database of another engine's server (the engine's schema, the
same rows for the same seed) and, where deid cannot yet run the nightly job on that engine, stops after
checking the engine's rule file against it (`deid lint`), saying what is missing and what to
run next.

Either way the demo leaves what the CLI needs in deid.env beside the deid.yaml it ran with (deid.envfile:
the server's connections and the demo's salt, mode 0600), so that `.venv/bin/deid status learners` and the
other commands work as they are, with nothing exported. The embedded server keeps its port (DEMO_PORT of
the engine's demo package) from one start to the next, so the file stays right."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from deid.backends import DEFAULT_ENGINE, Backend, backend_for, engine_names
from deid.db import backend_of, normalise_url
from deid.demo.engines import DemoServer, ServerAt, demo_support

ROOT = Path(__file__).resolve().parents[2]
DEMO_DATABASE = "learners"
DEFAULT_DATA = ROOT / ".cache" / demo_support(DEFAULT_ENGINE).EMBEDDED_FOLDER
DAG_ID = f"staging_refresh__{DEMO_DATABASE}"
# `airflow dags test` logs "<time> [<level>] <message> [<logger>] key=value ..."; deid's loggers' lines are
# shown as it runs (the failure alert among them), everything goes to a file.
DEID_LINE = re.compile(r"^\S+\s+\[(?P<level>\w+)\s*\]\s+(?P<message>.*?)\s+\[deid[.\w]*\](\s+\w+=\S+)*$")


def ensure_seeded(
    server: DemoServer, learners: int, support: ModuleType | None = None, name: str = DEMO_DATABASE
) -> bool:
    """Create and seed the demo production database (`name` on the server) unless it is already there. True
    when it seeded."""
    from deid.demo.seed import seed

    support = support or demo_support(backend_of(server.url()).name)
    if not support.create_database(server.url(), name):
        return False
    seed(server.url(name), learners=learners)
    return True


def main(argv: list[str] | None = None) -> int:
    return in_one_line("demo", _demo, argv)


def in_one_line(name: str, entry, argv: list[str] | None) -> int:
    """Run an entry point of ./dev (the demo, ./dev airflow): what stops it on purpose (a missing tool such
    as useradd, a setting) is said in one line with its exit code, as the CLI does, never as a traceback."""
    from deid.errors import DeidError

    try:
        return entry(argv)
    except DeidError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return error.exit_code


def _demo(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="./dev demo", description=__doc__)
    parser.add_argument(
        "--learners", type=int, default=2000, help="size of the seeded database (first run only)"
    )
    parser.add_argument(
        "--engine",
        choices=engine_names(),
        help=f"the engine of the demo database (default: --server's, else {DEFAULT_ENGINE})",
    )
    parser.add_argument(
        "--server",
        help="admin URL of the server to hold the demo databases (default: the engine's embedded server, "
        "where it has one)",
    )
    parser.add_argument(
        "--database",
        default=DEMO_DATABASE,
        help=f"name of the production database on the server (default {DEMO_DATABASE}; deid.yaml and the "
        f"rule file still call it {DEMO_DATABASE})",
    )
    parser.add_argument(
        "--data", help=f"embedded server's data folder (default: {_shown(str(DEFAULT_DATA))})"
    )
    parser.add_argument("--date", help="logical date of the run, YYYY-MM-DD (default: today, UTC)")
    args = parser.parse_args(argv)
    try:
        day = dt.date.fromisoformat(args.date) if args.date else dt.datetime.now(dt.UTC).date()
    except ValueError:
        parser.error(f"--date {args.date!r} is not a date: use YYYY-MM-DD")

    started = time.monotonic()
    backend, server = _server(parser, args)
    support = demo_support(backend.name)
    seeded = ensure_seeded(server, args.learners, support, args.database)
    print(
        f"demo: {server.description}; production database '{args.database}' "
        f"{'seeded' if seeded else 'already seeded'} ({time.monotonic() - started:.1f}s)"
    )
    config = demo_config(backend, support, args.database)
    missing = missing_for_the_job(backend, config) + rules_the_scrub_refuses(
        backend, server.url(args.database), support
    )
    if missing:
        return check_only(server, args.database, backend, support, missing, started)
    again = [*(["--server", _without_password(args.server)] if args.server else []),
             *(["--database", args.database] if args.database != DEMO_DATABASE else [])]  # fmt: skip
    return run_job(server, args.database, support, day, started, config, again)


def demo_config(backend: Backend, support: ModuleType, production: str) -> Path:
    """The deid.yaml the demo runs the job with: the checkout's, whose learners entry is on the default
    engine; for another engine, the one its demo package writes (`config_text`), put in
    .cache/demo-<engine>/<production>/deid.yaml (its records beside it) and left there for the deid
    commands the demo suggests."""
    from deid.config import load_config

    checkout = ROOT / "deid.yaml"
    configured = load_config(checkout).database(DEMO_DATABASE).engine
    if backend_for(configured).name == backend.name or not hasattr(support, "config_text"):
        return checkout
    folder = ROOT / ".cache" / f"demo-{backend.name}" / production
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "deid.yaml"
    path.write_text(support.config_text(production=production, rules=ROOT / support.RULES))
    return path


def _server(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Backend, DemoServer]:
    """The demo's engine and server, from --engine and --server (the server's URL says its engine)."""
    from deid.errors import ConfigError

    if args.server:
        try:
            backend = backend_of(args.server)
        except ConfigError as error:
            parser.error(f"--server: {error}")
        if args.engine and backend_for(args.engine).name != backend.name:
            parser.error(f"--server is a {backend.name} URL, --engine says {args.engine}: drop one")
        return backend, ServerAt(normalise_url(args.server).render_as_string(hide_password=False))
    backend = backend_for(args.engine or DEFAULT_ENGINE)
    support = demo_support(backend.name)
    if not hasattr(support, "start_embedded"):
        parser.error(f"--server is needed: deid has no embedded {backend.name} server (e.g. --server URL)")
    return backend, support.start_embedded(Path(args.data or ROOT / ".cache" / support.EMBEDDED_FOLDER))


def rules_the_scrub_refuses(backend: Backend, production: str, support: ModuleType) -> list[str]:
    """What the engine's scrub would refuse in the demo's rules for it (Backend.scrub_refusals); nothing for
    an engine whose scrub refuses nothing, without reading the database."""
    if type(backend).scrub_refusals is Backend.scrub_refusals:
        return []
    import sqlalchemy as sa

    from deid.db import connect_readonly
    from deid.plan import plan_for
    from deid.rules.load import load_rules

    engine = connect_readonly(production, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            schema = backend.introspect(c, DEMO_DATABASE)
    finally:
        engine.dispose()
    # rules waiting for staging's migrations are set aside, as the night sets them aside
    plan, _ = plan_for(load_rules(ROOT / support.RULES), schema, has_migrations=True)
    return [
        f"rules its scrub can run ({support.RULES}: {refused})"
        for refused in backend.scrub_refusals(schema, plan)
    ]


def missing_for_the_job(backend: Backend, config: Path = ROOT / "deid.yaml") -> list[str]:
    """What the nightly job on the engine needs and deid lacks yet; empty when the job can run."""
    from deid.config import load_config

    missing = []
    if not backend.cloners:
        missing.append(f"the {backend.name} backend's clone (snapshot)")
    if type(backend).prepare_scrub is Backend.prepare_scrub:
        missing.append(f"the {backend.name} backend's scrub")
    try:
        backend.copy_store()
    except NotImplementedError:
        missing.append(f"the {backend.name} backend's copies (publish, rollback)")
    configured = load_config(config).database(DEMO_DATABASE).engine
    if backend_for(configured).name != backend.name:
        missing.append(f"deid.yaml's {DEMO_DATABASE} on {backend.name} (it names {configured})")
    return missing


def run_job(
    server: DemoServer,
    production: str,
    support: ModuleType,
    day: dt.date,
    started: float,
    config: Path = ROOT / "deid.yaml",
    again: list[str] | None = None,
) -> int:
    """Lint, then the DAG run of `day` under Airflow, its summary, and what is published; `config`: the
    deid.yaml to run with, `again`: the demo's arguments that name the server and database."""
    from deid.demo import local_airflow

    env = local_airflow.environment(server, DEMO_DATABASE, production, config)
    os.environ.update(env)
    # The CLI below reads Airflow's spellings too, but prefers its own: set those, so that a DEID_CONN_...
    # left in the shell cannot point it at another server than the DAG's.
    settings = cli_settings(env)
    os.environ.update(settings)
    left = leave_settings(config, settings)

    from deid.cli import main as deid

    lint = ["lint", "--database", DEMO_DATABASE, str(ROOT / support.RULES)]
    print(f"\n$ deid {' '.join(lint)}", flush=True)
    if code := deid(lint):
        return code

    local_airflow.migrate_metadata(env)
    code = run_dag(env, day)
    if code:
        return code
    from deid.cli import print_summary
    from deid.config import load_config
    from deid.records.store import read_records

    record = next(
        r for r in read_records(load_config().records_dir, DEMO_DATABASE) if r["logical_date"] == str(day)
    )
    print(f"\nrun summary (record {_shown(record['files']['record'])}):")
    print_summary(record)
    print(f"report (open it in a browser): {_shown(record['files']['report'])}")

    for command in (["status", DEMO_DATABASE], ["history", DEMO_DATABASE, "--limit", "5"]):
        print(f"\n$ deid {' '.join(command)}", flush=True)
        if code := deid(command):
            return code
    db = load_config().database(DEMO_DATABASE)
    deid_cli = (
        ".venv/bin/deid"
        if config == ROOT / "deid.yaml"
        else f"DEID_CONFIG={_shown(str(config))} .venv/bin/deid"
    )
    print(
        f"\ndemo: done in {time.monotonic() - started:.1f}s. The server keeps running; to look around:\n"
        f"  {deid_cli} status {DEMO_DATABASE}     # plan, history, run, rollback too: {left}\n"
        f"  {support.shell_command(server.url(db.staging_name))}\n"
        + (
            "  ./dev airflow                 # the Airflow UI on http://127.0.0.1:8080 with this DAG\n"
            if config == ROOT / "deid.yaml"
            else ""
        )
        + f"  ./dev demo {' '.join([*(again or []), '--date', str(day - dt.timedelta(days=1))])}  # another "
        "logical date: the published copy is kept for rollback"
    )
    return 0


def cli_settings(env: dict[str, str]) -> dict[str, str]:
    """The Airflow connections and variables in `env` in the CLI's spelling (DEID_CONN_, DEID_SECRET_)."""
    return {
        key.replace("AIRFLOW_CONN_", "DEID_CONN_").replace("AIRFLOW_VAR_", "DEID_SECRET_"): value
        for key, value in env.items()
        if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }


def leave_settings(config: Path, settings: dict[str, str]) -> str:
    """Write the demo's connections and salt (`settings`: DEID_CONN_<NAME>, DEID_SECRET_<NAME>) to deid.env
    beside `config`, where the CLI reads them (deid.envfile); what it did, to say. The salt is in the file,
    readable by its owner only, and never printed."""
    from deid import envfile

    path = envfile.beside(config.parent)
    if path is None:
        return "$DEID_ENV_FILE is empty, so no deid.env was written: export DEID_CONN_... yourself"
    envfile.write(
        path,
        settings,
        "Written by ./dev demo: the demo's server and salt, for the deid CLI with "
        f"{_shown(str(config))}\n(the environment wins over this file). Rewritten by every demo run.",
    )
    return f"{_shown(str(path))} holds the demo's connections and salt"


def check_only(
    server: DemoServer, name: str, backend: Backend, support: ModuleType, missing: list[str], started: float
) -> int:
    """Where the nightly job cannot run on the engine yet: check the engine's rule file against the seeded
    database with the CLI (`deid lint`), through a deid.yaml of the demo's own, and say what is
    missing and what to run next."""
    from deid.cli import main as deid
    from deid.demo.local_airflow import DEMO_SALT

    folder = ROOT / ".cache" / f"demo-{backend.name}"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "deid.yaml"
    rules = ROOT / support.RULES
    config.write_text(
        f"# Written by `python -m deid.demo --engine {backend.name}`: the demo database on "
        f"{server.description}, for `deid lint` and `deid plan` (the nightly job cannot run there yet).\n"
        "databases:\n"
        f"  {DEMO_DATABASE}:\n"
        f"    engine: {backend.name}\n"
        "    production: demo_learners          # DEID_CONN_DEMO_LEARNERS\n"
        "    staging_server: demo_staging       # DEID_CONN_DEMO_STAGING\n"
        "    salt_secret: demo_salt             # DEID_SECRET_DEMO_SALT\n"
        f"    rules: {rules}\n"
    )
    production = server.url(name)
    settings = {
        "DEID_CONN_DEMO_LEARNERS": production,
        "DEID_CONN_DEMO_STAGING": server.url(),
        "DEID_SECRET_DEMO_SALT": DEMO_SALT,
    }
    os.environ.update(settings)
    left = leave_settings(config, settings)
    lint = ["--config", str(config), "lint", "--database", DEMO_DATABASE, str(rules)]
    print(f"\n$ deid {' '.join(map(_shown, lint))}", flush=True)
    if code := deid(lint):
        return code
    print(
        f"\ndemo: stopped after seeding and checking the rules ({time.monotonic() - started:.1f}s): the "
        f"nightly job cannot run on {backend.name} yet (issue 14); it needs:\n"
        + "".join(f"  - {item}\n" for item in missing)
        + "To look around:\n"
        f"  {support.shell_command(production)}\n"
        f"  .venv/bin/deid --config {_shown(str(config))} plan {DEMO_DATABASE}   # the scrub's statements "
        f"({left})"
    )
    return 0


def _without_password(url: str) -> str:
    """A URL to show and to paste: its password left out (the shell's tools ask for it)."""
    import sqlalchemy as sa

    return sa.make_url(url).set(password=None).render_as_string(hide_password=False)


def _shown(path: str) -> str:
    """A path relative to the checkout when it is inside it: shorter to read."""
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


def run_dag(env: dict[str, str], day: dt.date) -> int:
    """`airflow dags test` of the demo DAG for `day`, showing deid's log lines; the full log goes to a file"""
    from deid.demo.local_airflow import HOME, dags_test

    log = HOME / "logs" / "demo-dags-test.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = dags_test(DAG_ID, day)  # the date as a param: the run's duration is its wall time
    print(f"\n$ airflow {shlex.join(command[1:])}   (full log: {_shown(str(log))})", flush=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            if shown := DEID_LINE.match(line.rstrip()):
                level = "" if shown["level"] == "info" else f"{shown['level']}: "
                print(f"  {level}{shown['message']}", flush=True)
        code = process.wait()
    if code:
        tail = log.read_text().splitlines()[-15:]
        print("\n".join(["  ...", *tail]), file=sys.stderr)
        print(f"demo: the DAG run failed (exit {code}); the full log is {log}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
