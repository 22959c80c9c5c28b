"""MySQL 8 and MariaDB 10.11+ through PyMySQL: one backend for both, as one SQLAlchemy dialect serves both
(a URL may say mysql:// or mariadb://). Where the two servers differ (how information_schema prints
defaults and expressions, JSON, CHECKs), the backend asks the server's VERSION() and reads both.

So far: the registry entry, connections (read-only sessions, which URL parameters may be shown) and
introspection. docs/backends/mysql.md says what is done and what is not.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from deid.backends.base import Backend, Capabilities, SequenceKind, TriggerSilencing
from deid.backends.diagnosis import Diagnosis
from deid.schema import Schema


class MysqlBackend(Backend):
    name = "mysql"
    driver = "pymysql"
    # No flag is claimed, each for a reason (docs/backends/mysql.md):
    # - transactional_ddl: DDL commits the transaction it is in; a failed migration leaves what it did.
    # - database_rename, instant_clone: a database cannot be renamed (RENAME DATABASE was removed) nor
    #   copied by the server (no CREATE DATABASE ... TEMPLATE): publish renames tables, a clone moves rows.
    # - trigger_silencing NONE: no session setting skips triggers (no session_replication_role); the scrub
    #   will drop and re-create them (DROP_AND_RESTORE once it does).
    # - schemas: a MySQL "database" is the namespace; inside it there is no other.
    # Ids come from each table's AUTO_INCREMENT counter. MariaDB also has CREATE SEQUENCE objects, which
    # introspection lists, but nothing moves them yet.
    capabilities = Capabilities(
        transactional_ddl=False,
        database_rename=False,
        instant_clone=False,
        sequence_kind=SequenceKind.AUTO_INCREMENT,
        trigger_silencing=TriggerSilencing.NONE,
        schemas=False,
        max_identifier_bytes=64,  # a database or table name: 64 characters, so 64 bytes always fit
    )

    def diagnose(self, original: BaseException) -> Diagnosis:
        from deid.backends.mysql.errors import diagnose

        return diagnose(original)

    def refused(self, original: BaseException | None, reason: str) -> bool:
        from deid.backends.mysql.errors import refused

        return refused(original)

    def introspect(self, connection: sa.Connection, database_name: str) -> Schema:
        from deid.backends.mysql.introspect import introspect

        return introspect(connection, database_name)

    def public_parameters(self) -> frozenset[str]:
        from deid.backends.mysql.connection import PUBLIC_PARAMETERS

        return PUBLIC_PARAMETERS

    def read_only_connect_args(self, url: sa.URL) -> dict[str, Any]:
        from deid.backends.mysql.connection import read_only_connect_args

        return read_only_connect_args(url)
