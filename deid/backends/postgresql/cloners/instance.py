"""Run a copied data directory as a server of its own: started by deid on deid's settings, stopped cleanly.

A copy is made from a standby or a backup of production, so its configuration files are production's: its
port, its archive_command (which would push the copy's WAL into production's archive), its
primary_conninfo, its synchronous_standby_names (every commit would wait for a standby that never comes),
even a data_directory or hba_file pointing at production's files. deid therefore starts a copy with its own
settings on the command line, where they outrank every configuration file (PostgreSQL's order: defaults <
files < command line), and writes the settings files can hold at the end of the copy's postgresql.auto.conf
(read after postgresql.conf), so a copy someone starts by hand is no more reachable.

While it is built, a copy is reachable only by deid, as pg_upgrade keeps the servers it runs: no TCP
(listen_addresses = ''), its Unix socket inside the copy's own data directory (mode 0700, owned by the
server's user: only that user and root can reach it), and deid's own pg_hba.conf, `local all all trust`,
which is safe only behind that socket. standby.signal and recovery.signal are never copied, so the copy
opens as a primary of its own, on a timeline nothing else writes to.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from deid.backends.postgresql.cloners.cluster import Binaries, controldata
from deid.errors import ConfigError, TransientError

HBA, IDENT = "deid_hba.conf", "deid_ident.conf"
PUBLISHED_HBA = "deid_hba_published.conf"
LOG = "deid_server.log"
BEGIN = "# deid: begin (rewritten each time deid starts this copy)"
END = "# deid: end"
SOCKET_PATH_MAX = 107  # sun_path, less its terminating zero

# Settings a copy always runs with, whatever production's files say (module doc)
ALWAYS = {
    "archive_mode": "off",
    "archive_command": "",
    "restore_command": "",
    "primary_conninfo": "",
    "primary_slot_name": "",
    "synchronous_standby_names": "",
    "logging_collector": "off",  # its log is deid's LOG file, not production's log_directory
}
# Settings only the command line may give (PostgreSQL refuses them in postgresql.auto.conf)
COMMAND_LINE_ONLY = ("data_directory", "hba_file", "ident_file", "external_pid_file")


@dataclass(frozen=True)
class Serving:
    """Where a copy listens: `port` on `listen_addresses` ('' : no TCP), and its socket folder."""

    port: int
    listen_addresses: str = ""
    socket_dir: Path | None = None  # None: the data directory itself
    ssl: bool | None = False  # None: as the copy's own files say (a published copy)
    hba_file: str = HBA  # in the data directory


def published(port: int, listen_addresses: str) -> Serving:
    """How a published copy serves: staging users over TCP with the source's pg_hba.conf rules, deid
    through the socket (see prepare_published)."""
    return Serving(port, listen_addresses, ssl=None, hba_file=PUBLISHED_HBA)


@dataclass(frozen=True)
class Running:
    """A copy deid started: connect through its socket as `user`; stop() it when done."""

    datadir: Path
    binaries: Binaries
    serving: Serving
    user: str

    @property
    def socket_dir(self) -> Path:
        return self.serving.socket_dir or self.datadir

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket_dir}&port={self.serving.port}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.socket_dir), port=self.serving.port, user=self.user, dbname=database
        )

    def stop(self, timeout: float = 60) -> None:
        """Stop cleanly (fast: sessions are ended, a shutdown checkpoint written); the copy is then
        "shut down" in pg_control, as a copy of it would need."""
        done = _pg_ctl(self.binaries, self.datadir, ["-m", "fast", "-w", "-t", str(int(timeout)), "stop"])
        if done.returncode != 0 and "Is server running?" not in done.stderr:
            raise TransientError(f"the copy in {self.datadir} did not stop: {done.stderr.strip()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings(datadir: Path, serving: Serving) -> dict[str, str]:
    """Every setting deid gives the copy in `datadir` when it serves as `serving`."""
    socket_dir = serving.socket_dir or datadir
    if len(str(socket_dir / f".s.PGSQL.{serving.port}")) > SOCKET_PATH_MAX:
        raise ConfigError(
            f"{socket_dir} is too long a path for the copy's Unix socket (at most {SOCKET_PATH_MAX} bytes "
            "with its name): choose a shorter folder for the copies"
        )
    ssl = {} if serving.ssl is None else {"ssl": "on" if serving.ssl else "off"}
    return {
        "port": str(serving.port),
        "listen_addresses": serving.listen_addresses,
        "unix_socket_directories": str(socket_dir),
        "unix_socket_permissions": "0700",  # deid's way in, published or not: staging users come by TCP
        **ssl,
        "cluster_name": datadir.name,
        **ALWAYS,
        "data_directory": str(datadir),
        "hba_file": str(datadir / serving.hba_file),
        "ident_file": str(datadir / IDENT),
        "external_pid_file": "",
    }


def prepare(datadir: Path) -> None:
    """Make a fresh copy startable as deid's: its own pg_hba.conf and pg_ident.conf (module doc), and a
    postgresql.conf when production kept its configuration outside the data directory (Debian does)."""
    owner = datadir.stat()
    files = {
        HBA: "# deid: a copy being built is reached only through its own socket (see instance.py)\n"
        "local all all trust\n",
        IDENT: "# deid: no user name maps\n",
    }
    if not (datadir / "postgresql.conf").exists():
        files["postgresql.conf"] = "# deid: the source kept its configuration outside the data directory\n"
    for name, text in files.items():
        _write(datadir / name, text, owner)


def prepare_published(datadir: Path) -> None:
    """The pg_hba.conf of a published copy: deid's socket first (trusted, reachable only by the server's
    user and root), then the source's own rules for everyone else (the copy's pg_hba.conf, as copied)."""
    own = datadir / "pg_hba.conf"
    rules = own.read_text() if own.exists() else ""
    head = "# deid: the copy's own socket (mode 0700) first, then the source's rules\nlocal all all trust\n"
    _write(datadir / PUBLISHED_HBA, head + rules, datadir.stat())


def start(
    datadir: Path, binaries: Binaries, serving: Serving, *, user: str = "postgres", timeout: float = 60
) -> Running:
    """Start the copy in `datadir` on deid's settings and wait, at most `timeout` seconds, until it accepts
    a connection as a primary; TransientError with the log's last FATAL lines when it does not."""
    values = settings(datadir, serving)
    _write_auto_conf(datadir, {k: v for k, v in values.items() if k not in COMMAND_LINE_ONLY})
    options = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in values.items())
    log = datadir / LOG
    done = _pg_ctl(binaries, datadir, ["-l", str(log), "-o", options, "-w", "-t", str(int(timeout)), "start"])
    running = Running(datadir, binaries, serving, user)
    if done.returncode != 0:
        running.stop()  # a server still recovering when pg_ctl gave up waiting
        raise TransientError(
            f"the copy in {datadir} did not start within {timeout:.0f} s: {_failure(log, done.stderr)}"
        )
    _wait_until_primary(running, time.monotonic() + timeout)
    return running


