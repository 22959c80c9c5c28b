"""PostgreSQL through psycopg 3. Tested on 15 and 18; the catalog columns it reads exist since 12."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from deid.backends.base import Backend, Capabilities
from deid.schema import CheckTerm, Schema


class PostgresqlBackend(Backend):
    name = "postgresql"
    driver = "psycopg"
    capabilities = Capabilities(
        transactional_ddl=True,
        clone_by_template=True,
        disable_triggers_by_replication_role=True,
        generated_columns=True,
        identity_columns=True,
        partitioning=True,
        materialized_views=True,
        sequences=True,
        schemas=True,
    )

    def introspect(self, connection: sa.Connection, database_name: str) -> Schema:
        from deid.backends.postgresql.introspect import introspect

        return introspect(connection, database_name)

    def validate_foreign_keys(
        self, engine: sa.Engine, keys: list[tuple[str, str]], sessions: int = 1
    ) -> list[tuple[str, str]]:
        from deid.backends.postgresql.scrub import validate_foreign_keys

        return validate_foreign_keys(engine, keys, sessions)

    def check_terms(self, definition: str, columns: tuple[str, ...]) -> tuple[CheckTerm, ...]:
        from deid.backends.postgresql.checks import terms

        return terms(definition, columns)

    def content_sampler(self) -> Any:
        from deid.backends.postgresql import sample

        return sample

    def public_parameters(self) -> frozenset[str]:
        from deid.backends.postgresql.conninfo import public_parameters

        return public_parameters()

    def url_from_dsn(self, text: str) -> sa.URL | None:
        from deid.backends.postgresql.conninfo import url_from_dsn

        return url_from_dsn(text, f"{self.name}+{self.driver}")

    def read_only_connect_args(self, url: sa.URL) -> dict[str, Any]:
        # A startup option, not a SET after connecting: it is in force before the first statement, costs no
        # round trip, and covers every connection the pool opens. Options already in the URL are kept.
        options = " ".join(filter(None, [url.query.get("options"), "-c default_transaction_read_only=on"]))
        return {"options": options}
