"""DeidHook: Airflow connections and variables as deid's settings, with every secret they carry registered
with Airflow's secrets masker and hidden by deid's own rendering of URLs.

Connections come from AIRFLOW_CONN_<ID> (Airflow's JSON form, which has extras); no server is needed.
Airflow is imported inside the tests, after the airflow_home fixture has configured it (see conftest.py).
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from deid.db import safe_url, url_secrets
from deid.errors import ConfigError

PASSWORD = "p@ss word/hook-1"  # characters a URL must encode: the URI carries it as p%40ss%20word%2Fhook-1
KEY_PASSPHRASE = "ssl-key-passphrase-hook-2"
SCRAM_KEY = "c2NyYW0tY2xpZW50LWtleS1ob29rLTM="  # a name Airflow does not consider sensitive
SALT = "salt-of-the-hook-test-4"


def airflow_connection(monkeypatch, name: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps(fields))


@pytest.fixture
def hook(airflow_home):
    from deid_airflow.hook import DeidHook  # plugins/ is on sys.path once airflow_home is set up

    return DeidHook()


def redacted(text: str) -> str:
    from airflow.sdk._shared.secrets_masker import redact

    return redact(text)


def test_a_connection_with_extras_is_a_url_whose_secrets_are_masked_everywhere(hook, monkeypatch):
    airflow_connection(
        monkeypatch,
        "learners_prod",
        conn_type="postgres",
        host="db.internal",
        port=5432,
        login="deid",
        password=PASSWORD,
        schema="learners",
        extra={"sslmode": "require", "sslpassword": KEY_PASSPHRASE, "scram_client_key": SCRAM_KEY},
    )
    url = hook.connection("learners_prod")

    parsed = sa.make_url(url)
    assert (parsed.host, parsed.port, parsed.database, parsed.username, parsed.password) == (
        "db.internal",
        5432,
        "learners",
        "deid",
        PASSWORD,
    )
    assert parsed.query["sslmode"] == "require" and parsed.query["sslpassword"] == KEY_PASSPHRASE
    encoded = "p%40ss%20word%2Fhook-1"
    shown = safe_url(url)
    assert "db.internal" in shown and "sslmode=require" in shown
    for secret in (PASSWORD, encoded, KEY_PASSPHRASE, SCRAM_KEY):
        assert secret in url_secrets(url), secret
        assert secret not in shown, secret
        assert secret not in redacted(f"connecting with {url}"), secret  # Airflow's log masking


def test_the_salt_is_masked_in_airflow_logs_though_its_name_is_not_sensitive(hook, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_DEID_SALT", SALT)
    assert hook.secret("deid_salt") == SALT
    assert SALT not in redacted(f"the salt is {SALT}")


def test_extras_airflow_cannot_put_in_a_url_are_refused_without_showing_them(hook, monkeypatch):
    """An extra that is not a string makes Airflow pack all extras as JSON into one `__extra__` parameter,
    which no driver understands and no rendering of deid can tell apart from a secret."""
    airflow_connection(
        monkeypatch,
        "learners_prod",
        conn_type="postgres",
        host="db.internal",
        schema="learners",
        extra={"sslpassword": KEY_PASSPHRASE, "keepalives": 1},
    )
    with pytest.raises(ConfigError) as caught:
        hook.connection("learners_prod")
    text = str(caught.value)
    assert "Airflow connection 'learners_prod'" in text and "extras" in text
    assert KEY_PASSPHRASE not in text and "keepalives" in text


def test_a_malformed_connection_uri_names_the_connection_and_its_variable_not_its_password(hook, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_STAGING", "postgresql://deid:hook-secret-5@db.internal:notaport/x")
    with pytest.raises(ConfigError) as refused:
        hook.connection("staging")
    text = str(refused.value)
    assert "'staging'" in text and "AIRFLOW_CONN_STAGING" in text and "fix:" in text, text
    assert "port" in text and "hook-secret-5" not in text  # why, from deid's own reading of the URI
