"""DeidHook: deid's Settings (deid.config.Settings) from Airflow connections and variables.

deid.yaml names a database's connections and its salt's secret; this hook resolves those names the way the
CLI's EnvSettings resolves them from environment variables:

- connection `learners_prod` -> the Airflow connection with that id (of the engine's type, or any URI deid
  accepts);
- secret `deid_salt` -> the Airflow variable `deid_salt`, or else the password of an Airflow connection
  `deid_salt`, for teams that keep secrets only in connections.

Every secret it returns is registered with Airflow's secrets masker first: a variable named `deid_salt` is not
masked by default (Airflow masks names that contain "secret", "password", ...), and the salt must never reach
a log; nor must a connection's password, wherever its URL carries it (deid.db.url_secrets).
"""

from __future__ import annotations

from airflow.sdk import BaseHook, Connection, Variable
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from deid.backends import DEFAULT_ENGINE, backend_for
from deid.config import env_name
from deid.db import connection_url, url_secrets
from deid.errors import ConfigError, MissingSetting


class DeidHook(BaseHook):
    """Resolves the connection and secret names of deid.yaml from Airflow (implements deid's Settings)."""

    hook_name = "deid"

    def connection(self, name: str) -> str:
        try:
            conn = self.get_connection(name)
        except AirflowNotFoundException:
            _refuse_unreadable_variable(name)
            raise MissingSetting(
                "connection",
                name,
                [
                    f"Airflow connection '{name}' (UI: Admin > Connections, or `airflow connections add`)",
                    f"environment variable AIRFLOW_CONN_{env_name(name)}",
                ],
                "Create it with the engine's type, or as a URI such as "
                f"{backend_for(DEFAULT_ENGINE).url_example}.",
            ) from None
        what = f"Airflow connection '{name}' (type {conn.conn_type or 'unset'})"
        uri = conn.get_uri()
        if f"{Connection.EXTRA_KEY}=" in uri.partition("?")[2]:
            # Airflow packs all extras as JSON into one parameter when one is not a string: no driver reads
            # it, and deid could not tell its secrets from the rest. The names say which to fix, not values.
            packed = sorted(k for k, v in conn.extra_dejson.items() if not isinstance(v, str))
            raise ConfigError(
                f"{what} has extras that are not strings ({', '.join(packed) or 'not a JSON object'}): deid "
                "passes extras to the driver as URL query parameters, so each must be a string."
            )
        url = connection_url(uri, what)
        # Airflow masks the connection's password as it is, but a URL spells it percent-encoded, and extras
        # such as scram_client_key carry secrets under names Airflow does not deem sensitive.
        for secret in url_secrets(url):
            mask_secret(secret)
        return url

    def secret(self, name: str) -> str:
        value = Variable.get(name, default=None)
        if not value:
            value = self._connection_password(name)
        if not value:
            raise MissingSetting(
                "secret",
                name,
                [
                    f"Airflow variable '{name}' (or environment variable AIRFLOW_VAR_{env_name(name)})",
                    f"the password of Airflow connection '{name}'",
                ],
                "Set one to the secret's value (it is masked in logs and never written by deid).",
            )
        # No name: given one, Airflow masks the value only if the name looks sensitive; "deid_salt" does not.
        mask_secret(value)
        return str(value)

    def _connection_password(self, name: str) -> str | None:
        try:
            return self.get_connection(name).password
        except AirflowNotFoundException:
            return None


def _refuse_unreadable_variable(name: str) -> None:
    """ConfigError when AIRFLOW_CONN_<NAME> is set but Airflow found no connection in it: Airflow logs its
    parse error (a port that is not a number, say) and answers "not defined", which would send the reader
    looking for a setting that is there. The value is never shown; deid's own reading of it says why,
    when it is a URI."""
    import os

    variable = f"AIRFLOW_CONN_{env_name(name)}"
    value = os.environ.get(variable, "").strip()
    if not value:
        return
    what = f"Airflow connection '{name}' (environment variable {variable})"
    if not value.startswith("{"):
        connection_url(value, what)  # deid's reading says why, naming the same connection
    raise ConfigError(
        f"{what} is set, but Airflow cannot read it (the value is not shown: it may hold a password)\n"
        f"    fix: set it to a URI such as {backend_for(DEFAULT_ENGINE).url_example}, or to Airflow's JSON "
        "form of a connection"
    )
