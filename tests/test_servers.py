"""The test servers themselves: each configured server answers and is the version it claims."""

import pytest
import sqlalchemy as sa


def test_fresh_database_is_empty_and_writable(pg_engine, postgres):
    with pg_engine.begin() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").scalar() == 0
        c.exec_driver_sql("CREATE TABLE t (x int)")
        c.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
        assert c.execute(sa.text("SELECT sum(x) FROM t")).scalar() == 3
        assert int(c.exec_driver_sql("SHOW server_version_num").scalar()) // 10000 == postgres.version


@pytest.mark.parametrize("change", ["database", "username"])
def test_a_refused_connection_is_a_config_error_not_a_transient_one(postgres, change):
    """A server that answers "no such database/role" will say it again: no retry (exit 3), password hidden."""
    from deid.db import engine
    from deid.errors import ConfigError

    url = sa.make_url(postgres.admin_url).set(**{change: "deid_no_such_thing", "password": "s3cret-pw"})
    eng = engine(url.render_as_string(hide_password=False))
    with pytest.raises(ConfigError) as caught:
        eng.connect()
    eng.dispose()
    assert "deid_no_such_thing" in str(caught.value) and "s3cret-pw" not in str(caught.value)
