"""Airflow in this checkout, for the demo and `./dev airflow`: its home is `airflow_home/` (its metadata in
one file, no example DAGs), its DAGs and plugins are this checkout's `dags/` and `plugins/`, and the names in
deid.yaml resolve to the demo's server (the default engine's embedded one) through Airflow's environment
spellings (AIRFLOW_CONN_<NAME>, AIRFLOW_VAR_<NAME>), which the `deid` CLI reads too.

Airflow is run as a command, never imported: deid itself does not depend on Airflow at import time.

`python -m deid.demo.local_airflow` (what `./dev airflow` runs) starts `airflow standalone` on 127.0.0.1 with
few processes, and stops all of it on Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from deid.demo.engines import DemoServer

ROOT = Path(__file__).resolve().parents[2]
# $DEID_DEMO_AIRFLOW_HOME moves it (the demo's test runs it in a folder of its own)
HOME = Path(os.environ.get("DEID_DEMO_AIRFLOW_HOME") or ROOT / "airflow_home")
AIRFLOW = Path(sys.executable).with_name("airflow")  # the venv's, beside its python
# A demo salt, labelled as one. Real deployments keep theirs in an Airflow variable or secrets backend.
DEMO_SALT = "demo-salt-not-a-secret"
STOP_GRACE = 10  # seconds between SIGTERM and SIGKILL: `airflow standalone` does not always exit on SIGTERM


def environment(
    server: DemoServer, database: str = "learners", production: str | None = None, config: Path | None = None
) -> dict[str, str]:
    """Variables that point Airflow (and the CLI) at this checkout, at `config` (default: the checkout's
    deid.yaml) and at `server`'s demo databases; the production database of the config's `database` is
    `production` on the server (default: the same name)."""
    from deid.config import env_name, load_config

    config = config or ROOT / "deid.yaml"
    db = load_config(config).database(database)
    return {
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
        "DEID_CONFIG": str(config),
        f"AIRFLOW_CONN_{env_name(db.production)}": server.url(production or database),
        f"AIRFLOW_CONN_{env_name(db.staging_server)}": server.url(),
        f"AIRFLOW_VAR_{env_name(db.salt_secret)}": DEMO_SALT,
    }


def airflow(*args: str, env: Mapping[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(AIRFLOW), *args], env={**os.environ, **env}, **kwargs)


def dags_test(dag_id: str, day: dt.date) -> list[str]:
    """The `airflow dags test` command that runs `dag_id` now, building the copy of `day`.

    The date goes in the DAG's `date` param, not as the run's logical date: `airflow dags test <dag> <date>`
    starts the run at that date (DagRun.start_date = its logical date, apache/airflow#66127), so the UI showed
    a demo run of a past date as lasting days. Run without one, its logical date and start are now, and its
    duration is the run's wall time."""
    return [str(AIRFLOW), "dags", "test", dag_id, "--conf", json.dumps({"date": day.isoformat()})]


def migrate_metadata(env: Mapping[str, str]) -> None:
    """Create or upgrade Airflow's metadata database, a file in HOME (a few seconds when it is current)."""
    HOME.mkdir(exist_ok=True)
    log = HOME / "db-migrate.log"
    with log.open("w") as out:
        result = airflow("db", "migrate", env=env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f"`airflow db migrate` failed (exit {result.returncode}); see {log}")


# --- ./dev airflow -----------------------------------------------------------------------------------------


def standalone_environment(port: int) -> dict[str, str]:
    """`airflow standalone`, small: on 127.0.0.1 only, one API worker, two task slots, one DAG parser.

    Logging in is off (every visitor is admin): the UI listens on 127.0.0.1 only, for the person at this
    machine. Without these settings standalone starts dozens of processes (about 5 GB).
    """
    return {
        # standalone starts `airflow scheduler`, `airflow api-server`, ... from PATH
        "PATH": f"{AIRFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",  # tasks report here
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }


def stop(process: subprocess.Popen) -> None:
    """End `process` and everything it started (its own process group): SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if process.poll() is not None and not _group_alive(process.pid):
                return
            time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    from deid.demo.__main__ import in_one_line

    return in_one_line("airflow", _standalone, argv)


def _standalone(argv: list[str] | None) -> int:
    from deid.backends import DEFAULT_ENGINE
    from deid.demo.__main__ import DEFAULT_DATA, cli_settings, ensure_seeded, leave_settings
    from deid.demo.engines import demo_support

    parser = argparse.ArgumentParser(prog="./dev airflow", description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="port of the Airflow UI (default 8080)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="embedded server's data folder")
    args = parser.parse_args(argv)

    server = demo_support(DEFAULT_ENGINE).start_embedded(Path(args.data))
    ensure_seeded(server, learners=2000)
    names = environment(server)
    leave_settings(ROOT / "deid.yaml", cli_settings(names))  # the port may have moved: the CLI follows
    env = {**names, **standalone_environment(args.port)}
    HOME.mkdir(exist_ok=True)
    print(
        f"airflow standalone on http://127.0.0.1:{args.port} (home {HOME.relative_to(ROOT)}/, "
        f"{server.description}). Ctrl-C stops it.\n"
        "Trigger staging_refresh__learners there (the play button, with params if you like); it starts "
        "paused,\nso tick 'Unpause staging_refresh__learners on trigger' in the form.",
        flush=True,
    )
    # A session of its own, so that Ctrl-C reaches only this process, which then ends the whole group.
    process = subprocess.Popen(
        [str(AIRFLOW), "standalone"], env={**os.environ, **env}, start_new_session=True
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`&`)
    try:
        return process.wait()
    except KeyboardInterrupt:
        print("\nstopping Airflow ...", flush=True)
        return 0
    finally:
        stop(process)


if __name__ == "__main__":
    sys.exit(main())
