"""The run lock on real PostgreSQL: one run per staging name, released even when the holder is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from deid.backends.postgresql.lock import lock_key
from deid.lock import Busy, run_lock

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


def name_with_key(sign: int) -> str:
    """A fresh staging name whose key has the given sign (a bigint key is split in two oids in pg_locks)."""
    while True:
        name = f"deid_stg_{uuid.uuid4().hex[:8]}"
        if (lock_key(name) < 0) == (sign < 0):
            return name


@pytest.mark.parametrize("sign", [1, -1], ids=["positive-key", "negative-key"])
def test_a_second_run_is_refused_with_the_holder_named(postgres, sign):
    staging = name_with_key(sign)
    with run_lock(postgres.admin_url, staging) as held:
        with pytest.raises(Busy) as raised, run_lock(postgres.admin_url, staging):
            pass
        message = str(raised.value)
        assert message.startswith(
            f"another deid run for {staging} is in progress (backend pid {held.pid} since "
        )
        assert f"deid run {staging}" in message  # the holder's application_name
        with run_lock(postgres.admin_url, staging + "_other"):
            pass  # other staging names are independent
    with run_lock(postgres.admin_url, staging):
        pass  # released on exit


def test_the_lock_dies_with_a_killed_holder(postgres, staging):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, postgres.admin_url, staging],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        pid = int(holder.stdout.readline())
        with (
            pytest.raises(Busy, match=rf"backend pid {pid} "),
            run_lock(postgres.admin_url, staging),
        ):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    deadline = time.monotonic() + 10
    while True:  # the server notices the closed socket at once, but the backend takes a moment to exit
        try:
            with run_lock(postgres.admin_url, staging):
                break
        except Busy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_shared_holders_coexist_and_shut_out_an_exclusive_run(postgres, staging):
    """The mapped scrub tasks of one Airflow run share the lock; a CLI run is refused meanwhile, and the
    other way round."""
    url = postgres.admin_url
    with (
        run_lock(url, staging, shared=True),
        run_lock(url, staging, shared=True),
        pytest.raises(Busy, match="is in progress"),
        run_lock(url, staging),
    ):
        pass
    with (
        run_lock(url, staging),
        pytest.raises(Busy, match="is in progress"),
        run_lock(url, staging, shared=True),
    ):
        pass
    with run_lock(url, staging, shared=True):
        pass  # every shared hold was released


def test_two_urls_to_one_server_exclude_each_other(postgres, staging):
    """The lock is taken in one database whatever the staging URL names: a run reaching the server through
    another maintenance database is still refused (before, it ran at once and dropped the first's copy)."""
    other = postgres.create_database("deid_maint")
    try:
        with (
            run_lock(postgres.admin_url, staging),
            pytest.raises(Busy, match="is in progress"),
            run_lock(postgres.url(other), staging),
        ):
            pass
    finally:
        postgres.drop_database(other)


def test_a_refused_lock_is_retried_not_a_failure():
    """Busy is transient: the CLI exits 4 ("retry") and Airflow retries the task."""
    assert Busy("x").exit_code == 4 and Busy("x").transient


def test_keys_are_stable_signed_64_bit_integers():
    assert lock_key("learners_staging") == lock_key("learners_staging")
    assert lock_key("learners_staging") != lock_key("learners_staging2")
    keys = [lock_key(f"s{n}") for n in range(200)]
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert min(keys) < 0 < max(keys)  # both halves occur, and the holder lookup handles both
