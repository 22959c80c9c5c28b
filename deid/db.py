"""SQLAlchemy engines for the databases deid reads (production) and writes (working copies).

Engines are lazy: creating one never touches the network, so DAG files can build them at parse time and the
first connection happens in the task. A connection that cannot be opened, or that is lost, raises
TransientError (Airflow retries), except a refusal by the server (wrong password, unknown role or database):
that is a ConfigError. Messages name the server but never the password.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from deid.backends import backend_for
from deid.errors import ConfigError, TransientError

# Refusals by a server that answered: a wrong password, an unknown role or database, no pg_hba entry. They
# are configuration errors, not transient ones: Airflow must not retry them. libpq reports them at connect
# time as text only (no SQLSTATE), so they are recognised by their standard wording; MySQL by error code.
_REFUSED = re.compile(
    r"FATAL:.*(password authentication failed|does not exist|no pg_hba\.conf entry|not permitted to log in)"
)
_MYSQL_REFUSED = frozenset({1044, 1045, 1049})  # access denied to database, access denied, unknown database

# Spellings that SQLAlchemy itself does not accept but that users paste from other tools (Heroku, libpq).
_SCHEME_ALIASES = {"postgres": "postgresql"}


def normalise_url(url: str | sa.URL) -> sa.URL:
    """The URL with the backend's driver filled in: postgresql:// becomes postgresql+psycopg://.

    Raises ConfigError for text that is not a URL or names an engine deid does not know.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        # The text may hold a password, so it is not echoed.
        raise ConfigError("Not a database URL (the value is not shown: it may hold a password).") from None
    backend_name = parsed.get_backend_name()
    backend = backend_for(_SCHEME_ALIASES.get(backend_name, backend_name))
    driver = parsed.drivername.partition("+")[2] or backend.driver
    return parsed.set(drivername=f"{backend.name}+{driver}")


def safe_url(url: str | sa.URL) -> str:
    """The URL as text with its password masked, for messages and logs."""
    return sa.make_url(url).render_as_string(hide_password=True)


def engine(url: str | sa.URL, **kwargs: Any) -> sa.Engine:
    """An Engine for `url` (see normalise_url) whose connection failures raise TransientError.

    Keyword arguments go to sqlalchemy.create_engine; pool_pre_ping defaults to True because a nightly run
    holds connections across long statements and idle periods.
    """
    normalised = normalise_url(url)
    kwargs.setdefault("pool_pre_ping", True)
    created = sa.create_engine(normalised, **kwargs)
    sa.event.listen(created, "handle_error", _transient_errors(normalised))
    return created


def connect_readonly(url: str | sa.URL, **kwargs: Any) -> sa.Engine:
    """An Engine for a production database on which every transaction is read-only.

    The server enforces it (default_transaction_read_only), so a write fails with "cannot execute ... in a
    read-only transaction" whatever the code above tries. It is a safety net under deid's own discipline and
    under the production role's grants, not a replacement for them.
    """
    normalised = normalise_url(url)
    connect_args = {
        **kwargs.pop("connect_args", {}),
        **backend_for(normalised.drivername).read_only_connect_args(normalised),
    }
    return engine(normalised, connect_args=connect_args, **kwargs)


def _refused(original: BaseException | None, reason: str) -> bool:
    code = original.args[0] if original is not None and original.args else None
    return bool(_REFUSED.search(reason)) or code in _MYSQL_REFUSED


def _transient_errors(url: sa.URL):
    where = safe_url(url)
    password = url.password

    def handle_error(context: sa.engine.ExceptionContext) -> BaseException | None:
        # A failed pre-ping is handled by the pool (it reconnects); only what reaches the caller is wrapped.
        if context.is_pre_ping:
            return None
        connecting = context.connection is None and isinstance(
            context.sqlalchemy_exception, sa.exc.OperationalError
        )
        if not (connecting or context.is_disconnect):
            return None
        # The driver's first line says why (refused, timeout, authentication); it never holds row values,
        # and any echo of the password is masked all the same.
        reason = str(context.original_exception).strip().splitlines()[0] if context.original_exception else ""
        if password:
            reason = reason.replace(str(password), "***")
        verb = "Cannot connect to" if connecting else "Lost the connection to"
        if connecting and _refused(context.original_exception, reason):
            # The server answered and said no: retrying cannot help, the connection setting must change.
            return ConfigError(
                f"{verb} {where}: {reason}. Fix the connection's user, password or database name, or the "
                "server's access rules."
            )
        return TransientError(f"{verb} {where}: {reason}")

    return handle_error
