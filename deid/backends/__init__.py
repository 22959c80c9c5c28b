"""Find the backend of an engine by name.

The registry maps names to "module:Class" and imports a backend only when asked for, so importing deid
never imports every engine's driver, and no backend registers itself by the side effect of an import.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from deid.backends.base import (
    Backend,
    Capabilities,
    CopyStore,
    PreviewSupport,
    SequenceKind,
    TriggerSilencing,
)
from deid.backends.diagnosis import Diagnosis
from deid.errors import ConfigError
from deid.suggest import did_you_mean

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "DEFAULT_ENGINE",
    "Backend",
    "Capabilities",
    "CopyStore",
    "PreviewSupport",
    "SequenceKind",
    "TriggerSilencing",
    "Diagnosis",
    "backend_for",
    "diagnose",
    "engine_names",
    "url_from_dsn",
]

DEFAULT_ENGINE = "postgresql"  # deid.yaml's `engine:` when a database names none

_REGISTRY: dict[str, str] = {
    "postgresql": "deid.backends.postgresql:PostgresqlBackend",
    "mysql": "deid.backends.mysql:MysqlBackend",
}
# Other names of a registered engine: SQLAlchemy's dialect for MariaDB is "mariadb" (mariadb+pymysql://);
# postgres:// is not SQLAlchemy's, but users paste it from other tools (Heroku, libpq).
_ALIASES: dict[str, str] = {"mariadb": "mysql", "postgres": "postgresql"}


def engine_names() -> tuple[str, ...]:
    """Every engine deid knows, sorted."""
    return tuple(sorted(_REGISTRY))


def backend_for(engine_name: str) -> Backend:
    """The backend of an engine: "postgresql", or a SQLAlchemy dialect name such as "postgresql+psycopg".

    Raises ConfigError, with a suggestion, for an engine deid does not know.
    """
    name = engine_name.split("+", 1)[0]
    name = _ALIASES.get(name, name)
    if name not in _REGISTRY:
        raise ConfigError(f"Unknown engine '{engine_name}'.{did_you_mean(name, _REGISTRY)}")
    return _load(name)


def diagnose(error: BaseException) -> Diagnosis:
    """What a database error says, read by the backend whose driver raised it (an SQLAlchemy error is read
    through the driver's error it wraps); an empty Diagnosis for an error of no known driver."""
    original = getattr(error, "orig", None) or error
    package = type(original).__module__.partition(".")[0]
    for name in engine_names():
        backend = _load(name)
        if backend.driver == package:
            return backend.diagnose(original)
    return Diagnosis()


def url_from_dsn(text: str) -> sa.URL | None:
    """The URL meaning what `text` means, when `text` is a connection string in an engine's own syntax (a
    connection setting carries no engine name, so each engine is asked in turn); None when none reads it."""
    for name in engine_names():
        url = _load(name).url_from_dsn(text)
        if url is not None:
            return url
    return None


@functools.cache
def _load(name: str) -> Backend:
    """One instance per engine: backends hold no per-database state."""
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()
