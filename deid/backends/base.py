"""What every engine backend offers, and what it can do, as data.

Callers ask a backend's `capabilities` ("can you clone by template?") instead of testing its name, so adding
an engine means adding a subclass, not editing every step. The base class holds the behaviour engines share
and fails clearly for what an engine has not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import sqlalchemy as sa

from deid.errors import ConfigError
from deid.schema import CheckTerm, Schema


@dataclass(frozen=True)
class Capabilities:
    """What an engine supports. Every flag defaults to False: an engine claims only what it has."""

    transactional_ddl: bool = False  # DDL can be rolled back with the transaction around it
    clone_by_template: bool = False  # CREATE DATABASE ... TEMPLATE copies a database server-side
    disable_triggers_by_replication_role: bool = False  # session_replication_role = replica skips triggers
    generated_columns: bool = False
    identity_columns: bool = False
    partitioning: bool = False
    materialized_views: bool = False
    sequences: bool = False  # standalone sequence objects (not only AUTO_INCREMENT)
    schemas: bool = False  # namespaces inside one database, so table names are "schema.table"


class Backend:
    """One database engine. Subclasses set `name`, `driver` and `capabilities` and implement the methods."""

    name: ClassVar[str] = "default"
    driver: ClassVar[str] = ""  # SQLAlchemy driver used when a URL names none, e.g. "psycopg"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def introspect(self, connection: sa.Connection, database_name: str) -> Schema:
        """The structure of the database `connection` is connected to, named `database_name` in the result."""
        raise NotImplementedError(f"{type(self).__name__} cannot introspect")

    def public_parameters(self) -> frozenset[str]:
        """URL query parameters that never carry a secret, so a message may show their values (sslmode, ...).

        Every other parameter is shown masked and counted as a secret (deid.db.safe_url, url_secrets): an
        unknown name may be a password under a name nobody listed. The default knows none.
        """
        return frozenset()

    def url_from_dsn(self, text: str) -> sa.URL | None:
        """The URL that means what `text` means in the engine's own connection-string syntax, or None when
        `text` is not one (the default: the engine has no syntax of its own besides URLs)."""
        return None

    def read_only_connect_args(self, url: sa.URL) -> dict[str, Any]:
        """DBAPI connect() arguments that make every transaction of a session read-only.

        A backend without such a setting cannot be pointed at production, so the default refuses.
        """
        raise ConfigError(f"deid cannot open read-only sessions on engine '{self.name}'")

    def check_terms(self, definition: str, columns: tuple[str, ...]) -> tuple[CheckTerm, ...]:
        """The conjuncts of a CHECK constraint as printed by the engine (schema.CheckConstraint.definition).
        The default reads none: one "other" term, which lint cannot prove a transformer respects."""
        return (CheckTerm(definition, None, "other", columns),)

    def content_sampler(self) -> Any:
        """The module that counts, in the database, how many sampled values match identifier formats (see
        deid.backends.postgresql.sample for the functions `deid scan` calls)."""
        raise NotImplementedError(f"{type(self).__name__} cannot sample content")

    def validate_foreign_keys(
        self, engine: sa.Engine, keys: list[tuple[str, str]], sessions: int = 1
    ) -> list[tuple[str, str]]:
        """Check the foreign keys (table, constraint) a scrub left unchecked, and mark them valid; returns
        those that do not hold. Only an engine whose scrub leaves keys unchecked has any."""
        raise NotImplementedError(f"{type(self).__name__} leaves no foreign key unchecked")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
