"""The test servers themselves: each configured server answers and is the version it claims."""

import sqlalchemy as sa


def test_fresh_database_is_empty_and_writable(pg_engine, postgres):
    with pg_engine.begin() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").scalar() == 0
        c.exec_driver_sql("CREATE TABLE t (x int)")
        c.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
        assert c.execute(sa.text("SELECT sum(x) FROM t")).scalar() == 3
        assert int(c.exec_driver_sql("SHOW server_version_num").scalar()) // 10000 == postgres.version
