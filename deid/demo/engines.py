"""Where the demo finds an engine's part: the package deid.backends.<engine>.demo, by the backend's name.

That package offers:
    SCHEMA_SQL        the learners production schema in the engine's SQL (a Path)
    RULES             the demo's rule file for that engine, relative to the checkout
    load(url, tables) write deid.demo.rows.tables(...) into the empty database at url; rows per table
    create_database(server_url, name) -> bool   create it unless it exists; True when created
    shell_command(url) -> str                   how a person opens url in the engine's shell
and, where the engine has a server that runs from a wheel, EMBEDDED_FOLDER and start_embedded(data), which
returns a DemoServer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import sqlalchemy as sa

from deid.backends import backend_for
from deid.db import safe_url
from deid.errors import ConfigError


class DemoServer(Protocol):
    """The server that holds the demo's databases."""

    @property
    def description(self) -> str: ...

    def url(self, database: str = ...) -> str: ...


@dataclass(frozen=True)
class ServerAt:
    """A server given by an admin URL (`--server`)."""

    admin_url: str

    @property
    def description(self) -> str:
        return f"the server {safe_url(self.admin_url)}"

    def url(self, database: str | None = None) -> str:
        if database is None:
            return self.admin_url
        url = sa.make_url(self.admin_url).set(database=database)
        return url.render_as_string(hide_password=False)


def demo_support(engine: str) -> ModuleType:
    """The engine's demo package (ConfigError, with a suggestion, for an engine deid does not know)."""
    backend = backend_for(engine)
    name = f"deid.backends.{backend.name}.demo"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        raise ConfigError(
            f"the demo has no database for the engine '{backend.name}' yet: "
            f"add the package deid/backends/{backend.name}/demo/"
        ) from None
