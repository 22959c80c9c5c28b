"""MySQL 8 and MariaDB 10.11+ through PyMySQL: one backend for both, as one SQLAlchemy dialect serves both
(a URL may say mysql:// or mariadb://). Where the two servers differ (how information_schema prints
defaults and expressions, JSON, CHECKs), the backend asks the server's VERSION() and reads both.

So far: the registry entry, connections (read-only sessions, which URL parameters may be shown) and
introspection. docs/backends/mysql.md says what is done and what is not.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from deid.backends.base import Backend, Capabilities
from deid.schema import Schema


class MysqlBackend(Backend):
    name = "mysql"
    driver = "pymysql"
    # Every flag is False, each for a reason (docs/backends/mysql.md):
    # - transactional_ddl: DDL commits the transaction it is in; a failed migration leaves what it did.
    # - no server-side clone: neither server copies a database (no CREATE DATABASE ... TEMPLATE), and a
    #   database cannot be renamed (RENAME DATABASE was removed), so publishing renames tables.
    # - sequences: ids come from a per-table AUTO_INCREMENT counter. MariaDB also has CREATE SEQUENCE
    #   objects, which introspection lists, but nothing moves them yet.
    # - schemas: a MySQL "database" is the namespace; inside it there is no other.
    # - triggers cannot be silenced per session (no session_replication_role).
    capabilities = Capabilities(transactional_ddl=False, schemas=False)

    def introspect(self, connection: sa.Connection, database_name: str) -> Schema:
        from deid.backends.mysql.introspect import introspect

        return introspect(connection, database_name)

    def public_parameters(self) -> frozenset[str]:
        from deid.backends.mysql.connection import PUBLIC_PARAMETERS

        return PUBLIC_PARAMETERS

    def read_only_connect_args(self, url: sa.URL) -> dict[str, Any]:
        from deid.backends.mysql.connection import read_only_connect_args

        return read_only_connect_args(url)