def _wait_until_primary(running: Running, deadline: float) -> None:
    while True:
        try:
            with running.connect() as c:
                if c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False:
                    return
                problem = "it is still in recovery"
        except psycopg.OperationalError as error:
            problem = str(error).strip().splitlines()[0]
        if time.monotonic() > deadline:
            running.stop()
            raise TransientError(f"the copy in {running.datadir} started but {problem}")
        time.sleep(0.1)


def state(datadir: Path, binaries: Binaries) -> str:
    return controldata(datadir, binaries).get("Database cluster state", "unknown")


def _failure(log: Path, stderr: str) -> str:
    """The log's last FATAL/PANIC lines and their hints (startup messages: file names and WAL positions,
    never row values), and where the whole log is."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    kept = [line for line in lines if any(w in line for w in ("FATAL:", "PANIC:", "HINT:"))][-4:]
    return "; ".join(kept or [stderr.strip() or "no message"]) + f" (log: {log})"


def _write_auto_conf(datadir: Path, values: dict[str, str]) -> None:
    """postgresql.auto.conf with deid's block at its end (replacing the one of an earlier start)."""
    path = datadir / "postgresql.auto.conf"
    kept = []
    if path.exists():
        lines = path.read_text().splitlines()
        inside = False
        for line in lines:
            if line in (BEGIN, END):
                inside = line == BEGIN
            elif not inside:
                kept.append(line)
    block = [BEGIN, *(f"{k} = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in values.items()), END]
    _write(path, "\n".join(kept + block) + "\n", datadir.stat())


def _write(path: Path, text: str, owner: os.stat_result) -> None:
    """Write `path` in the copy as a new file (never through a link: see reflink.copy_tree), owned by the
    server's user."""
    scratch = path.with_name(path.name + ".deid-new")
    scratch.write_text(text)
    if os.geteuid() == 0:
        os.chown(scratch, owner.st_uid, owner.st_gid)
    scratch.chmod(0o600)
    scratch.replace(path)


def _pg_ctl(binaries: Binaries, datadir: Path, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binaries("pg_ctl"), "-D", str(datadir), *args], capture_output=True, text=True, **_as_owner(datadir)
    )


def _as_owner(datadir: Path) -> dict:
    """As root, run the server as the owner of its data directory (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return {}
    info = datadir.stat()
    if info.st_uid == 0:
        raise ConfigError(f"{datadir} belongs to root, and PostgreSQL does not run as root; chown it")
    return {"user": info.st_uid, "group": info.st_gid, "extra_groups": []}
