"""MySQL 8 and MariaDB 10.11+ through PyMySQL: one backend for both, as one SQLAlchemy dialect serves both
(a URL may say mysql:// or mariadb://). Where the two servers differ (how information_schema prints
defaults and expressions, JSON, CHECKs), the backend asks the server's VERSION() and reads both.

So far: the registry entry, connections (read-only sessions, which URL parameters may be shown) and
introspection. docs/backends/mysql.md says what is done and what is not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa

from deid.backends.base import (
    Backend,
    Capabilities,
    CopyStore,
    MigrationDialect,
    SequenceKind,
    TriggerSilencing,
)
from deid.backends.diagnosis import Diagnosis
from deid.backends.mysql.quoting import QUOTING
from deid.backends.scrubbing import Scrubbing
from deid.schema import Schema, Table


class MysqlBackend(Backend):
    name = "mysql"
    driver = "pymysql"
    url_example = "mysql://user@host:3306/dbname"
    # No flag is claimed, each for a reason (docs/backends/mysql.md):
    # - transactional_ddl: DDL commits the transaction it is in; a failed migration leaves what it did.
    # - database_rename, instant_clone: a database cannot be renamed (RENAME DATABASE was removed) nor
    #   copied by the server (no CREATE DATABASE ... TEMPLATE): publish renames tables, a clone moves rows.
    # - trigger_silencing DROP_AND_RESTORE: no session setting skips triggers (no session_replication_role),
    #   so the scrub drops a table's UPDATE triggers for its rewrite and re-creates them (triggers_off.py).
    # - schemas: a MySQL "database" is the namespace; inside it there is no other.
    # Ids come from each table's AUTO_INCREMENT counter, and on MariaDB from CREATE SEQUENCE objects too
    # (rebase.py moves both).
    capabilities = Capabilities(
        transactional_ddl=False,
        database_rename=False,
        instant_clone=False,
        sequence_kind=SequenceKind.AUTO_INCREMENT,
        trigger_silencing=TriggerSilencing.DROP_AND_RESTORE,
        schemas=False,
        max_identifier_bytes=64,  # a database or table name: 64 characters, so 64 bytes always fit
    )

    def diagnose(self, original: BaseException) -> Diagnosis:
        from deid.backends.mysql.errors import diagnose

        return diagnose(original)

    def refused(self, original: BaseException | None, reason: str) -> bool:
        from deid.backends.mysql.errors import refused

        return refused(original)

    def is_scrub_table(self, table: Table) -> bool:
        from deid.backends.mysql.rebuild import is_rebuild_table
        from deid.backends.mysql.scrub_ledger import TABLES

        return table.name in TABLES or is_rebuild_table(table.name)

    quoting = QUOTING  # backquoted names, backslashes doubled in literals (deid.backends.quoting)

    def introspect(self, connection: sa.Connection, database_name: str) -> Schema:
        from deid.backends.mysql.introspect import introspect

        return introspect(connection, database_name)

    def public_parameters(self) -> frozenset[str]:
        from deid.backends.mysql.connection import PUBLIC_PARAMETERS

        return PUBLIC_PARAMETERS

    def read_only_connect_args(self, url: sa.URL) -> dict[str, Any]:
        from deid.backends.mysql.connection import read_only_connect_args

        return read_only_connect_args(url)

    def migrations(self) -> MigrationDialect:
        from deid.backends.mysql import migrations

        return cast(MigrationDialect, migrations)

    def validation(self):  # -> deid.backends.base.ValidationDialect
        from deid.backends.base import ValidationDialect
        from deid.backends.mysql import validation

        return cast(ValidationDialect, validation)

    # --- the run lock: GET_LOCK is server-wide, so no database is needed to take it ---
    maintenance_database = None

    def try_lock(self, connection: sa.Connection, name: str, shared: bool) -> int | None:
        from deid.backends.mysql.lock import try_lock

        return try_lock(connection, name, shared)

    def unlock(self, connection: sa.Connection, name: str, shared: bool) -> None:
        from deid.backends.mysql.lock import unlock

        unlock(connection, name, shared)

    def lock_holder(self, connection: sa.Connection, name: str) -> str:
        from deid.backends.mysql.lock import holder

        return holder(connection, name)

    def session_name_args(self, text: str) -> dict[str, Any]:
        from deid.backends.mysql.lock import session_name_args

        return session_name_args(text)

    # --- copies on the staging server: a database each, published by one RENAME TABLE (copies.py) ---
    cloners = {
        "dump": "deid.backends.mysql.cloners.dump:DumpCloner",
        "same_server": "deid.backends.mysql.cloners.same_server:SameServerCloner",
    }

    def copy_store(self) -> CopyStore:
        from deid.backends.mysql import copies

        return cast(CopyStore, copies)

    # --- rebase: each table's AUTO_INCREMENT counter ---

    def rebase_database(
        self, connection: sa.Connection, schema: Schema, logical_date: dt.date
    ) -> dict[str, dict]:
        from deid.backends.mysql.rebase import rebase_database

        return rebase_database(connection, schema, logical_date)

    # --- the scrub: rows move out and back in Arrow batches through the vector forms ---

    def prepare_scrub(self, engine, plan, schema, how, tables=None):
        from deid.backends.mysql.scrub import prepare_scrub

        return prepare_scrub(engine, plan, schema, how, tables)

    def scrub_tables(
        self, engine, plan, salt, schema, units, progress=None, how=Scrubbing(), streams_done=None
    ):
        from deid.backends.mysql.scrub import scrub_tables

        return scrub_tables(engine, plan, salt, schema, units, progress, how, streams_done)

    def finish_scrub(self, engine, plan, tables=None):
        from deid.backends.mysql.scrub import finish_scrub

        return finish_scrub(engine, plan, tables)

    def scrub_refusals(self, schema: Schema, plan) -> list[str]:
        from deid.backends.mysql.scrub import refusals

        return refusals(schema, plan)

    def scrub_database(self, engine, plan, salt, **options):
        from deid.backends.mysql.scrub import scrub_database

        return scrub_database(engine, plan, salt, **options)
