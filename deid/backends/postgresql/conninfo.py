"""libpq's connection settings: which parameters are secrets, and key=value strings read into URLs.

Both come from libpq itself, through psycopg, rather than from a list kept here: libpq marks the parameters
it never displays (`dispchar`), and its own parser reads key=value strings (quoting, escapes, and its
postgresql:// URIs, which SQLAlchemy does not always read, such as several hosts).
"""

from __future__ import annotations

import functools

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict


@functools.cache
def public_parameters() -> frozenset[str]:
    """The parameters libpq itself shows: dispchar "" (plain). "*" marks a password field (password,
    sslpassword, oauth_client_secret) and "D" a debug option (scram_client_key, scram_server_key carry
    keys); both stay hidden, and so does any parameter this libpq does not know."""
    return frozenset(
        option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults() if option.dispchar == b""
    )


def url_from_dsn(text: str, drivername: str) -> sa.URL | None:
    """The SQLAlchemy URL for a libpq connection string (`host=db port=5432 dbname=x user=u password=p`),
    or None when libpq does not read `text` as one. Host, port, user, password and database go where a URL
    keeps them; every other parameter stays a query parameter, which the psycopg dialect hands back to
    libpq unchanged."""
    try:
        params = conninfo_to_dict(text)
    except psycopg.Error:  # its message may quote the text, which may hold a password: not passed on
        return None
    if not params:
        return None
    host, port = params.pop("host", None), params.pop("port", None)
    url = sa.URL.create(
        drivername,
        username=params.pop("user", None),
        password=params.pop("password", None),
        database=params.pop("dbname", None),
    )
    if host and _one_network_host(host) and (port is None or port.isdigit()):
        url = url.set(host=host, port=int(port) if port else None)
    else:
        # A socket folder or several hosts: the dialect hands them to libpq from the query as they are.
        located = {"host": host, "port": port}
        params = {**{k: v for k, v in located.items() if v is not None}, **params}
    return url.set(query=params)


def _one_network_host(host: str) -> bool:
    return "," not in host and not host.startswith("/") and not host.startswith("@")
