"""`clone: reflink`: each night's working copy is a copied data directory run as a server of its own, plugged
into the seam for copies that are servers (deid.steps.servers.ServerPlace) as a ServerSource and a Pointer.

- **Copies** are folders under `copies:`, `<staging name>__<YYYYMMDD>` (`-2`, `-3`... when a copy of that
  date is kept already), each with a `deid_copy.json` naming its database, logical date and run: a folder
  without it is not deid's and is never touched. Every copy runs: while built and while kept, on a free port
  through its own socket only (instance.py), so ServerPlace reads and writes its note, and
  rollback is a restart; `listed` starts again any copy found stopped (after a reboot).
- **Publishing** makes the staging port serve the new copy: the published copy is stopped, the new one
  restarted on the staging port with TCP (`listen_addresses`) and the source's pg_hba.conf, and the old one
  restarted socket-only, kept. Why a port and not a name: staging users keep their connection string; only
  one postmaster can hold the port, so the port itself says which copy is published (`current`), and
  `<staging>.published` beside the copies remembers it across a reboot. Only a copy the gate passed gets
  here (ServerPlace.publish); a new copy that fails to start on the port gives the port back to the
  previous one, so staging is never served by a half-built copy. Staging users see the restart: their
  sessions end and new ones wait about a second.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deid.backends.postgresql.cloners import cluster, datadir, instance
from deid.backends.postgresql.cloners.datadir_settings import DataDirCopies, ReflinkSection, parse_section
from deid.cloners import Cloner
from deid.cloud.copies import ServerCopy
from deid.cloud.results import Endpoint, Pointing
from deid.errors import ConfigError, TransientError

if TYPE_CHECKING:
    from deid.steps.context import RunContext

TAG = "deid_copy.json"


@dataclass(frozen=True)
class DataDirResult:
    """What make() did: the copy (ServerPlace reads clone_id and endpoint) and the run record's facts."""

    clone_id: str
    endpoint: Endpoint
    record: dict[str, Any] = field(default_factory=dict)


