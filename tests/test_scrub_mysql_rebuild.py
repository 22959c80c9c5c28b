"""Tables without a key on MySQL/MariaDB (deid.backends.mysql.rebuild): rebuilt into a new table and swapped
in by one RENAME TABLE. Against a real server: the rows are those the keyed UPDATE gives the same table with a
key (every column of every type carried exactly, static rows untouched, duplicate rows kept), the definition
is the same (foreign keys and their names, indexes, counter, comment, triggers in their order), no trigger
fires; a scrub stopped at each step, or SIGKILLed, is taken up by the retry; what cannot be rebuilt is
refused before anything is written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid.backends import backend_for
from deid.backends.mysql import rebuild, scrub_ledger, triggers_off
from deid.backends.mysql import scrub as mysql_scrub
from deid.backends.scrubbing import Scrubbing
from deid.errors import TerminalError
from deid.rules.load import load_rules
from deid.steps.scrub import scrub_database
from deid.vector.apply import new_tally
from deid.vector.prf import Key
from tests.conftest import ROOT
from tests.mysql_server import mysql_engine, mysql_server, mysql_url, run  # noqa: F401

SALT = "mysql-rebuild-test-salt-not-a-secret"
ROWS = 400
# every kind of column the rebuild carries: its text must read back as the very same value
COLUMNS = """
    n int NOT NULL AUTO_INCREMENT,
    person int NULL,
    other int NULL,
    at datetime(6) NOT NULL,
    stamp timestamp(3) NULL,
    day date NULL,
    clock time(2) NULL,
    yr year NULL,
    email varchar(80) NULL,
    note text NULL,
    fixed char(6) NULL,
    latin varchar(20) CHARACTER SET latin1 NULL,
    raw blob NULL,
    bin binary(4) NULL,
    f float NULL,
    d double NULL,
    amount decimal(12,3) NULL,
    bits bit(5) NULL,
    spot point NULL,
    mood enum('ok','sad','meh') NULL,
    flags set('a','b','c') NULL,
    doc json NULL,
    is_test tinyint(1) NOT NULL DEFAULT 0,
    shown varchar(90) AS (CONCAT('<', email, '>')) VIRTUAL,
    kept varchar(90) AS (UPPER(note)) STORED
"""
SETUP = [
    "CREATE TABLE people (id int PRIMARY KEY, code varchar(40))",
    f"""CREATE TABLE log ({COLUMNS},
        KEY (n), KEY at_idx (at), UNIQUE KEY email_u (email), FULLTEXT KEY note_ft (note),
        CONSTRAINT log_person FOREIGN KEY (person) REFERENCES people (id),
        FOREIGN KEY (other) REFERENCES people (id) ON DELETE SET NULL
    ) COMMENT = 'an append-only log: no key' AUTO_INCREMENT = 5000""",
    # the same table with a key: the keyed UPDATE's result is the reference (a foreign key references it,
    # so it is never rebuilt however narrow its rows)
    f"CREATE TABLE log_keyed ({COLUMNS}, k int NOT NULL PRIMARY KEY, KEY (n))",
    "CREATE TABLE keyed_refs (k int, FOREIGN KEY (k) REFERENCES log_keyed (k))",
    "CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, what varchar(20))",
]
TRIGGERS = [  # made after the rows are in
    "CREATE TRIGGER log_b_ins BEFORE INSERT ON log FOR EACH ROW SET NEW.note = CONCAT(NEW.note, '!')",
    "CREATE TRIGGER log_b_ins2 BEFORE INSERT ON log FOR EACH ROW FOLLOWS log_b_ins SET NEW.n = NEW.n",
    "CREATE TRIGGER log_a_upd AFTER UPDATE ON log FOR EACH ROW INSERT INTO audit (what) VALUES ('updated')",
    "CREATE TRIGGER log_a_del AFTER DELETE ON log FOR EACH ROW INSERT INTO audit (what) VALUES ('deleted')",
]
CARRIED = ("n", "person", "other", "stamp", "day", "clock", "yr", "fixed", "latin", "raw", "bin", "f", "d",
           "amount", "bits", "spot", "mood", "flags", "is_test")  # fmt: skip
REWRITTEN = ("at", "email", "note", "doc", "shown", "kept")  # and the generated columns made of them
READ = ", ".join(
    f"HEX(`{c}`)" if c in ("raw", "bin", "spot") else f"BIN(`{c}`)" if c == "bits" else f"`{c}`"
    for c in (*CARRIED, *REWRITTEN)
)
RULES = """version: 1
database: logs
tables:
  public.people:
    columns: {id: keep, code: keep}
  public.audit:
    columns: {id: keep, what: keep}
  public.keyed_refs:
    columns: {k: keep}
  public.TABLE:
    keep_rows_where: is_test = 1
    triggers:
      log_a_upd: {silent: "audit rows only"}
    columns:
      n: keep
      person: keep
      other: keep
      at: {transformer: shift_date, params: {by: person}}
      stamp: keep
      day: keep
      clock: keep
      yr: keep
      email: {transformer: hash, params: {format: email}}
      note: {transformer: redact, params: {keep_start: 2, keep_end: 0}}
      fixed: keep
      latin: keep
      raw: keep
      bin: keep
      f: keep
      d: keep
      amount: keep
      bits: keep
      spot: keep
      mood: keep
      flags: keep
      doc: {transformer: json, params: {paths: {$.email: fake.email}}}
      is_test: keep
      shown: keep
      kept: keep
