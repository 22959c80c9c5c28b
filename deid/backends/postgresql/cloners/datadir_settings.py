"""deid.yaml's `reflink:` section: copies of a whole data directory, each a PostgreSQL server of its own on
this host (datadir.py makes one, datadir_place.py runs and publishes them).

    clone: reflink
    reflink:
      data_directory: /srv/postgresql/standby    # a stopped standby or a restored base backup; never started
      copies: /srv/postgresql/copies             # where the copies live: the same filesystem, with reflinks
      port: 5433                                 # the published copy serves staging here
      listen_addresses: localhost                # where the published copy listens (default: localhost)
      bindir: /usr/lib/postgresql/18/bin         # default: found from the source's PG_VERSION
      full_copy: false                           # true: accept a full copy where there are no reflinks
      start_timeout_seconds: 300                 # bound on each start (replaying the standby's WAL)

deid runs the copies' servers, so it runs as the data directory's owner (or as root, which starts them as
that owner). The staging connection's user and options are dialled at each copy: through the copy's own
socket while deid builds it, at `port` for staging users once published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deid.errors import Problem

METHOD = "reflink"
KEYS = (
    "data_directory",
    "copies",
    "port",
    "listen_addresses",
    "bindir",
    "full_copy",
    "start_timeout_seconds",
)


@dataclass(frozen=True)
class DataDirCopies:
    """Where the copies of one database live when each is a copied data directory, and where the published
    one serves."""

    data_directory: Path
    copies: Path
    port: int
    staging_name: str
    listen_addresses: str = "localhost"
    bindir: Path | None = None
    full_copy: bool = False
    start_timeout_seconds: float = 300.0
    method: str = field(default=METHOD, init=False)

    @property
    def source(self) -> str:
        return str(self.data_directory)

    @property
    def record_name(self) -> str:
        """What staging users connect to (the CLI names it)."""
        return f"port {self.port} ({self.listen_addresses})"

    def connect(self) -> tuple[Any, Any]:
        """The ServerSource and Pointer of these copies (deid.cloud.copies.connect asks for them)."""
        from deid.backends.postgresql.cloners.datadir_place import DataDirSource, StagingPort

        return DataDirSource(self), StagingPort(self)


def parse_section(source, path: tuple, spec: dict, clone: str) -> tuple[DataDirCopies | None, list[Problem]]:
    """The `reflink:` section of the database `spec` at `path` (deid.config calls it for clone: reflink);
    problems name the file, the line and the fix."""
    section, where = spec.get(METHOD), (*path, METHOD)
    example = (
        f"{METHOD}: {{data_directory: /srv/postgresql/standby, copies: /srv/postgresql/copies, port: 5433}}"
    )
    if not isinstance(section, dict):
        at = where if METHOD in spec else (*path, "clone")
        return None, [source.problem(at, f"clone: {METHOD} needs a '{METHOD}:' section (a mapping)", example)]
    problems = source.unknown_keys(where, section, KEYS, where=f"{path[-1]}.{METHOD}")
    for key in ("data_directory", "copies", "bindir"):
        value = section.get(key)
        if (key in section or key != "bindir") and not (isinstance(value, str) and value.startswith("/")):
            problems.append(
                source.problem((*where, key), f"{key} must be an absolute path", f"{key}: /srv/...")
            )
    port = section.get("port")
    if not (isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535):
        problems.append(source.problem((*where, "port"), "port must be a port number", "port: 5433"))
    listen = section.get("listen_addresses", "localhost")
    if not (isinstance(listen, str) and listen):
        problems.append(source.problem((*where, "listen_addresses"), "listen_addresses must be text", "'*'"))
    if not isinstance(section.get("full_copy", False), bool):
        problems.append(source.problem((*where, "full_copy"), "full_copy must be true or false", "false"))
    timeout = section.get("start_timeout_seconds", 300)
    if not (isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0):
        problems.append(
            source.problem((*where, "start_timeout_seconds"), "a number of seconds above 0", "300")
        )
    staging = spec.get("staging_name")
    if problems or not isinstance(staging, str):
        return None, problems
    if Path(section["copies"]).resolve().is_relative_to(Path(section["data_directory"]).resolve()):
        return None, [
            source.problem((*where, "copies"), "copies must be outside data_directory", "a folder beside it")
        ]
    return DataDirCopies(
        data_directory=Path(section["data_directory"]),
        copies=Path(section["copies"]),
        port=port,
        staging_name=staging,
        listen_addresses=listen,
        bindir=Path(section["bindir"]) if "bindir" in section else None,
        full_copy=section.get("full_copy", False),
        start_timeout_seconds=float(timeout),
    ), []
