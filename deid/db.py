"""SQLAlchemy engines for the databases deid reads (production) and writes (working copies).

Engines are lazy: creating one never touches the network, so DAG files can build them at parse time and the
first connection happens in the task. A connection that cannot be opened, or that is lost, raises
TransientError (Airflow retries), except a refusal by the server (wrong password, unknown role or database):
that is a ConfigError. Messages name the server but never the password.

Connection settings as text: `connection_url` reads one (a URL, or an engine's own connection string) into
the URL every other part of deid works with; `safe_url` is the one way a URL is shown to people; and
`url_secrets` lists what a URL carries that must not be shown or written (for the records' last guard).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import sqlalchemy as sa

from deid.backends import DEFAULT_ENGINE, Backend, backend_for, url_from_dsn
from deid.errors import BadConnectionSettings, ConfigError, TransientError

MASK = "***"  # what people see instead of a secret, as SQLAlchemy shows a hidden password
NOT_SHOWN = "(a connection string, not shown: it may hold a password)"


def normalise_url(url: str | sa.URL) -> sa.URL:
    """The URL with the backend's driver filled in (a URL naming the engine alone gets its usual driver).

    Raises ConfigError for text that is not a URL or names an engine deid does not know.
    """
    parsed = _parse(url)
    if parsed is None:
        # The text may hold a password, so it is not echoed.
        raise ConfigError("Not a database URL (the value is not shown: it may hold a password).")
    backend_name = parsed.get_backend_name()
    backend = backend_for(backend_name)
    driver = parsed.drivername.partition("+")[2] or backend.driver
    return parsed.set(drivername=f"{backend.name}+{driver}")


def backend_of(url: str | sa.URL) -> Backend:
    """The backend of the engine a URL names (ConfigError as normalise_url's)."""
    return backend_for(normalise_url(url).get_backend_name())


def connection_url(text: str, what: str) -> str:
    """The connection setting `text` as a database URL: a URL as it was given, an engine's own connection
    string (`host=... dbname=...`) as the URL meaning the same, so nothing after this sees another
    form. `what` names the setting in errors, such as "connection 'learners_prod' (environment variable
    DEID_CONN_LEARNERS_PROD)"; the value is never shown.

    Raises ConfigError for text that is neither, or a URL of an engine deid does not know.
    """
    url = _parse(text)
    if url is None:
        url = url_from_dsn(text)
        if url is None:
            raise ConfigError(
                f"{what} is not a database URL such as {backend_for(DEFAULT_ENGINE).url_example}, nor a "
                "key=value connection string such as 'host=db port=5432 dbname=x user=u' (the value is not "
                "shown: it may hold a password)."
            )
        text = url.render_as_string(hide_password=False)
    try:
        _check_arguments(normalise_url(url))
    except ConfigError as error:
        raise ConfigError(
            f"{what} is not a database URL deid can use: {error}\n    fix: set it to a URL such as "
            f"{backend_for(DEFAULT_ENGINE).url_example} (the value is not shown: it may hold a password)"
        ) from None
    return text


def _check_arguments(url: sa.URL) -> None:
    """ConfigError for what would fail before any server is dialled (a port that is not a number from 1 to
    65535, a driver that is not installed, an argument the driver's dialect cannot read), so that a
    malformed setting is a configuration error found when it is read, not a crash at its first use."""
    if url.port is not None and not 0 < url.port < 65536:
        raise ConfigError(f"port {url.port} is not a port number (1 to 65535)")
    try:
        sa.create_engine(url).dispose()  # reads the arguments and loads the driver; dials nothing
    except sa.exc.NoSuchModuleError:
        raise ConfigError(f"no driver '{url.drivername}' is installed") from None
    except (sa.exc.ArgumentError, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        for secret in url_secrets(url):
            reason = reason.replace(secret, MASK)
        raise ConfigError(f"its arguments cannot be read ({reason})") from None


def safe_url(url: str | sa.URL) -> str:
    """The URL for people (messages, logs): its password masked, whether in the userinfo or a query
    parameter, and so is every query parameter the engine does not know to be harmless. Text that is not a
    URL is not shown at all."""
    parsed = _parse(url)
    if parsed is None:
        return NOT_SHOWN
    public = _public_parameters(parsed)
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    query = [(key, value if key in public else MASK) for key, value in _query_items(parsed)]
    return f"{shown}?{urlencode(query, safe='*/')}" if query else shown


def url_secrets(url: str | sa.URL) -> list[str]:
    """What `url` carries that must never be shown or written: its password, the values of the parameters
    safe_url masks, each also as URLs spell it (SQLAlchemy's userinfo and query quoting, Airflow's), since
    a text that quotes the URL holds that spelling. Text that is not a URL is itself the secret."""
    parsed = _parse(url)
    if parsed is None:
        return [str(url)]
    public = _public_parameters(parsed)
    values = [parsed.password, *(value for key, value in _query_items(parsed) if key not in public)]
    spellings = (
        str,
        lambda v: quote(v, safe=""),
        lambda v: quote(v, safe=" +"),
        quote_plus,
    )
    return list(dict.fromkeys(spell(str(v)) for v in values if v for spell in spellings))


def _parse(url: str | sa.URL) -> sa.URL | None:
    try:
        return sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        return None


def _public_parameters(url: sa.URL) -> frozenset[str]:
    name = url.get_backend_name()
    try:
        return backend_for(name).public_parameters()
    except ConfigError:  # an engine deid does not know: none of its parameters is known to be harmless
        return frozenset()


def _query_items(url: sa.URL) -> Iterator[tuple[str, str]]:
    for key, value in url.query.items():
        for one in value if isinstance(value, tuple) else (value,):
            yield key, one


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


def _transient_errors(url: sa.URL):
    where = safe_url(url)
    backend = backend_for(url.get_backend_name())
    # Shorter values would mask innocent characters of the message (a parameter "1" would hide port digits).
    secrets = [secret for secret in url_secrets(url) if len(secret) >= 4]

    def handle_error(context: sa.engine.ExceptionContext) -> BaseException | None:
        # A failed pre-ping is handled by the pool (it reconnects); only what reaches the caller is wrapped.
        if context.is_pre_ping:
            return None
        connecting = context.connection is None and isinstance(
            context.sqlalchemy_exception, sa.exc.OperationalError
        )
        if context.connection is None and isinstance(context.sqlalchemy_exception, sa.exc.ProgrammingError):
            # the driver refused the connection's arguments before dialling (an unknown option): no retry
            # helps; its message names the option, never a value
            return BadConnectionSettings(
                f"Cannot connect to {where}: {_masked(context.original_exception, secrets)}. Fix the "
                "connection's parameters."
            )
        if not (connecting or context.is_disconnect):
            return None
        # The driver's first line says why (refused, timeout, authentication); it never holds row values,
        # and any echo of the password is masked all the same.
        reason = _masked(context.original_exception, secrets)
        verb = "Cannot connect to" if connecting else "Lost the connection to"
        # Refusals by a server that answered (a wrong password, an unknown role or database) are
        # configuration errors, not transient ones: Airflow must not retry them.
        if connecting and backend.bad_settings(context.original_exception, reason):
            return BadConnectionSettings(f"{verb} {where}: {reason}. Fix the connection's parameters.")
        if connecting and backend.refused(context.original_exception, reason):
            # The server answered and said no: retrying cannot help, the connection setting must change.
            return ConfigError(
                f"{verb} {where}: {reason}. Fix the connection's user, password or database name, or the "
                "server's access rules."
            )
        return TransientError(f"{verb} {where}: {reason}")

    return handle_error


def _masked(error: BaseException | None, secrets: list[str]) -> str:
    """The first line of a driver's error, any echo of a secret masked."""
    reason = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""
    for secret in secrets:
        reason = reason.replace(secret, MASK)
    return reason
