"""`deid preview`: before and after of a few rows, for allowed people only, on a throw-away database that
never outlives the command, with production and the published copy untouched."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys

import pytest
import sqlalchemy as sa

from deid.backends.postgresql import preview as pg
from deid.preview.render import cell
from deid.steps.copies import admin
from tests.refresh import ROOT, Refresh

ME = pwd.getpwuid(os.getuid()).pw_name
SHOW = "--yes-show-production-values"  # the tests' stdout is not a terminal
PEOPLE = """
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN zip5 AS text CHECK (VALUE ~ '^[0-9]{5}$');
CREATE TABLE people (
  id serial PRIMARY KEY, email text NOT NULL, zip zip5, mood mood, note text, bio text,
  is_test boolean NOT NULL DEFAULT false,
  email_len int GENERATED ALWAYS AS (length(email)) STORED
);
INSERT INTO people (email, zip, mood, note, bio, is_test)
SELECT 'person' || i || '@real-mail.example.org', '1234' || mod(i, 10), 'sad', 'secret note ' || i,
       repeat('long biography ', 10) || E'\\nsecond line', i = 1
FROM generate_series(1, 30) i;
"""
RULES = """  public.people:
    keep_rows_where: is_test
    columns:
      id: keep
      email: {class: email}
      zip: keep
      mood: keep
      note: 'null'
      bio: {transformer: keep, reason: reviewed}
      is_test: keep
      email_len: keep
