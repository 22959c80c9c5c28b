"""Connection URLs for humans and for the records' last guard: one rendering that hides every secret a URL
can carry, one list of those secrets, and libpq key=value strings read once into URLs (deid.db)."""

from __future__ import annotations

import datetime as dt

import psycopg.conninfo
import pytest
import sqlalchemy as sa

from deid.db import connection_url, safe_url, url_secrets
from deid.errors import ConfigError, DeidError

SECRET = "s3cret-in-query-1"
KEY_PASSPHRASE = "key-passphrase-2"
OAUTH = "oauth-client-secret-3"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://deid@db.internal:5432/learners?password={SECRET}",
        f"postgresql+psycopg://deid@db.internal:5432/learners?sslmode=require&password={SECRET}",
        f"postgresql://deid:{SECRET}@db.internal:5432/learners",
        f"postgres://deid@db.internal:5432/learners?sslpassword={SECRET}&sslkey=/keys/deid.key",
        f"postgresql://deid@db.internal:5432/learners?oauth_client_secret={SECRET}",
        f"postgresql://deid@db.internal:5432/learners?scram_client_key={SECRET}",
        f"postgresql://deid@db.internal:5432/learners?password={SECRET}&password=other-{SECRET}",
    ],
)
def test_safe_url_hides_the_password_wherever_the_url_carries_it(url):
    shown = safe_url(url)
    assert SECRET not in shown
    assert "db.internal:5432/learners" in shown and "deid" in shown  # what a person needs to find the server
    assert "***" in shown


def test_safe_url_keeps_the_parameters_that_carry_no_secret():
    shown = safe_url(
        f"postgresql://deid@db.internal/learners?sslmode=verify-full&password={SECRET}"
        "&application_name=deid&options=-c%20statement_timeout%3D0"
    )
    assert "sslmode=verify-full" in shown and "application_name=deid" in shown
    assert "password=***" in shown and SECRET not in shown
    assert "statement_timeout" in shown


def test_safe_url_hides_parameters_the_driver_does_not_know():
    """An unknown parameter may be a secret under a name nobody listed: hidden, not guessed."""
    shown = safe_url("postgresql://deid@db/learners?api_token=abcdefgh-9&sslmode=require")
    assert "abcdefgh-9" not in shown and "api_token=***" in shown and "sslmode=require" in shown


def test_safe_url_never_echoes_text_that_is_not_a_url():
    text = f"host=db user=deid password={SECRET}"
    shown = safe_url(text)
    assert SECRET not in shown and "not shown" in shown


def test_url_secrets_lists_every_secret_and_its_url_encoded_forms():
    url = (
        "postgresql://deid:p%40ss%20word%2F1@db/learners"
        f"?password={SECRET}&sslpassword={KEY_PASSPHRASE}&oauth_client_secret={OAUTH}&sslmode=require"
    )
    secrets = url_secrets(url)
    for expected in ("p@ss word/1", "p%40ss%20word%2F1", "p%40ss+word%2F1", SECRET, KEY_PASSPHRASE, OAUTH):
        assert expected in secrets, expected
    assert "require" not in secrets and "deid" not in secrets and "learners" not in secrets
    assert url_secrets("postgresql://deid@db/learners?sslmode=require") == []


def test_url_secrets_of_text_that_is_not_a_url_is_the_whole_text():
    assert url_secrets("not a url at all, password=x") == ["not a url at all, password=x"]


def test_a_record_holding_a_password_given_as_a_query_parameter_is_refused():
    from deid.records.record import check_clean
    from deid.run import secrets_of
    from deid.steps.context import RunContext

    ctx = RunContext(
        config=None,
        database=None,
        logical_date=dt.date(2026, 11, 28),
        production_url=f"postgresql://deid@db/prod?password={SECRET}",
        staging_server_url=f"postgresql://deid@db/postgres?sslpassword={KEY_PASSPHRASE}",
        salt="a-salt-for-this-test",
    )
    check_clean(
        {"error": "Cannot connect to postgresql+psycopg://deid@db/prod?password=***"}, secrets_of(ctx)
    )
    for leaked in (SECRET, KEY_PASSPHRASE):
        with pytest.raises(DeidError, match="holds a secret"):
            check_clean(
                {"error": f"Cannot connect to postgresql+psycopg://deid@db/prod?x={leaked}"}, secrets_of(ctx)
            )


# libpq key=value strings (what psql, pg_dump and most tools print) become the URL they mean.

DSN = "host=127.0.0.1 port=5432 dbname=learners user=deid password=x sslmode=prefer application_name='deid a'"


def test_a_libpq_dsn_becomes_the_equivalent_url():
    url = sa.make_url(connection_url(DSN, "connection 'learners_prod'"))
    assert (url.drivername, url.host, url.port, url.database, url.username, url.password) == (
        "postgresql+psycopg",
        "127.0.0.1",
        5432,
        "learners",
        "deid",
        "x",
    )
    assert dict(url.query) == {"sslmode": "prefer", "application_name": "deid a"}


@pytest.mark.parametrize(
    "dsn",
    [
        DSN,
        "host=/var/run/postgresql dbname=learners user=deid",  # a socket folder
        "host=db1,db2 port=5432,5433 dbname=learners target_session_attrs=read-write",  # several hosts
        "host=db1 hostaddr=10.0.0.1 port=6432 dbname=learners options='-c x=y' sslpassword=k3y-pass",
        "postgresql://deid@db1:5432,db2:5433/learners?sslmode=require",  # a libpq URI SQLAlchemy cannot read
        "service=learners",
    ],
)
def test_the_driver_gets_from_the_url_what_the_dsn_said(dsn):
    """What SQLAlchemy hands psycopg for the converted URL is, once psycopg builds its conninfo, what the
    DSN itself says: no parameter lost, renamed or added."""
    url = sa.make_url(connection_url(dsn, "connection 'x'"))
    dialect = url.get_dialect()()
    args, kwargs = dialect.create_connect_args(url)
    sent = psycopg.conninfo.conninfo_to_dict(psycopg.conninfo.make_conninfo(*args, **kwargs))
    expected = psycopg.conninfo.conninfo_to_dict(dsn)
    assert sent == expected


def test_a_url_is_kept_as_it_was_given():
    url = "postgresql://deid:pw@db.internal:5432/learners?sslmode=require"
    assert connection_url(url, "connection 'x'") == url


@pytest.mark.parametrize(
    "text",
    [
        f"hostname=db password={SECRET}",  # not a libpq keyword
        f"db.internal:5432/learners {SECRET}",
        f"{SECRET}",
        "  ",
        f"oracle://deid:{SECRET}@db/learners",  # an engine deid does not know
    ],
)
def test_what_is_neither_a_url_nor_a_dsn_is_a_config_error_naming_the_connection(text):
    with pytest.raises(ConfigError) as caught:
        connection_url(text, "connection 'learners_prod' (environment variable DEID_CONN_LEARNERS_PROD)")
    message = str(caught.value)
    assert message.startswith(
        "connection 'learners_prod' (environment variable DEID_CONN_LEARNERS_PROD) is not a database URL"
    )
    assert SECRET not in message and caught.value.exit_code == 3
