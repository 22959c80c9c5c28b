"""Snapshot strategies: each makes tonight's working copy of the production database, on the staging server
or (servers.py) as a server of its own.

`clone:` in deid.yaml names one. Most are the engine's (Backend.cloners: a server-side template copy, a
dump piped into a restore); strategies that work whatever the engine (AWS's clone of a cluster, its restore
of an instance's snapshot) are registered here. Both registries map names to "module:Class" and import a
cloner only when asked for (dump needs binaries that template does not), with no registration by import
side effect.

Every cloner of a database creates the working copy through `create_working_copy`, so whatever the
strategy, the copy is born closed: nobody can connect until it belongs to deid's role and PUBLIC has lost
CONNECT on it.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, ClassVar

import sqlalchemy as sa

from deid.backends import backend_for
from deid.errors import ConfigError
from deid.steps.copies import store
from deid.suggest import did_you_mean

if TYPE_CHECKING:
    from deid.steps.context import RunContext

# strategies that work whatever the engine; the engine's own come from Backend.cloners
_REGISTRY: dict[str, str] = {
    "aurora": "deid.cloners.servers:AuroraCloner",
    "rds_snapshot": "deid.cloners.servers:RdsSnapshotCloner",
}


class Cloner:
    """One snapshot strategy. Subclasses set `name` and implement `clone`."""

    name: ClassVar[str] = ""
    # the pydantic model of the deid.yaml section named after the cloner, where it reads one itself
    # (deid.config.CLONER_SECTIONS): deid.yaml's JSON Schema describes the section with it
    section_model: ClassVar[type | None] = None

    def clone(self, ctx: RunContext) -> None:
        """Create tonight's working copy of the production database: ctx.work_name on the staging server,
        or a server of its own (ServerCloner).

        Never writes to production. On failure, a partly built working copy may remain: the caller drops it.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _registry(engine: str) -> dict[str, str]:
    return {**_REGISTRY, **backend_for(engine).cloners}


def cloner_names(engine: str) -> tuple[str, ...]:
    """The strategies that can clone a database of `engine`."""
    return tuple(sorted(_registry(engine)))


def cloner_for(name: str, engine: str) -> Cloner:
    """The cloner called `name` for a database of `engine`; ConfigError, with a suggestion, for a name deid
    does not know there."""
    registry = _registry(engine)
    if name not in registry:
        raise ConfigError(
            f"unknown clone method '{name}'.{did_you_mean(name, registry)} "
            f"Use one of: {', '.join(sorted(registry))}"
        )
    return _load(registry[name])


@functools.cache
def _load(path: str) -> Cloner:
    module_name, class_name = path.split(":")
    return getattr(importlib.import_module(module_name), class_name)()


def create_working_copy(connection: sa.Connection, name: str, options: str) -> None:
    """Create the database `name` (`options`: the engine's, e.g. a template), reachable only by deid's role
    from its first moment: no other role could read the unscrubbed rows (Backend.copy_store)."""
    store(connection).create_closed(connection, name, options)


def section_models() -> dict[str, type]:
    """Each cloner section's model (Cloner.section_model), by section name, across every engine."""
    from deid.backends import engine_names

    found: dict[str, type] = {}
    for engine in engine_names():
        for name, path in _registry(engine).items():
            if (model := _load(path).section_model) is not None:
                found[name] = model
    return found
