"""clone: dump streams pg_dump into pg_restore: no production row lands on the staging side's disk, even when
deid is killed, and no pg_dump outlives deid. On real PostgreSQL (every configured server).

Production is seeded with generate_series and carries a marker string no other database holds, so "no row
value on disk" is checked by reading every file a killed run could have left, compressed or not.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from deid.backends.postgresql.cloners import dump
from deid.errors import TransientError
from deid.steps.context import work_name
from deid.steps.copies import admin, read_metadata
from deid.steps.snapshot import snapshot
from tests import runctx

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.date(2026, 11, 28)
ROWS = 400_000  # about 100 MB of text: the clone takes seconds, long enough to be caught mid-way
PROGRAMS = ("pg_dump", "pg_restore")
# Calls that can put a file on disk; open/openat only with a writing flag.
WRITING_CALLS = ("open", "openat", "creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2", "link")


@dataclass(frozen=True)
class Production:
    name: str
    marker: str  # in a few rows of production, and in no other database


@pytest.fixture(scope="module")
def big_production(postgres):
    name = postgres.create_database("deid_bigprod")
    marker = f"deid-marker-{uuid.uuid4().hex}"
    engine = sa.create_engine(postgres.url(name), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.exec_driver_sql("CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL, note text)")
            # The marker in the first rows, so that it has gone through the pipe by the time rows are copied
            c.execute(
                sa.text(
                    "INSERT INTO people SELECT g, 'person ' || g, CASE WHEN g % 100000 = 1 THEN :marker "
                    "ELSE repeat(md5(g::text), 6) END FROM generate_series(1, :rows) g"
                ),
                {"marker": marker, "rows": ROWS},
            )
            c.exec_driver_sql("CREATE INDEX people_name ON people (name)")
    finally:
        engine.dispose()
    yield Production(name, marker)
    postgres.drop_database(name)


@pytest.fixture(scope="module")
def rich_production(postgres):
    """Small, with what a restore can get wrong: partitions, identity and free sequences (one never used),
    large objects, a materialized view, an enum, foreign keys."""
    name = postgres.create_database("deid_richprod")
    engine = sa.create_engine(postgres.url(name), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.exec_driver_sql(RICH_SCHEMA)
    finally:
        engine.dispose()
    yield name
    postgres.drop_database(name)


RICH_SCHEMA = """
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('ok', 'meh');
CREATE TABLE app.accounts (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text UNIQUE NOT NULL, mood app.mood, avatar oid
);
INSERT INTO app.accounts (email, mood)
SELECT 'user' || g || '@example.com', (CASE WHEN mod(g, 3) = 0 THEN 'ok' ELSE 'meh' END)::app.mood
FROM generate_series(1, 2000) g;
UPDATE app.accounts SET avatar = lo_from_bytea(0, convert_to('avatar of ' || id, 'UTF8')) WHERE id <= 3;
CREATE TABLE app.events (
    id bigserial, account_id int NOT NULL REFERENCES app.accounts, at date NOT NULL, payload jsonb,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE app.events_other PARTITION OF app.events DEFAULT;
INSERT INTO app.events (account_id, at, payload)
SELECT 1 + mod(g, 2000), date '2024-06-01' + mod(g, 900), jsonb_build_object('n', g)
FROM generate_series(1, 20000) g;
CREATE SEQUENCE app.invoice_no START 1000 INCREMENT 7;
SELECT setval('app.invoice_no', 5000);
CREATE SEQUENCE app.never_used;
CREATE MATERIALIZED VIEW app.moods AS SELECT mood, count(*) AS n FROM app.accounts GROUP BY mood;
"""


RULES = ROOT / "tests" / "fixtures" / "rules"


def make_ctx(postgres, production: str, staging: str, day: dt.date = DAY, rules: str = "dump_people.yaml"):
    """The snapshot checks the rules against the copy it made: each production database has its own."""
    return runctx.make_ctx(
        postgres, production, staging, day, clone="dump", rules=str(RULES / rules), migrations=None
    )


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            return [tuple(row) for row in c.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def fingerprint(url: str) -> dict[str, object]:
    """Every table's rows (count and checksum), the sequences, partitions, constraints and large objects."""
    tables = query(
        url,
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p', 'm') ORDER BY 1",
    )
    found: dict[str, object] = {
        table: query(
            url,
            "SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) "
            f"FROM {table} x",
        )
        for (table,) in tables
    }
    found["sequences"] = query(
        url,
        "SELECT sequencename, start_value, increment_by, last_value FROM pg_sequences "
        "WHERE schemaname = 'app' ORDER BY 1",
    )
    found["partitions"] = query(
        url,
        "SELECT i.inhrelid::regclass::text, i.inhparent::regclass::text, pg_get_expr(c.relpartbound, c.oid) "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid ORDER BY 1",
    )
    found["constraints"] = query(
        url,
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'app'::regnamespace ORDER BY 1, 2",
    )
    found["large objects"] = query(
        url, "SELECT oid::bigint, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1"
    )
    return found


# --- processes and files --------------------------------------------------------------------------------


def children(pid: int) -> dict[int, str]:
    """pid -> command line of the live processes whose parent is `pid`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def runs(pid: int, program: str) -> bool:
    """Whether `pid` has become `program` itself: Debian's pg_dump is a Perl wrapper that execs the server
    version's binary, and a command line read while it does so can be half of each."""
    try:
        return Path(f"/proc/{pid}/exe").resolve().name == program
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; its new parent has not reaped it yet


def holds(path: Path, marker: str) -> bool:
    """Whether the file holds `marker`, as is or gzip-compressed (pg_dump -Fd writes .dat.gz files)."""
    data = path.read_bytes()
    needle = marker.encode()
    if needle in data:
        return True
    if data[:2] == b"\x1f\x8b":
        try:
            return needle in gzip.decompress(data)
        except (OSError, EOFError, zlib.error):  # cut short by the kill: read what is there
            return needle in zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    return False


def writes_a_file(name: str, call: str) -> bool:
    """Whether a line of strace shows a call that succeeded in creating or opening a file for writing."""
    if name not in WRITING_CALLS or "= -1 " in call:
        return False
    return name not in ("open", "openat") or any(f in call for f in ("O_WRONLY", "O_RDWR", "O_CREAT"))


def files_under(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


def sessions(postgres, database: str) -> list[str]:
    return [
        row[0]
        for row in query(
            postgres.admin_url,
            "SELECT application_name FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()",
            d=database,
        )
    ]


def copying_rows(postgres, database: str) -> int:
    """Rows copied so far by a COPY FROM running in `database` (pg_restore filling a table)."""
    rows = query(
        postgres.admin_url,
        "SELECT p.tuples_processed FROM pg_stat_progress_copy p JOIN pg_database d ON d.oid = p.datid "
        "WHERE d.datname = :d AND p.command = 'COPY FROM'",
        d=database,
    )
    return max((r[0] for r in rows), default=0)


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:g} s for {what}")
        time.sleep(0.05)


# --- the tests ------------------------------------------------------------------------------------------


def test_a_killed_clone_leaves_no_production_row_on_disk_and_no_program_running(
    postgres, big_production, staging, tmp_path
):
    """kill -9 of deid while rows flow: nothing under TMPDIR or the working directory holds a production
    value, pg_dump and pg_restore end with deid, and the next snapshot drops the partial working copy."""
    tmp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    tmp.mkdir()
    cwd.mkdir()
    work = work_name(staging, DAY)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.dumpchild", postgres.admin_url, big_production.name, staging, str(DAY)],
        cwd=cwd,
        env={**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def mid_clone() -> bool:
            if child.poll() is not None:
                pytest.fail(
                    f"the clone ended before it could be killed: {child.stderr.read().decode()[-2000:]}"
                )
            return copying_rows(postgres, work) > 1000

        wait_for(mid_clone, 120, f"rows being copied into {work}")
        programs = children(child.pid)
        assert any("pg_restore" in cmdline for cmdline in programs.values()), programs
    finally:
        child.kill()
        child.wait()
        child.stderr.close()

    wait_for(lambda: not any(alive(pid) for pid in programs), 5, f"the programs to end: {programs}")
    wait_for(
        lambda: not sessions(postgres, big_production.name), 10, "pg_dump's session on production to end"
    )
    wait_for(lambda: not sessions(postgres, work), 10, "pg_restore's session on the working copy to end")
    left = files_under(tmp, cwd)
    assert not [p for p in left if holds(p, big_production.marker)], "production rows left on disk"
    assert left == []

    # Ended by the kill, not by finishing: the rows being copied were rolled back, no index was built.
    assert query(postgres.url(work), "SELECT count(*), to_regclass('people_name') FROM people") == [(0, None)]
    with admin(postgres.admin_url) as c:
        assert read_metadata(c, work) == {}  # never mistaken for a finished copy
    ctx = make_ctx(postgres, big_production.name, staging, DAY + dt.timedelta(days=1))
    snapshot(ctx)
    assert ctx.record["dropped_leftovers"] == [work]
    assert query(ctx.work_url, "SELECT count(*) FROM people") == [(ROWS,)]


def test_a_streamed_clone_is_complete(postgres, rich_production, staging, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    ctx = make_ctx(postgres, rich_production, staging, rules="dump_rich.yaml")
    snapshot(ctx)
    expected = fingerprint(postgres.url(rich_production))
    assert expected["app.accounts"][0][0] == 2000 and len(expected["large objects"]) == 3
    assert [p[0] for p in expected["partitions"] if p[2]] == [
        "app.events_2025",
        "app.events_2026",
        "app.events_other",
    ]
    assert fingerprint(ctx.work_url) == expected
    assert list(tmp_path.iterdir()) == []


def test_pg_dump_reads_production_read_only_without_a_password_in_its_arguments(
    postgres, big_production, staging
):
    """Caught while it runs: pg_dump's own arguments open a read-only session; the password is only in
    its environment."""
    password = f"pw-{uuid.uuid4().hex}"  # the test servers trust local connections: never checked
    ctx = make_ctx(postgres, big_production.name, staging)
    ctx.production_url = sa.make_url(ctx.production_url).set(password=password).render_as_string(False)
    done: list[BaseException | None] = []

    def clone() -> None:
        try:
            snapshot(ctx)
            done.append(None)
        except BaseException as error:
            done.append(error)

    thread = threading.Thread(target=clone)
    thread.start()
    seen: dict[int, str] = {}
    try:
        while not seen and not done:
            seen = {
                pid: cmd
                for pid, cmd in children(os.getpid()).items()
                if "--format=custom" in cmd and runs(pid, "pg_dump")
            }
            time.sleep(0.01)
        assert seen, "pg_dump was not seen running"
        pid = next(iter(seen))  # read again: the first read may predate the exec
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    finally:
        thread.join()
    assert done == [None]
    assert password not in cmdline
    assert f"PGPASSWORD={password}".encode() in environ
    conninfo = cmdline.split("--dbname=", 1)[1].strip()
    assert "default_transaction_read_only=on" in conninfo
    with psycopg.connect(conninfo) as session:
        assert session.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            session.execute("CREATE TABLE written_by_deid (id int)")


def test_a_clone_whose_pg_dump_loses_production_fails_and_is_dropped(postgres, big_production, staging):
    """pg_dump's session ended mid-table: pg_restore's input ends early, both fail, the run may be retried,
    and the half-restored copy is dropped."""
    ctx = make_ctx(postgres, big_production.name, staging)
    ended: list[int] = []

    def end_pg_dump() -> None:
        deadline = time.monotonic() + 120
        while not ended and time.monotonic() < deadline:
            # Found first, ended after: in one statement the planner may call pg_terminate_backend for
            # sessions the other conditions would have ruled out.
            found = query(
                postgres.admin_url,
                "SELECT pid FROM pg_stat_activity WHERE datname = :d AND application_name = 'pg_dump' "
                "AND query LIKE 'COPY %'",
                d=big_production.name,
            )
            for (pid,) in found:
                query(postgres.admin_url, "SELECT pg_terminate_backend(:p)", p=pid)
                ended.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=end_pg_dump)
    killer.start()
    try:
        with pytest.raises(TransientError) as raised:
            snapshot(ctx)
    finally:
        killer.join()
    assert ended, "pg_dump's session was not found"
    message = str(raised.value)
    assert message.startswith(f"clone: dump of {big_production.name} into {ctx.work_name} failed in pg_dump")
    assert "a connection was lost; the run may be retried" in message
    assert big_production.marker not in message
    with admin(postgres.admin_url) as c:
        assert not c.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": ctx.work_name}
        ).all()


def test_a_pg_dump_that_failed_on_its_own_is_the_cause_whatever_pg_restore_says():
    """Whichever ended first, and whatever pg_restore said of its input cut short (its words vary with
    where the cut fell), a pg_dump that exited with an error of its own is named as the cause; a pg_dump
    ended by the broken pipe is not (CI once saw pg_restore blamed for pg_dump's lost connection)."""
    from deid.cloners.pipe import Outcome
    from deid.errors import TerminalError

    lost = "pg_dump: error: Dumping the contents of table failed: server closed the connection unexpectedly"
    restore = Outcome("pg_restore", 1, "pg_restore: error: words no pattern lists")
    error = dump.pipeline_error([restore, Outcome("pg_dump", 1, lost)], "prod", "work", [])
    assert isinstance(error, TransientError)
    assert str(error).startswith("clone: dump of prod into work failed in pg_dump (exit code 1)")
    refused = Outcome("pg_restore", 1, "pg_restore: error: could not execute query: ERROR: permission denied")
    piped = Outcome("pg_dump", -13, "")  # SIGPIPE: pg_restore had stopped reading
    error = dump.pipeline_error([refused, piped], "prod", "work", [])
    assert type(error) is TerminalError
    assert str(error).startswith("clone: dump of prod into work failed in pg_restore (exit code 1)")


def test_pg_restore_fails_on_an_archive_cut_anywhere(postgres, rich_production, pg_url, tmp_path):
    """The stream pg_restore reads, cut short at any point, is an error, never a smaller restore."""
    tools = dump.choose_tools(postgres.version)
    dumping = dump.dump_program(tools, dump.normalise_url(postgres.url(rich_production)), tmp_path)
    archive = subprocess.run(dumping.argv, env=dumping.env(), capture_output=True, check=True).stdout
    restoring = dump.restore_program(tools, dump.normalise_url(pg_url), tmp_path)
    cuts = [*range(0, len(archive), len(archive) // 12), len(archive) - 1]
    for cut in cuts:
        restored = subprocess.run(
            restoring.argv, input=archive[:cut], env=restoring.env(), capture_output=True
        )
        assert restored.returncode != 0, (
            f"pg_restore accepted an archive cut at {cut} of {len(archive)} bytes"
        )
        with admin(postgres.admin_url) as c:
            name = sa.make_url(pg_url).database
            c.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    whole = subprocess.run(restoring.argv, input=archive, env=restoring.env(), capture_output=True)
    assert whole.returncode == 0, whole.stderr.decode()[-2000:]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_neither_program_opens_a_file_for_writing(postgres, rich_production, staging, tmp_path):
    """Traced: pg_dump writes only to the pipe, and pg_restore reading it keeps no temporary file."""
    log = tmp_path / "strace.log"
    traced = subprocess.run(
        [
            "strace", "-f", "-qq", "-o", str(log),
            "-e", "trace=execve," + ",".join(WRITING_CALLS),
            sys.executable, "-m", "tests.dumpchild", postgres.admin_url, rich_production, staging, str(DAY),
            "dump_rich.yaml",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )  # fmt: skip
    if traced.returncode != 0 and "ptrace" in traced.stderr:
        pytest.skip(f"strace cannot trace here: {traced.stderr.strip()[:200]}")
    assert traced.returncode == 0, traced.stderr[-2000:]
    programs, writes = set(), []
    for line in log.read_text().splitlines():
        pid, call = line.split(None, 1)  # strace pads the pid
        name = call.partition("(")[0]
        if name == "execve" and any(f'/{program}"' in call.split(",")[0] for program in PROGRAMS):
            programs.add(pid)
        elif pid in programs and writes_a_file(name, call):
            writes.append(call)
    assert programs, "no pg_dump or pg_restore was traced"
    assert writes == []
