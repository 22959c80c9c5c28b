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
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from deid import yamlmodel
from deid.errors import Problem
from deid.yamlmodel import EXPECTS, STRICT, problem

METHOD = "reflink"
AbsolutePath = Annotated[
    str, Field(pattern=r"^/", json_schema_extra={EXPECTS: "an absolute path", "examples": ["/srv/..."]})
]


class ReflinkSection(BaseModel):
    """deid.yaml's `reflink:` section (above), validated with its errors at their file:line."""

    model_config = STRICT

    data_directory: AbsolutePath = Field(
        description="A stopped standby or a restored base backup; never started"
    )
    copies: AbsolutePath = Field(description="Where the copies live: the same filesystem, with reflinks")
    port: Annotated[int, Field(ge=1, le=65535, json_schema_extra={EXPECTS: "a port number"})] = Field(
        description="The published copy serves staging here, e.g. port: 5433"
    )
    listen_addresses: Annotated[str, Field(min_length=1)] = Field(
        "localhost", description="Where the published copy listens, e.g. '*'"
    )
    bindir: AbsolutePath | None = Field(None, description="Default: found from the source's PG_VERSION")
    full_copy: bool = Field(False, description="true: accept a full copy where there are no reflinks")
    start_timeout_seconds: Annotated[float, Field(gt=0)] = Field(
        300.0, description="Bound on each start (replaying the standby's WAL), e.g. 300"
    )

    @model_validator(mode="after")
    def _apart(self) -> ReflinkSection:
        if Path(self.copies).resolve().is_relative_to(Path(self.data_directory).resolve()):
            raise problem("copies must be outside data_directory", "a folder beside it", at="copies")
        return self


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
    settings, problems = yamlmodel.validate(source, ReflinkSection, section, where)
    staging = spec.get("staging_name")
    if settings is None or not isinstance(staging, str):
        return None, problems
    return DataDirCopies(
        data_directory=Path(settings.data_directory),
        copies=Path(settings.copies),
        port=settings.port,
        staging_name=staging,
        listen_addresses=settings.listen_addresses,
        bindir=Path(settings.bindir) if settings.bindir else None,
        full_copy=settings.full_copy,
        start_timeout_seconds=settings.start_timeout_seconds,
    ), []