"""


def allowing(*names: str) -> str:
    return "preview:\n  allowed: [" + ", ".join(f'"{n}"' for n in names) + "]\n"


def previews(refresh: Refresh) -> list[str]:
    with admin(refresh.postgres.admin_url) as c:
        found = c.execute(sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :p)"),
                          {"p": pg.PREFIX}).scalars()  # fmt: skip
        return sorted(found)


def digest(refresh: Refresh, database: str) -> list[tuple]:
    return refresh.rows(database, "SELECT md5(string_agg(p::text, '|' ORDER BY id)) FROM people p")


@pytest.fixture(autouse=True)
def _no_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)


def test_allowed_user_sees_before_and_after_as_the_night_scrubs(refresh):
    refresh.setup(PEOPLE, RULES, extra=allowing("someone-else", ME))
    assert refresh.run("2026-11-20").code == 0
    production, published = digest(refresh, refresh.production), digest(refresh, refresh.staging)
    copies = set(refresh.copies())

    shown = refresh.cli("preview", "shop", "people", "--rows", "3", SHOW)
    assert shown.code == 0, shown.err
    out = shown.out
    assert "row 3 of 3" in out and "row 4" not in out
    # row 2: the email is rewritten to the very value the night gave it; kept columns are marked equal
    night = refresh.rows(refresh.staging, "SELECT email FROM people WHERE id = 2")[0][0]
    email = next(line for line in out.splitlines() if "person2@real-mail.example.org" in line)
    assert email.split("|")[2].strip() == cell(night) and not night.startswith("person2")
    assert email.lstrip().startswith("* email")
    assert any(line.lstrip().startswith("= zip") and "12342" in line for line in out.splitlines())
    assert any(line.lstrip().startswith("* note") and "<NULL>" in line for line in out.splitlines())
    # long and multi-line values are cut for the terminal; row 1 is static test data, kept intact
    assert "\\nsecond line" not in out and "long biography long" in out and "…" in out
    assert "row 1 of 3 (static test data: kept intact)" in out
    assert any(
        line.lstrip().startswith("= email") and line.count("person1@real-mail") == 2
        for line in out.splitlines()
    )
    # nothing left behind, nothing changed
    assert previews(refresh) == []
    assert digest(refresh, refresh.production) == production
    assert digest(refresh, refresh.staging) == published
    assert set(refresh.copies()) == copies


def test_columns_limit_the_output_and_rows_are_bounded(refresh):
    refresh.setup(PEOPLE, RULES, extra=allowing(ME))
    shown = refresh.cli("preview", "shop", "public.people", "--columns", "id,email", SHOW)
    assert shown.code == 0, shown.err
    assert "row 5 of 5" in shown.out and "row 6" not in shown.out
    assert "secret note" not in shown.out and "email" in shown.out
    too_many = refresh.cli("preview", "shop", "people", "--rows", "101", SHOW)
    assert too_many.code == 2 and "--rows must be from 1 to 100" in too_many.err
    unknown = refresh.cli("preview", "shop", "people", "--columns", "emial", SHOW)
    assert unknown.code == 2 and "Did you mean 'email'?" in unknown.err
    assert previews(refresh) == []


@pytest.mark.parametrize("extra", ["", allowing("someone-else", "group:nobody-group")])
def test_a_user_not_allowed_is_refused_before_anything_is_read(refresh, extra):
    refresh.setup(PEOPLE, RULES, extra=extra)
    refused = refresh.cli("preview", "shop", "people", SHOW)
    assert refused.code == 3
    assert "preview.allowed" in refused.err and "shows production values" in refused.err
    assert f"'{ME}'" in refused.err
    assert "real-mail" not in refused.out + refused.err and refused.out == ""
    assert previews(refresh) == []


def test_a_group_allows_its_members(refresh):
    import grp

    refresh.setup(PEOPLE, RULES, extra=allowing("group:" + grp.getgrgid(os.getgid()).gr_name))
    assert refresh.cli("preview", "shop", "people", "--rows", "1", SHOW).code == 0


def test_not_a_terminal_or_ci_is_refused(refresh, monkeypatch):
    refresh.setup(PEOPLE, RULES, extra=allowing(ME))
    piped = refresh.cli("preview", "shop", "people")
    assert piped.code == 2 and SHOW in piped.err and piped.out == ""
    monkeypatch.setenv("CI", "true")
    ci = refresh.cli("preview", "shop", "people", SHOW)
    assert ci.code == 2 and "CI" in ci.err and ci.out == ""


@pytest.mark.parametrize("stop", [RuntimeError("boom"), KeyboardInterrupt()])
def test_the_throwaway_copy_is_dropped_after_a_failure_half_way(refresh, monkeypatch, stop):
    refresh.setup(PEOPLE, RULES, extra=allowing(ME))
    production = digest(refresh, refresh.production)
    seen = []

    def failing(connection, *args):
        seen.append(connection.execute(sa.text("SELECT current_database()")).scalar())
        raise stop

    monkeypatch.setattr(pg, "read_back", failing)
    failed = refresh.cli("preview", "shop", "people", SHOW)
    assert failed.code == (130 if isinstance(stop, KeyboardInterrupt) else 70)
    assert seen and seen[0].startswith(pg.PREFIX)  # it got as far as the rewritten sample
    assert "real-mail" not in failed.out + failed.err
    assert previews(refresh) == []
    assert digest(refresh, refresh.production) == production


def test_leftovers_of_a_killed_preview_are_dropped_and_a_live_one_is_not(refresh):
    refresh.setup(PEOPLE, RULES, extra=allowing(ME))
    killed, live = pg.PREFIX + "0" * 12, pg.PREFIX + "f" * 12
    with admin(refresh.postgres.admin_url) as c:
        for name in (killed, live):
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        with admin(refresh.postgres.admin_url.rsplit("/", 1)[0] + "/postgres") as holder:
            pg.hold(holder, live)  # as a preview under way holds it
            assert refresh.cli("preview", "shop", "people", "--rows", "1", SHOW).code == 0
            assert previews(refresh) == [live]
            pg.release(holder, live)
        cleaned = refresh.cli("cleanup", "shop")
        assert cleaned.code == 0 and live in cleaned.out
        assert previews(refresh) == []
    finally:
        with admin(refresh.postgres.admin_url) as c:
            for name in (killed, live):
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


def test_preview_setting_is_checked(refresh):
    refresh.setup(PEOPLE, RULES, extra="preview:\n  allowed: alice\n  users: [bob]\n")
    bad = refresh.cli("preview", "shop", "people", SHOW)
    assert bad.code == 3
    assert "preview.allowed must be a list" in bad.err and "'users'" in bad.err


# `deid preview` that stops once its sample is rewritten, saying so on stderr, until a signal ends it
PAUSED = """
import sys, time
from deid.backends.postgresql import preview
def paused(connection, *args):
    print("paused", file=sys.stderr, flush=True)
    time.sleep(60)
preview.read_back = paused
from deid.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_signal_mid_preview_leaves_nothing_or_what_cleanup_drops(refresh, signum):
    refresh.setup(PEOPLE, RULES, extra=allowing(ME))
    child = subprocess.Popen(
        [sys.executable, "-c", PAUSED, "preview", "shop", "people", SHOW],
        env={**os.environ, **refresh.env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr.readline().strip() == "paused"
        assert len(previews(refresh)) == 1
        child.send_signal(signum)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert "real-mail" not in out + err
    if signum == signal.SIGTERM:
        assert child.returncode == 143 and "stopped by SIGTERM" in err
        assert previews(refresh) == []
    else:
        assert child.returncode == -signal.SIGKILL and len(previews(refresh)) == 1
        cleaned = refresh.cli("cleanup", "shop")
        assert cleaned.code == 0 and pg.PREFIX in cleaned.out
        assert previews(refresh) == []
