"""PostgreSQL through psycopg 3. Tested on 15 and 18; the catalog columns it reads exist since 12."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa

from deid.backends.base import (
    Backend,
    Capabilities,
    CopyStore,
    MigrationDialect,
    PreviewSupport,
    SequenceKind,
    TriggerSilencing,
)
from deid.backends.diagnosis import Diagnosis
from deid.backends.postgresql.quoting import QUOTING
from deid.backends.scrubbing import Scrubbing
from deid.schema import CheckTerm, Schema, Table


class PostgresqlBackend(Backend):
    name = "postgresql"
    driver = "psycopg"
    url_example = "postgresql://user@host:5432/dbname"
    quoting = QUOTING  # deid.backends.quoting with SQLAlchemy's PostgreSQL dialect
    capabilities = Capabilities(
        transactional_ddl=True,
        database_rename=True,
        instant_clone=True,  # CREATE DATABASE ... TEMPLATE
        sequence_kind=SequenceKind.SEQUENCE,
        trigger_silencing=TriggerSilencing.SESSION,  # session_replication_role = replica
        schemas=True,
        sql_forms=True,
        max_identifier_bytes=63,  # NAMEDATALEN - 1: longer names are cut, not refused
    )

    def prepare_scrub(self, engine, plan, schema, how, tables=None):
        from deid.backends.postgresql.scrub import prepare_scrub

        return prepare_scrub(engine, plan, schema, how, tables)

    def scrub_tables(
        self, engine, plan, salt, schema, units, progress=None, how=Scrubbing(), streams_done=None
    ):
        from deid.backends.postgresql.scrub import scrub_tables

        return scrub_tables(engine, plan, salt, schema, units, progress, how, streams_done)

    def finish_scrub(self, engine, plan, tables=None):
        from deid.backends.postgresql.scrub import finish_scrub

        return finish_scrub(engine, plan, tables)

    def scrub_database(self, engine, plan, salt, **options):
        from deid.backends.postgresql.scrub import scrub_database

        return scrub_database(engine, plan, salt, **options)

    def column_sql(self, table, column, transformer, params):
        from deid.backends.postgresql.forms import column_sql

        return column_sql(table, column, transformer, params)

    def table_statements(self, table, rule, sets, condition):
        from deid.backends.postgresql.statements import table_statements

        return table_statements(table, rule, sets, condition)

    def rebase_database(
        self, connection: sa.Connection, schema: Schema, logical_date: dt.date
    ) -> dict[str, dict]:
        from deid.backends.postgresql.rebase import rebase_database

        return rebase_database(connection, schema, logical_date)

    def large_objects(self, connection: sa.Connection) -> int:
        from deid.backends.postgresql import large_objects

        return large_objects.count(connection)

    def copy_store(self) -> CopyStore:
        from deid.backends.postgresql import copies

        return cast(CopyStore, copies)

    def preview_support(self) -> PreviewSupport:
        from deid.backends.postgresql import preview

        return cast(PreviewSupport, preview)

    def migrations(self) -> MigrationDialect:
        from deid.backends.postgresql import migrations

        return cast(MigrationDialect, migrations)

    def validation(self):  # -> deid.backends.base.ValidationDialect
        from deid.backends.base import ValidationDialect
        from deid.backends.postgresql import validation

        return cast(ValidationDialect, validation)

    maintenance_database = "postgres"  # created with every cluster
    cloners = {
        "template": "deid.backends.postgresql.cloners.template:TemplateCloner",
        "dump": "deid.backends.postgresql.cloners.dump:DumpCloner",
        "reflink": "deid.backends.postgresql.cloners.datadir_place:ReflinkCloner",
    }

    def diagnose(self, original: BaseException) -> Diagnosis:
        from deid.backends.postgresql.errors import diagnose

        return diagnose(original)

    def refused(self, original: BaseException | None, reason: str) -> bool:
        from deid.backends.postgresql.errors import refused

        return refused(reason)

    def bad_settings(self, original: BaseException | None, reason: str) -> bool:
        from deid.backends.postgresql.errors import bad_option

        return bad_option(reason)

    def try_lock(self, connection: sa.Connection, name: str, shared: bool) -> int | None:
        from deid.backends.postgresql.lock import try_lock

        return try_lock(connection, name, shared)

    def unlock(self, connection: sa.Connection, name: str, shared: bool) -> None:
        from deid.backends.postgresql.lock import unlock

        unlock(connection, name, shared)

    def lock_holder(self, connection: sa.Connection, name: str) -> str:
        from deid.backends.postgresql.lock import holder

        return holder(connection, name)

    def session_name_args(self, text: str) -> dict[str, Any]:
        from deid.backends.postgresql.lock import session_name_args

        return session_name_args(text)

    def like_ignoring_case(self, column_sql: str, pattern_sql: str, negate: bool) -> str:
        return f"{column_sql} {'NOT ' if negate else ''}ILIKE {pattern_sql}"

    def is_scrub_table(self, table: Table) -> bool:
        from deid.backends.postgresql.forms.support import SCHEMA

        return table.schema == SCHEMA  # the scrub's support schema, dropped by its finish

    def scrub_preamble(self) -> tuple[str, ...]:
        # replica: neither triggers nor foreign-key checks fire (both are system triggers)
        return ("SET session_replication_role = replica",)

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
