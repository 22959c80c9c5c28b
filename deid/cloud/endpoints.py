"""The URL the SQL steps use to reach a clone: the configured connection with the clone's host and port.

A clone keeps its source's engine and users, so the connection deid is configured with for the source's
server (its user, password, driver, options) reaches the clone once host and port are the clone's. Tests, and
deployments that reach clones through a tunnel or a private name, pass `resolve` to map the endpoint AWS
reports to the one to dial; a resolved endpoint may also name the database to use there (a stand-in that
keeps several clones on one server, each under a name of its own).
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
    """`connection_url` pointed at `endpoint` (through `resolve`), on `database` when given (or the database
    the resolved endpoint names).

    Returns a SQLAlchemy URL, whose str() and repr() hide the password.
    """
    where = resolve(endpoint) if resolve else endpoint
    url = sa.make_url(connection_url).set(host=where.host, port=where.port)
    if where.host.startswith("/"):  # a Unix socket's folder (a server deid runs on this host), in the query
        # (URL.set ignores None, so the tuple's own _replace clears host and port)
        url = url._replace(host=None, port=None).update_query_dict(
            {"host": where.host, "port": str(where.port)}
        )
    database = where.database or database
    return url.set(database=database) if database is not None else url
