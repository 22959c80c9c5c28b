"""The run lock on a real MySQL/MariaDB server (DEID_TEST_MYSQL_URL; CI's is MariaDB 10.11): one run per
staging name, shared holders beside each other but never beside an exclusive one, released even when the
holder is killed. The PostgreSQL twin is tests/test_lock.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.backends.mysql import lock as mysql_lock
from deid.lock import Busy, run_lock
from tests.mysql_server import MysqlServer, mysql_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
HOLDER = """
import sys, time
from deid.lock import run_lock
with run_lock(sys.argv[1], sys.argv[2]) as lock:
    print(lock.pid, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def staging():
    return f"deid_stg_{uuid.uuid4().hex[:8]}"


def performance_schema_on(server: MysqlServer) -> bool:
    engine = sa.create_engine(server.admin_url, poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        return bool(c.exec_driver_sql("SELECT @@performance_schema").scalar_one())


def test_a_second_run_is_refused_with_the_holder_named(mysql_server, staging):
    url = mysql_server.admin_url
    with run_lock(url, staging) as held:
        with pytest.raises(Busy) as raised, run_lock(url, staging):
            pass
        message = str(raised.value)
        assert message.startswith(
            f"another deid run for {staging} is in progress (connection id {held.pid} since "
        ), message
        assert re.search(r", from [^,]+:\d+", message), message  # the holder's host and port
        if performance_schema_on(mysql_server):  # MySQL 8's default; MariaDB's is off
            assert f", program deid run {staging})" in message
        with run_lock(url, staging + "_other"):
            pass  # other staging names are independent
    with run_lock(url, staging):
        pass  # released on exit


def test_the_lock_dies_with_a_killed_holder(mysql_server, staging):
    url = mysql_server.admin_url
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, staging],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        pid = int(holder.stdout.readline())
        with pytest.raises(Busy, match=rf"\(connection id {pid} since "), run_lock(url, staging):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    deadline = time.monotonic() + 10
    while True:  # the server ends the session once it notices the closed socket
        try:
            with run_lock(url, staging):
                break
        except Busy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_shared_holders_coexist_and_shut_out_an_exclusive_run(mysql_server, staging):
    """The mapped scrub tasks of one Airflow run share the lock; a CLI run is refused meanwhile, and the
    other way round."""
    url = mysql_server.admin_url
    with run_lock(url, staging, shared=True) as first, run_lock(url, staging, shared=True) as second:
        with pytest.raises(Busy) as raised, run_lock(url, staging):
            pass
        assert first.pid != second.pid
        assert "(shared by 2 sessions, the first connection id " in str(raised.value)
    with (
        run_lock(url, staging),
        pytest.raises(Busy, match="is in progress"),
        run_lock(url, staging, shared=True),
    ):
        pass
    with run_lock(url, staging, shared=True):
        with run_lock(url, staging, shared=True):
            pass
        # one shared holder left: its release of its own slot did not free the other's
        with pytest.raises(Busy, match=r"shared by 1 session, "), run_lock(url, staging):
            pass
    with run_lock(url, staging):
        pass  # every shared hold was released


def test_the_shared_holders_are_counted(mysql_server, staging, monkeypatch):
    """Past the slots one staging name has, one more shared holder is refused as busy, saying why."""
    monkeypatch.setattr(mysql_lock, "SLOTS", 2)
    url = mysql_server.admin_url
    with (
        run_lock(url, staging, shared=True),
        run_lock(url, staging, shared=True),
        pytest.raises(Busy, match="2 sessions is the most that can share it"),
        run_lock(url, staging, shared=True),
    ):
        pass
    with run_lock(url, staging, shared=True):
        pass


def test_two_urls_to_one_server_exclude_each_other(mysql_server, staging):
    """User locks are server-wide: a run whose URL names another database is still refused."""
    other = mysql_server.create_database("deid_maint")
    try:
        with (
            run_lock(mysql_server.admin_url, staging),
            pytest.raises(Busy, match="is in progress"),
            run_lock(mysql_server.url(other), staging),
        ):
            pass
    finally:
        mysql_server.drop_database(other)


def test_names_of_any_length_and_case_lock_alike(mysql_server):
    """A staging name too long for a readable lock name gets a digest; names differing only in case are one
    lock (MariaDB compares lock names byte for byte, MySQL 8 without case)."""
    url = mysql_server.admin_url
    long_name = "deid_stg_" + uuid.uuid4().hex + "_" + "x" * 20  # 62 characters
    names = [mysql_lock.lock_name(long_name), *mysql_lock.slot_names(long_name)]
    assert all(len(n) <= mysql_lock.MAX_NAME for n in names) and len(set(names)) == len(names)
    assert mysql_lock.lock_name("learners_staging") == "deid:x:learners_staging"
    with run_lock(url, long_name):
        with pytest.raises(Busy), run_lock(url, long_name, shared=True):
            pass
        with pytest.raises(Busy), run_lock(url, long_name.upper()):
            pass


def test_an_exclusive_and_a_shared_taker_racing_never_both_hold(mysql_server, staging):
    """Each takes its own lock before looking at the other kind, so the last to look sees the other."""
    url = mysql_server.admin_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    both = 0
    with engine.connect() as a, engine.connect() as b:
        for _ in range(100):
            start = threading.Barrier(2)
            got: dict[str, int | None] = {}

            def take(c, key, shared, start=start, got=got):
                start.wait()
                got[key] = mysql_lock.try_lock(c, staging, shared)

            threads = [
                threading.Thread(target=take, args=(a, "x", False)),
                threading.Thread(target=take, args=(b, "s", True)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            both += got["x"] is not None and got["s"] is not None
            if got["x"] is not None:
                mysql_lock.unlock(a, staging, False)
            if got["s"] is not None:
                mysql_lock.unlock(b, staging, True)
    engine.dispose()
    assert both == 0