EXTRA
"""


def _row(i: int) -> dict:
    # rows 51, 101, ... are the same as the row before them: a key-less table may hold both
    dup = i % 50 == 1 and i > 1 and (i - 1) % 100 != 0
    j = i - 1 if dup else i
    return {
        "n": j % 7,  # not unique: AUTO_INCREMENT needs an index, not a key
        "person": 1 + j % 5,
        "other": None if j % 3 else 2,
        "at": f"2021-0{1 + j % 9}-1{j % 10} 10:{j % 60:02d}:00.{j:06d}",
        "stamp": None if j % 4 == 0 else f"2022-03-27 0{j % 4}:30:{j % 60:02d}.{j % 1000:03d}",
        "day": None if j % 6 == 0 else f"{1000 + j % 8000}-01-31",
        "clock": f"{-30 + j % 60}:0{j % 10}:59.{j % 100:02d}",
        "yr": 1901 + j % 250,
        "email": None if j % 50 == 0 or j % 9 == 0 else f"person{j}@corp.example",  # unique (NULLs aside)
        "note": ["a,b", 'say "hi"', "line\nbreak", "back\\slash", "it's", "", "Zoë 東京", None][j % 8],
        "fixed": f"c{j}  " if j % 2 else "",
        "latin": "café Ñ" if j % 2 else "plain",
        "raw": None if j % 5 == 0 else bytes([j % 256, 0, 255, 39, 92, 10]),
        "bin": bytes([j % 256, 1]),
        "f": [0.1, 3.4028234e38, -1.5e-7, 123456789.0][j % 4],
        "d": [0.1, 1e-300, -2.5, 1 / 3][j % 4],
        "amount": f"{j * 13 - 2000}.{j % 1000:03d}",
        "bits": j % 32,
        "spot": f"POINT({j % 90} {-j % 45})",
        "mood": [None, "ok", "sad", "meh"][j % 4],
        "flags": ["", "a", "a,c", "b,c"][j % 4],
        "doc": f'{{"email": "d{j}@corp.example", "n": {j}}}',
        "is_test": int(j % 100 == 0),
    }


def _fill(engine: sa.Engine, table: str, rows: int = ROWS) -> None:
    names = list(_row(1))
    values = ", ".join("ST_GeomFromText(:spot, 4326)" if n == "spot" else f":{n}" for n in names)
    keyed = table == "log_keyed"
    with engine.begin() as c:
        c.exec_driver_sql("SET SESSION time_zone = '+00:00'")
        c.exec_driver_sql("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES'")  # n = 0 kept
        c.execute(
            sa.text(
                f"INSERT INTO {table} ({', '.join(names)}{', k' if keyed else ''}) "
                f"VALUES ({values}{', :k' if keyed else ''})"
            ),
            [{**_row(i), "k": i} for i in range(1, rows + 1)],
        )


def _setup(engine: sa.Engine, tmp_path, rows: int = ROWS, extra: str = "") -> planning.Plan:
    run(engine, SETUP)
    run(engine, ["INSERT INTO people VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e')"])
    _fill(engine, "log", rows)
    _fill(engine, "log_keyed", rows)
    run(engine, TRIGGERS)
    return _plan(engine, tmp_path, extra)


def _plan(engine: sa.Engine, tmp_path, extra: str = "", triggers: str = "") -> planning.Plan:
    table = RULES.split("  public.TABLE:", 1)[1].replace("EXTRA\n", "")
    table = table.replace('    triggers:\n      log_a_upd: {silent: "audit rows only"}\n', "")  # log's
    text = RULES.replace("EXTRA\n", extra).replace("public.TABLE:", "public.log:")
    silent = '      log_a_upd: {silent: "audit rows only"}\n'
    text = text.replace(silent, triggers + silent, 1)
    text += "  public.log_keyed:" + table.replace("      kept: keep\n", "      kept: keep\n      k: keep\n")
    path = tmp_path / "logs.yaml"
    path.write_text(text)
    with engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "logs")
    return planning.build_plan(load_rules(path), schema)


def _all(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as c:
        c.exec_driver_sql("SET SESSION time_zone = '+00:00'")
        return [tuple(r) for r in c.exec_driver_sql(sql)]


def _rows(engine: sa.Engine, table: str) -> Counter:
    return Counter(_all(engine, f"SELECT {READ} FROM {table}"))


def _definition(engine: sa.Engine, table: str = "log") -> str:
    return _all(engine, f"SHOW CREATE TABLE {table}")[0][1]


def _triggers(engine: sa.Engine) -> list[tuple]:
    return _all(
        engine,
        "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, ACTION_STATEMENT "
        "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1",
    )


def _leftovers(engine: sa.Engine) -> list[str]:
    return [r[0] for r in _all(engine, "SHOW TABLES") if r[0].startswith("_deid")]


def test_a_table_without_a_key_is_rebuilt_with_the_rows_the_keyed_update_gives(mysql_engine, tmp_path):  # noqa: F811
    plan = _setup(mysql_engine, tmp_path)
    definition, triggers = _definition(mysql_engine), _triggers(mysql_engine)
    before = _rows(mysql_engine, "log")
    assert before == _rows(mysql_engine, "log_keyed") and sum(before.values()) == ROWS
    assert max(before.values()) == 2, "duplicate rows"
    results = {r.table: r for r in scrub_database(mysql_engine, plan, SALT)}
    assert (results["public.log"].action, results["public.log"].rows) == ("rebuilt", ROWS - ROWS // 100)
    assert (results["public.log_keyed"].action, results["public.log_keyed"].rows) == (
        "streamed",
        ROWS - ROWS // 100,
    )
    after = _rows(mysql_engine, "log")
    assert after == _rows(mysql_engine, "log_keyed"), "the rebuild gives the keyed UPDATE's rows"
    assert after != before and sum(after.values()) == ROWS
    carried = Counter(r[: len(CARRIED)] for r in after.elements())
    assert carried == Counter(r[: len(CARRIED)] for r in before.elements()), "every other column exact"
    static = [r for r in before.elements() if r[CARRIED.index("is_test")] == 1]
    assert len(static) == ROWS // 100 and all(after[r] == before[r] for r in static), "static rows untouched"
    assert _definition(mysql_engine) == definition, "foreign keys, indexes, counter, comment"
    assert _triggers(mysql_engine) == triggers, "every trigger back, in its order"
    assert _all(mysql_engine, "SELECT COUNT(*) FROM audit") == [(0,)], "no trigger fired"
    assert not any("!" in (r[len(CARRIED) + 2] or "") for r in after), "the BEFORE INSERT trigger did not"
    assert _leftovers(mysql_engine) == []
    assert results["public.log"].tallies["email"]["rows"] == ROWS - ROWS // 100


def _prepared(engine: sa.Engine, plan: planning.Plan):
    with engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "logs")
    mysql_scrub.prepare_scrub(engine, plan, schema, Scrubbing())
    table_plan = plan.table("public.log")
    way = mysql_scrub._way_of(schema, table_plan)
    assert isinstance(way, rebuild.Rebuilt)
    return schema, way


def _stop_at(engine: sa.Engine, plan: planning.Plan, step: str) -> None:
    """The rebuild of public.log as a scrub killed at `step` leaves it."""
    schema, rebuilt = _prepared(engine, plan)
    with mysql_scrub._session(engine) as writer:
        if step == "filling":  # the new table made and partly filled, the old one's keys and triggers gone
            definition = writer.exec_driver_sql("SHOW CREATE TABLE log").one()[1]
            scrub_ledger.note_rebuild(writer, "public.log", "filling", definition)
            writer.exec_driver_sql("ALTER TABLE log DROP FOREIGN KEY log_person")
            triggers_off.set_aside(writer, "public.log", "log", (), every_event=True)
            new = rebuild._renamed(
                definition.replace("CONSTRAINT `log_person` ", ""), "log", rebuilt.names[0]
            )
            writer.exec_driver_sql(new.replace("CONSTRAINT `log_ibfk_1` ", ""))
            writer.exec_driver_sql(f"INSERT INTO {rebuilt.names[0]} (at) VALUES ('2000-01-01')")
            return
        tally = new_tally(rebuilt.columns)
        with mysql_scrub._session(engine) as reader:
            rebuild.fill(writer, reader, rebuilt, "public.log", Key.for_salt(SALT), tally)
        tally.close()
        if step == "renamed":
            rebuild._rename(writer, rebuilt)
        elif step == "swapped":  # and the old table dropped, the triggers back: only the ledger's note left
            rebuild.swap(writer, rebuilt, "public.log")


@pytest.mark.parametrize("step", ["filling", "complete", "renamed", "swapped"])
def test_a_rebuild_stopped_at_each_step_is_taken_up_by_the_retry(mysql_engine, tmp_path, step):  # noqa: F811
    plan = _setup(mysql_engine, tmp_path, rows=120)
    definition, triggers = _definition(mysql_engine), _triggers(mysql_engine)
    _stop_at(mysql_engine, plan, step)
    results = {r.table: r for r in scrub_database(mysql_engine, plan, SALT)}
    assert (results["public.log"].action, results["public.log"].rows) == ("rebuilt", 120 - 1)
    assert _rows(mysql_engine, "log") == _rows(mysql_engine, "log_keyed"), "scrubbed once, as the keyed table"
    assert _definition(mysql_engine) == definition and _triggers(mysql_engine) == triggers
    assert _leftovers(mysql_engine) == []


CHILD = """
import sys
import sqlalchemy as sa
from tests.test_scrub_mysql_rebuild import SALT, _plan_for_child
from deid.steps.scrub import scrub_database
engine = sa.create_engine(sys.argv[1], poolclass=sa.pool.NullPool)
scrub_database(engine, _plan_for_child(engine, sys.argv[2]), SALT)
"""


def _plan_for_child(engine: sa.Engine, folder: str):
    from pathlib import Path

    return _plan(engine, Path(folder))


def test_a_rebuild_sigkilled_mid_stream_is_taken_up_by_the_retry(mysql_engine, mysql_url, tmp_path):  # noqa: F811
    rows = 30_000
    plan = _setup(mysql_engine, tmp_path, rows=rows)
    definition, triggers = _definition(mysql_engine), _triggers(mysql_engine)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, mysql_url, str(tmp_path)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        filled = 0
        while time.monotonic() < deadline and child.poll() is None and filled == 0:
            found = [t for t in _leftovers(mysql_engine) if t.startswith(rebuild.NEW)]
            if found:
                filled = _all(mysql_engine, f"SELECT COUNT(*) FROM {found[0]}")[0][0]
            time.sleep(0.02)
        assert child.poll() is None and filled, "the child was killed while filling the new table"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    with mysql_engine.connect() as c:
        state = scrub_ledger.rebuild_state(c, "public.log")
    assert state is not None and state[0] == "filling"
    assert _triggers(mysql_engine) != triggers, "killed with its triggers set aside"
    results = {r.table: r for r in scrub_database(mysql_engine, plan, SALT)}
    assert (results["public.log"].action, results["public.log"].rows) == ("rebuilt", rows - rows // 100)
    assert _rows(mysql_engine, "log") == _rows(mysql_engine, "log_keyed")
    assert _definition(mysql_engine) == definition and _triggers(mysql_engine) == triggers
    assert _leftovers(mysql_engine) == []


def test_what_cannot_be_rebuilt_is_refused_before_anything_is_written(mysql_engine, tmp_path):  # noqa: F811
    plan = _setup(mysql_engine, tmp_path, rows=20)
    run(mysql_engine, ["CREATE TABLE notes (log_n int, FOREIGN KEY (log_n) REFERENCES log (n))"])
    extra = "  public.notes:\n    columns: {log_n: keep}\n"
    before = _rows(mysql_engine, "log")
    with pytest.raises(TerminalError) as refused:
        scrub_database(mysql_engine, _plan(mysql_engine, tmp_path, extra), SALT)
    message = str(refused.value)
    assert message.startswith("public.log has no primary key") and "public.notes (notes_ibfk_1)" in message
    assert "Add a primary key" in message
    # a trigger the rules say recomputes a column: a rebuild inserts rows, which fires no UPDATE trigger
    run(mysql_engine, [
        "DROP TABLE notes",
        "CREATE TRIGGER log_fixed BEFORE UPDATE ON log FOR EACH ROW SET NEW.fixed = LEFT(NEW.email, 6)",
    ])  # fmt: skip
    recomputing = _plan(mysql_engine, tmp_path, triggers="      log_fixed: recompute\n")
    with mysql_engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "logs")
    (refused_now,) = backend_for("mysql").scrub_refusals(schema, recomputing)
    assert "triggers recompute columns (log_fixed)" in refused_now
    plan = _plan(mysql_engine, tmp_path, triggers='      log_fixed: {silent: "not in this test"}\n')
    assert backend_for("mysql").scrub_refusals(schema, plan) == []
    assert _rows(mysql_engine, "log") == before and _leftovers(mysql_engine) == []


def test_a_keyed_table_of_narrow_rows_is_rebuilt_and_one_of_wide_rows_updated(mysql_engine, tmp_path):  # noqa: F811
    """rebuild.faster: narrow rows are rebuilt (twice as fast as the UPDATE by key, measured), wide ones
    updated (the UPDATE writes only the rewritten columns)."""
    run(mysql_engine, [
        "CREATE TABLE narrow (id int PRIMARY KEY, email varchar(60))",
        "CREATE TABLE wide (id int PRIMARY KEY, email varchar(60), story text)",
        "INSERT INTO narrow SELECT seq, CONCAT('n', seq, '@corp.example') FROM seq_1_to_3000",
        "INSERT INTO wide SELECT seq, CONCAT('w', seq, '@corp.example'), REPEAT('words ', 200) "
        "FROM seq_1_to_3000",
        "ANALYZE TABLE narrow, wide",
    ])  # fmt: skip
    email = "{transformer: hash, params: {format: email}}"
    path = tmp_path / "w.yaml"
    path.write_text(
        f"version: 1\ndatabase: w\ntables:\n  public.narrow:\n    columns: {{id: keep, email: {email}}}\n"
        f"  public.wide:\n    columns: {{id: keep, email: {email}, story: {{transformer: keep, "
        "reason: repeated words}}\n"
    )
    with mysql_engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "w")
    before = _all(mysql_engine, "SELECT id, email FROM narrow ORDER BY id")
    results = {
        r.table: r.action
        for r in scrub_database(mysql_engine, planning.build_plan(load_rules(path), schema), SALT)
    }
    assert results == {"public.narrow": "rebuilt", "public.wide": "streamed"}
    after = _all(mysql_engine, "SELECT id, email FROM narrow ORDER BY id")
    assert [r[0] for r in after] == [r[0] for r in before] and all(
        a[1].endswith("@example.com") and a[1] != b[1] for a, b in zip(after, before, strict=True)
    )
