"""The gauntlet, part 3: publish interrupted, runs that overlap, dates that go back, signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from deid.lock import run_lock
from deid.steps.copies import admin, set_metadata
from tests.refresh import ROOT, Refresh

# signals, locks and dates of whole runs do not depend on PostgreSQL's version (the steps' own
# behaviour is tested on every server elsewhere): the first server only, as these runs are among the slowest
pytestmark = pytest.mark.one_server

D1, D2, D3 = "2026-11-26", "2026-11-27", "2026-11-28"
STEPS = ("snapshot", "scrub", "rebase", "migrate", "validate")

PEOPLE = """
CREATE TABLE people (id serial PRIMARY KEY, email text NOT NULL);
INSERT INTO people (email) SELECT 'person' || i || '@real-mail.example.org' FROM generate_series(1, 30) i;
"""
PEOPLE_RULES = "  public.people:\n    columns: {id: keep, email: {class: email}}\n"

# `deid run --only publish` whose process dies (SIGKILL, no clean-up of any kind) right after publish has
# closed the copies to connections and while it ends their sessions: the moment a crash strands users.
KILLED_IN_PUBLISH = """
import os, signal, sys
from deid.steps import publish
publish.terminate_sessions = lambda connection, database: os.kill(os.getpid(), signal.SIGKILL)
from deid.cli import main

