"""PyMySQL's connection settings: which URL parameters are harmless to show, and read-only sessions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from deid.errors import ConfigError

# URL query parameters the MySQL dialects hand to PyMySQL that never carry a secret: the character set,
# timeouts, and where the TLS files and the socket are (paths, not the keys themselves). Everything else
# is masked: init_command is SQL of the user's choosing (it may set a password), ssl_key_password and
# passwd are secrets, and a parameter nobody listed may be one.
PUBLIC_PARAMETERS = frozenset(
    {
        "charset",
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "ssl_ca",
        "ssl_capath",
        "ssl_cert",
        "ssl_key",
        "ssl_check_hostname",
        "unix_socket",
    }
)

# Run by PyMySQL on every connection it opens, before anything else: every later transaction of the
# session, autocommitted statements included, is read-only (a write, DDL included, fails with error 1792).
READ_ONLY = "SET SESSION TRANSACTION READ ONLY"


def read_only_connect_args(url: sa.URL) -> dict[str, Any]:
    """connect() arguments that make every transaction of the session read-only.

    The setting travels as PyMySQL's init_command, of which a connection has one: a URL that brings its own
    is refused rather than either command being dropped in silence."""
    if "init_command" in url.query:
        raise ConfigError(
            "a production URL of engine mysql may not set init_command: deid uses it to make every session "
            "read-only; remove init_command from the URL (set such session variables on the server, or as "
            "the user's defaults)"
        )
    return {"init_command": READ_ONLY}
