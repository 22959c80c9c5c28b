"""The URL the SQL steps use to reach a clone: the configured connection with the clone's host and port.

A clone keeps its source's engine and users, so the connection deid is configured with for the source's
server (its user, password, driver, options) reaches the clone once host and port are the clone's. Tests, and
deployments that reach clones through a tunnel or a private name, pass `resolve` to map the endpoint AWS
reports to the one to dial.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from deid.cloud.results import Endpoint

Resolver = Callable[[Endpoint], Endpoint]


def clone_url(
    connection_url: str | sa.URL,
    endpoint: Endpoint,
    *,
    database: str | None = None,
    resolve: Resolver | None = None,
) -> sa.URL:
    """`connection_url` pointed at `endpoint` (through `resolve`), on `database` when given.

    Returns a SQLAlchemy URL, whose str() and repr() hide the password.
    """
    where = resolve(endpoint) if resolve else endpoint
    url = sa.make_url(connection_url).set(host=where.host, port=where.port)
    return url.set(database=database) if database is not None else url