sys.exit(main(sys.argv[1:]))
"""


def allow_connections(refresh: Refresh) -> dict[str, bool]:
    return {name: copy.allow_connections for name, copy in refresh.copies().items()}


def test_publish_killed_half_way_strands_no_one(refresh):
    """Case 8: kill -9 inside publish left the published copy refusing connections until the next good
    publish, which then kept that old copy still closed. Now the next deid command opens it again and
    `deid status` says so."""
    refresh.setup(PEOPLE, PEOPLE_RULES)
    assert refresh.run(D1).code == 0
    for step in STEPS:
        assert refresh.run(D2, "--only", step).code == 0, step
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_PUBLISH, "run", "shop", "--date", D2, "--only", "publish"],
        env={**refresh.env, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    stranded = allow_connections(refresh)
    assert stranded[refresh.staging] is False and stranded[refresh.work(D2)] is False
    status = refresh.cli("status", "shop")
    assert status.code == 0
    assert f"repaired: {refresh.staging} accepts connections again" in status.out
    assert set(allow_connections(refresh).values()) == {True}
    assert refresh.rows(refresh.staging, "SELECT count(*) FROM people") == [(30,)]
    assert refresh.run(D2, "--only", "publish").code == 0  # the copy was never published: it still can be
    assert set(allow_connections(refresh).values()) == {True}  # and the kept copy is open too
    assert "repaired" not in refresh.cli("status", "shop").out  # nothing left to repair


def test_one_lock_per_staging_name_whatever_the_url_and_rollback_takes_it(refresh):
    """Case 9: the lock was taken in whatever database the staging URL named, and rollback took none."""
    refresh.setup(PEOPLE, PEOPLE_RULES)
    for day in (D1, D2):
        assert refresh.run(day).code == 0
    other = refresh.postgres.create_database("deid_maint")
    try:
        with run_lock(refresh.postgres.url(other), refresh.staging):  # a run reaching the server elsewhere
            busy = refresh.cli("rollback", "shop")
            assert busy.code == 4 and f"another deid run for {refresh.staging} is in progress" in busy.err
            assert refresh.run(D3).code == 4
    finally:
        refresh.postgres.drop_database(other)
    assert refresh.cli("rollback", "shop").code == 0


def test_an_airflow_run_holds_its_copy_between_tasks(refresh):
    """Case 9: between two tasks of an Airflow run the lock was free, and a CLI run dropped the run's
    working copy. The copy names its holder; the CLI refuses it, naming the run, until the run is over."""
    refresh.setup(PEOPLE, PEOPLE_RULES)
    assert refresh.run(D1).code == 0
    assert refresh.run(D2, "--only", "snapshot").code == 0
    work = refresh.work(D2)
    held = {
        "via": "airflow",
        "dag_id": "staging_refresh__shop",
        "run_id": "scheduled__2026-11-27T03:00:00+00:00",
        "since": "2026-11-27T03:00:04+00:00",
    }
    with admin(refresh.postgres.admin_url) as c:  # as the DAG's snapshot task leaves it
        set_metadata(c, work, {**refresh.copies()[work].metadata, "holder": held})
    naming = "belongs to Airflow run staging_refresh__shop/scheduled__2026-11-27T03:00:00+00:00"
    for args in (("run", "shop", "--date", D3), ("run", "shop", "--date", D2, "--only", "scrub"),
                 ("rollback", "shop"), ("cleanup", "shop")):  # fmt: skip
        refused = refresh.cli(*args)
        assert refused.code == 4 and naming in refused.err, (args, refused.err)  # retry once it is over
    assert work in refresh.copies() and refresh.state(work).poisoned is None  # refused, not touched
    forced = refresh.cli("cleanup", "shop", "--force")
    assert forced.code == 0 and work not in refresh.copies()


def test_an_older_copy_never_replaces_a_newer_one(refresh):
    """Case 10: unpausing the DAG ran the missed run of the day before, which published its older copy over
    the one published a minute earlier. It is kept for rollback instead, unless asked for."""
    refresh.setup(PEOPLE, PEOPLE_RULES)
    assert refresh.run(D2).code == 0
    older = refresh.run(D1)
    assert older.code == 0 and f"kept as {refresh.staging}__20261126, not published" in older.out
    copies = refresh.copies()
    assert copies[refresh.staging].metadata["logical_date"] == D2
    assert copies[f"{refresh.staging}__20261126"].metadata["state"] == "kept"
    history = refresh.cli("history", "shop").out
    assert f"kept {refresh.staging}__20261126" in history
    assert refresh.run(D1, "--publish-older").code == 0
    assert refresh.copies()[refresh.staging].metadata["logical_date"] == D1


BIG = """
CREATE TABLE people (id bigint PRIMARY KEY, email text NOT NULL, ssn text NOT NULL);
INSERT INTO people SELECT i, 'person' || i || '@real-mail.example.org', lpad(i::text, 9, '0')
FROM generate_series(1, 600000) i;
"""
BIG_RULES = "  public.people:\n    columns: {id: keep, email: {class: email}, ssn: {transformer: hash}}\n"


def test_sigint_and_sigterm_mid_scrub_clean_up_and_exit_130_and_143(refresh):
    """Case 12: SIGINT mid-scrub exited 70, and SIGTERM had no handler."""
    refresh.setup(BIG, BIG_RULES)
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        child = refresh.start("run", "shop", "--date", D1)
        for line in child.stdout:
            if "scrub: started" in line:
                break
        time.sleep(1.0)  # the UPDATE of 600,000 rows is under way
        child.send_signal(signum)
        out, err = child.communicate(timeout=120)
        assert child.returncode == code, err
        assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err
        assert refresh.copies() == {}  # the working copy, which held production rows, is gone


def test_a_second_database_under_one_staging_name_on_one_server_is_refused_before_any_copy(
    refresh, monkeypatch
):
    """deid.yaml refuses two databases sharing a staging name on one connection; through two connection
    names to one server it cannot tell. The copies say which database they are of: the other database's
    run stops before it copies production or drops any copy, naming the copies and the fix; its rollback
    too."""
    second = refresh.folder / "rules" / "shop2.yaml"
    refresh.setup(PEOPLE, PEOPLE_RULES, extra=(
        f"  shop2:\n    production: prod\n    staging_server: stg2\n    staging_name: {refresh.staging}\n"
        f"    salt_secret: salt\n    rules: {second}\n"
    ))  # fmt: skip
    second.write_text(f"version: 1\ndatabase: shop2\ntables:\n{PEOPLE_RULES}")
    monkeypatch.setenv("DEID_CONN_STG2", refresh.postgres.admin_url)
    assert refresh.run(D1).code == 0
    before = set(refresh.copies())
    refused = refresh.cli("run", "shop2", "--date", D2)
    assert refused.code == 1, refused.err
    assert f"{refresh.staging} on the staging server holds copies of database shop" in refused.err
    assert "staging_name of its own" in refused.err
    assert set(refresh.copies()) == before  # nothing copied, nothing dropped
    assert refresh.run(D2).code == 0  # the database the copies are of goes on
    back = refresh.cli("rollback", "shop2")  # nor may the other database swap them
    assert back.code == 1 and "holds copies of database shop" in back.err, back.err
    assert refresh.cli("rollback", "shop").code == 0