class DataDirSource:
    """The copies of `settings.data_directory` under `settings.copies` (deid.cloud.copies.ServerSource)."""

    method = "reflink"

    def __init__(self, settings: DataDirCopies):
        self.settings = settings

    def make(self, logical_date: dt.date, run_id: str, database: str) -> DataDirResult:
        s = self.settings
        name = self._new_name(logical_date)
        target = s.copies / name
        copy = datadir.copy_data_directory(s.data_directory, target, bindir=s.bindir, full_copy=s.full_copy)
        try:
            tag = {"database": database, "logical_date": logical_date.isoformat(), "run_id": run_id}
            tag["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            _write_tag(target, tag)
            started = time.monotonic()
            running = self._start(target, copy.binaries, instance.Serving(instance.free_port()))
            seconds = round(time.monotonic() - started, 3)
        except BaseException:
            _stop(target, copy.binaries)
            shutil.rmtree(target, ignore_errors=True)
            raise
        endpoint = Endpoint(host=str(target), port=running.serving.port)
        return DataDirResult(
            name, endpoint, {**copy.record(), "clone_id": name, "clone_start_seconds": seconds}
        )

    def listed(self, database: str) -> list[ServerCopy]:
        """deid's copies of `database`, newest first; a stopped one is started again (see module doc)."""
        published = self._pointed()
        found = []
        for folder in self._folders():
            tag = _read_tag(folder)
            if tag is None or tag.get("database") != database:
                continue
            endpoint = _endpoint(folder) or self._revive(folder, folder.name == published)
            found.append(
                ServerCopy(
                    id=folder.name,
                    logical_date=dt.date.fromisoformat(tag["logical_date"]),
                    created=dt.datetime.fromisoformat(tag["created"]),
                    endpoint=endpoint,
                    status="running" if endpoint else "stopped",
                    run_id=tag.get("run_id", ""),
                )
            )
        return sorted(found, key=lambda c: (c.logical_date, c.created), reverse=True)

    def delete(self, copy_id: str) -> None:
        folder = self.settings.copies / copy_id
        if _read_tag(folder) is None:
            raise ConfigError(f"{folder} is not a copy deid made (no {TAG}): deid deletes only its own")
        if copy_id == self._pointed():
            raise ConfigError(f"{folder} is the published copy: publish or roll back to another first")
        _stop(folder, self._binaries(folder))
        shutil.rmtree(folder)

    # --- helpers shared with StagingPort ---------------------------------------------------------------

    def _folders(self) -> list[Path]:
        prefix = f"{self.settings.staging_name}__"
        root = self.settings.copies
        return sorted(p for p in root.iterdir() if p.name.startswith(prefix)) if root.is_dir() else []

    def _new_name(self, logical_date: dt.date) -> str:
        base = f"{self.settings.staging_name}__{logical_date:%Y%m%d}"
        n = 1
        while (self.settings.copies / (base if n == 1 else f"{base}-{n}")).exists():
            n += 1
        return base if n == 1 else f"{base}-{n}"

    def _pointed(self) -> str | None:
        try:
            return (
                self.settings.copies / f"{self.settings.staging_name}.published"
            ).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _binaries(self, folder: Path) -> cluster.Binaries:
        return cluster.binaries_for(
            int((folder / "PG_VERSION").read_text().split(".")[0]), self.settings.bindir
        )

    def _start(self, folder: Path, binaries: cluster.Binaries, serving: instance.Serving) -> instance.Running:
        return instance.start(folder, binaries, serving, timeout=self.settings.start_timeout_seconds)

    def _revive(self, folder: Path, publish: bool) -> Endpoint:
        s = self.settings
        serving = instance.published(s.port, s.listen_addresses) if publish else None
        if serving is not None:
            instance.prepare_published(folder)
        running = self._start(
            folder, self._binaries(folder), serving or instance.Serving(instance.free_port())
        )
        return Endpoint(host=str(folder), port=running.serving.port)


class StagingPort:
    """The staging port, and the copy whose server holds it (deid.cloud.copies.Pointer)."""

    def __init__(self, settings: DataDirCopies):
        self.settings = settings
        self.source = DataDirSource(settings)
        self.name = settings.record_name

    def current(self) -> str | None:
        """The folder (a copy's endpoint host) of the published copy; None before the first publish."""
        name = self.source._pointed()
        return str(self.settings.copies / name) if name else None

    def point(self, host: str) -> Pointing:
        """Publish the copy in folder `host` on the staging port (module doc)."""
        began = time.monotonic()
        s, new = self.settings, Path(host)
        previous = self.current()
        if previous == str(new):
            return self._pointing(new, previous, None, began)
        binaries = self.source._binaries(new)
        if previous is not None:
            _stop(Path(previous), binaries)
        _stop(new, binaries)
        instance.prepare_published(new)
        try:
            self.source._start(new, binaries, instance.published(s.port, s.listen_addresses))
        except BaseException:
            _stop(new, binaries)
            self.source._start(new, binaries, instance.Serving(s.port))  # its socket, as before
            if previous is not None:  # the port goes back to the copy that had it
                self.source._start(Path(previous), binaries, instance.published(s.port, s.listen_addresses))
            raise
        _write_pointer(s, new.name)
        if previous is not None:
            # kept, on its own socket only: the same port number names it there (no TCP, so no clash), so
            # the endpoint ServerPlace read before the change still reaches it to note it as kept
            self.source._start(Path(previous), binaries, instance.Serving(s.port))
        return self._pointing(new, previous, "restarted", began)

    def _pointing(self, new: Path, previous: str | None, change: str | None, began: float) -> Pointing:
        return Pointing(
            zone_id="",
            name=self.name,
            target=str(new),
            previous=previous,
            ttl=0,
            change_id=change,
            seconds=round(time.monotonic() - began, 3),
        )


class ReflinkCloner(Cloner):
    """`clone: reflink`: tonight's copy made through the run's ServerPlace, which remembers it for the
    steps after the snapshot; the run record gets datadir.DataDirCopy.record()'s facts."""

    name = "reflink"
    parse_section = staticmethod(parse_section)  # deid.config reads the `reflink:` section through it
    section_model = ReflinkSection

    def clone(self, ctx: RunContext) -> None:
        from deid.steps.places import place_of
        from deid.steps.servers import ServerPlace

        place = place_of(ctx)
        if not isinstance(place, ServerPlace) or not isinstance(place.source, DataDirSource):
            raise ConfigError("clone: reflink needs the 'reflink:' section in deid.yaml")
        ctx.record.update(place.make(ctx).record)


def _endpoint(folder: Path) -> Endpoint | None:
    """Where the copy's running server answers (its postmaster.pid: pid, folder, start, port, socket)."""
    try:
        lines = (folder / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 5 or not lines[0].isdigit() or not lines[3].isdigit():
        return None
    try:
        os.kill(int(lines[0]), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    # its socket is in its own folder (instance.settings): the folder is the copy's host, whatever the port
    return Endpoint(host=str(folder), port=int(lines[3]))


def _stop(folder: Path, binaries: cluster.Binaries) -> None:
    if _endpoint(folder) is not None:
        instance.Running(folder, binaries, instance.Serving(0), "").stop()


def _read_tag(folder: Path) -> dict | None:
    try:
        return json.loads((folder / TAG).read_text())
    except (OSError, ValueError):
        return None


def _write_tag(folder: Path, tag: dict) -> None:
    scratch = folder / f"{TAG}.new"
    scratch.write_text(json.dumps(tag, indent=2) + "\n")
    scratch.replace(folder / TAG)


def _pointer_file(settings: DataDirCopies) -> Path:
    """Beside the copies: the name of the published one, so a reboot knows which serves staging."""
    return settings.copies / f"{settings.staging_name}.published"


def _write_pointer(settings: DataDirCopies, name: str) -> None:
    path = _pointer_file(settings)
    scratch = path.with_name(path.name + ".new")
    scratch.write_text(name + "\n")
    scratch.replace(path)
    if not _fsync_dir(settings.copies):
        raise TransientError(f"cannot make {path} durable")


def _fsync_dir(folder: Path) -> bool:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
