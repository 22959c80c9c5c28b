"""A local PostgreSQL standing in for the servers AWS makes (Aurora clones, RDS restores) in tests against
moto's server.

What is real: boto3 and every AWS call deid makes (moto's server answers them: clusters, instances, tags,
waiters, Route 53 records); every SQL statement of every step, on a real PostgreSQL; the notes, read and
written on the stand-in as on a clone.

What is emulated: moto's clusters have no storage and their endpoints resolve nowhere. An AWS clone is a
server holding the source's databases, as they were at the moment of the clone, under their own names. Here
each clone endpoint deid dials resolves (deid's `resolve=` hook) to the local server, on a database made
from the production database by CREATE DATABASE ... TEMPLATE the first time that endpoint is dialled: the
snapshot step dials it right after AWS reports the clone available, so the copy holds production as it was
then, like the clone. Production and its stand-in clones share one server, which AWS's never do; deid's
production connection is read-only either way, and the tests check production is unchanged. A clone AWS
(moto) deleted keeps its stand-in database until the test ends: the tests look at AWS to see what deid
deleted.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from deid.cloud.results import Endpoint


class StandIn:
    def __init__(self, postgres, production: str):
        self.postgres, self.production = postgres, production
        self.databases: dict[str, str] = {}  # clone endpoint host -> its stand-in database
        local = sa.make_url(postgres.admin_url)
        self.host, self.port = local.host or "127.0.0.1", local.port or 5432

    def resolve(self, endpoint: Endpoint) -> Endpoint:
        host = endpoint.host.lower()
        if host not in self.databases:
            name = f"clone_{hashlib.sha256(host.encode()).hexdigest()[:12]}"
            engine = sa.create_engine(self.postgres.admin_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as c:
                c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.production}"')
            engine.dispose()
            self.databases[host] = name
        return Endpoint(host=self.host, port=self.port, database=self.databases[host])

    def url(self, host: str) -> str:
        """The stand-in of the clone at endpoint `host` (it must have been dialled)."""
        return self.postgres.url(self.databases[host.lower()])

    def drop_all(self) -> None:
        for name in self.databases.values():
            self.postgres.drop_database(name)
