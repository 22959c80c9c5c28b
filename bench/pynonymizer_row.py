"""pynonymizer as a row of the benchmark: the same users table anonymised by pynonymizer and scrubbed by deid.

    .venv/bin/python -m bench.pynonymizer_row [--server embedded|URL] [--users N] [--no-save]

1. pynonymizer (PyPI, 2.5.0) goes into a side environment, bench/.cache/pynonymizer-venv (it is no deid
   dependency).
2. bench/build.py builds its database with N users (default 200,000), named bench_pynonymizer_prod so that
   no other benchmark's database is touched.
3. pynonymizer, on a template copy: `pynonymizer --only-step ANONYMIZE_DB` against that existing database
   (its flow is create, restore, anonymise, dump, drop; --only-step runs the anonymisation alone), with a
   strategy file faking the 8 columns deid's rules transform (bench/rules/bench.yaml). Timed: that process,
   from start to exit, and its phases read off its log as the lines arrive (start-up, seed table, the
   UPDATE, clean-up).
4. deid, on fresh template copies, each in its own process (as a nightly run is, so both pay numba's first
   use alike): scrub_database(engine, plan, salt, tables={'public.users'}, sessions=2) with the plan
   bench/run.py builds, streamed (stream=True, the default) and by the SQL rewrite (stream=False). When the
   table cannot stream (a column without a vector form) stream=True falls back to the SQL rewrite: the
   result says so, and names the columns.
Every copy starts from a CHECKPOINT. After each tool, untimed: how many of the 8 columns changed (a sum of
hashes per column against production), their distinct values and NULLs. Prints a markdown table (tool,
seconds, rows/s, how many times faster than pynonymizer) and writes
bench/results/<date>-<N>-pynonymizer.json. Every database it creates is dropped at the end, also after a
failure.

What pynonymizer needs to run at all on this table (see STRATEGY and the notes in the result):
  - email is UNIQUE: pynonymizer's `unique_email` (md5(random()) @ md5(random()).com), since `fake_update`
    picks from a seed table of 150 Faker rows and would repeat values;
  - ssn is UNIQUE and pynonymizer has no unique strategy that fits varchar(11): its faked SSNs (150 seed
    values) fail the constraint, so pynonymizer's copy has the constraint replaced by a plain index on ssn
    before the clock starts (the same index maintenance, none of the check: as bench/run.py's plain UPDATE);
  - last_login_ip is inet: `sql_type: inet` on Faker's ipv4.
pynonymizer also overwrites NULLs (phone, ssn and last_login_ip have some); deid keeps them NULL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from bench import build as bench_build
from bench import sidevenv
from bench.run import LOCK_KEY, RULES, SALT, SESSIONS, USERS_TABLE, Report, Server, users_result
from bench.servers import ROOT, SERVER_HELP, machine_facts, save_result, server_facts, server_url

DEFAULT_USERS = 200_000
PROD = "bench_pynonymizer_prod"
COPY = "bench_copy_pynonymizer_"
PYNONYMIZER = "pynonymizer==2.5.0"
COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "ssn",
    "street_address",
    "date_of_birth",
    "last_login_ip",
)
STRATEGY = """\
# pynonymizer strategy: the 8 columns bench/rules/bench.yaml transforms, faked (Faker, en_US)
locale: en_US
tables:
  - table_name: users
    schema: public
    type: update_columns
    columns:
      email: unique_email
      first_name: first_name
      last_name: last_name
      phone: phone_number
      ssn: ssn
      street_address: street_address
      date_of_birth: date_of_birth
      last_login_ip: {type: fake_update, fake_type: ipv4, sql_type: inet}
"""
# pynonymizer's log lines that mark its phases (it logs to stderr, one record a line)
PHASES = (
    ("seed table", "creating seed table"),
    ("update", "Anonymizing 1 tables"),
    ("clean-up", "dropping seed table"),
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def column_facts(url: str) -> dict:
    """Per column: a sum of hashes of its text (to tell whether it changed), distinct values and NULLs."""
    parts = []
    for c in COLUMNS:
        parts += [f"sum(hashtext({c}::text)::bigint)", f"count(DISTINCT {c})", f"count(*) - count({c})"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            row = c.exec_driver_sql(f"SELECT count(*), {', '.join(parts)} FROM users").one()
    finally:
        engine.dispose()
    facts = {"rows": row[0], "columns": {}}
    for i, column in enumerate(COLUMNS):
        total, distinct, nulls = row[1 + 3 * i : 4 + 3 * i]
        facts["columns"][column] = {"hash_sum": int(total or 0), "distinct": distinct, "nulls": nulls}
    return facts


def compare(before: dict, after: dict) -> dict:
    changed = [c for c in COLUMNS if before["columns"][c]["hash_sum"] != after["columns"][c]["hash_sum"]]
    return {
        "rows": after["rows"],
        "columns_changed": len(changed),
        "unchanged": [c for c in COLUMNS if c not in changed],
        "distinct": {c: after["columns"][c]["distinct"] for c in COLUMNS},
        "nulls": {c: after["columns"][c]["nulls"] for c in COLUMNS},
    }


def clone(server: Server, name: str) -> None:
    server.drop(name)
    server.created.append(name)
    server.admin(f'CREATE DATABASE "{name}" TEMPLATE "{PROD}"')


def _plan(url: str):
    """The plan bench/run.py builds (bench/rules/bench.yaml over the database's schema), and the schema."""
    from deid import plan as planning
    from deid.backends import backend_for
    from deid.db import connect_readonly
    from deid.rules.load import load_rules

    engine = connect_readonly(url)
    try:
        with engine.connect() as c:
            schema = backend_for("postgresql").introspect(c, "bench")
    finally:
        engine.dispose()
    return planning.build_plan(load_rules(RULES), schema), schema


def measure_pynonymizer(server: Server, executable: Path, report: Report) -> dict:
    name = COPY + "pynonymizer"
    clone(server, name)
    engine = sa.create_engine(server.url(name), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:  # untimed: pynonymizer's faked SSNs would fail the unique constraint
            c.exec_driver_sql("ALTER TABLE users DROP CONSTRAINT users_ssn_key")
            c.exec_driver_sql("CREATE INDEX users_ssn_idx ON users (ssn)")
    finally:
        engine.dispose()
    u = sa.make_url(server.admin_url)
    with tempfile.TemporaryDirectory(prefix="deid-bench-pynonymizer-") as folder:
        strategy = Path(folder) / "strategy.yml"
        strategy.write_text(STRATEGY)
        command = [
            str(executable),
            "--only-step",
            "ANONYMIZE_DB",
            "--db-type",
            "postgres",
            "--db-host",
            u.host or "127.0.0.1",
            "--db-port",
            str(u.port or 5432),
            "--db-user",
            u.username or "postgres",
            "--db-name",
            name,
            "--strategy",
            str(strategy),
        ]
        env = dict(os.environ)
        if u.password:
            env["PGPASSWORD"] = str(u.password)  # pynonymizer passes it to psql the same way
        server.checkpoint()
        lines, marks = [], {}
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        killer = threading.Timer(3600, process.kill)
        killer.start()
        assert process.stderr is not None
        for raw in process.stderr:  # its log lines, as they arrive (tqdm's bars too: \r within a line)
            now = time.monotonic() - started
            line = _ANSI.sub("", raw.rstrip("\n")).split("\r")[-1].strip()
            if line:
                lines.append(line)
            for phase, marker in PHASES:
                if marker in line and phase not in marks:
                    marks[phase] = now
        code = process.wait()
        seconds = time.monotonic() - started
        killer.cancel()
    result = {
        "command": " ".join(command[1:]).replace(str(strategy), "strategy.yml"),
        "strategy": STRATEGY,
        "exit_code": code,
        "seconds": seconds,
        "log_tail": lines[-12:],
        "prepared": "users_ssn_key replaced by a plain index on ssn (untimed)",
    }
    failed = code != 0 or any("Error" in line for line in lines)
    if failed:
        result["seconds"] = None
        result["error"] = " / ".join(lines[-4:])[-600:]
        return result
    edges = [0.0, *(marks.get(p) for p, _ in PHASES), seconds]
    if None not in edges:
        names = ["start-up", *(p for p, _ in PHASES)]
        result["phases"] = {n: round(b - a, 3) for n, a, b in zip(names, edges[:-1], edges[1:], strict=True)}
    report(f"   pynonymizer: {seconds:.1f} s {result.get('phases', '')}")
    result["name"] = name
    return result


def deid_worker(url: str, stream: bool) -> dict:
    """In its own process (as a nightly run is): the plan from the copy, then scrub_database timed."""
    from deid.db import engine as deid_engine
    from deid.steps.scrub import scrub_database
    from deid.vector.apply import streamed_columns

    plan, schema = _plan(url)
    users_plan = next(t for t in plan.tables if t.table == USERS_TABLE)
    table = schema.table(USERS_TABLE)
    no_vector = [
        f"{a.column} ({a.transformer})"
        for a in users_plan.rewritten
        if streamed_columns(table, [a]) is None  # a column the stream cannot take: SQL rewrite instead
    ]
    log: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: log.append(record.getMessage())  # what the scrub says (why not rebuilt)
    logging.getLogger("deid").addHandler(handler)
    logging.getLogger("deid").setLevel(logging.INFO)
    engine = deid_engine(url)
    try:
        started = time.monotonic()
        results = scrub_database(engine, plan, SALT, tables={USERS_TABLE}, sessions=SESSIONS, stream=stream)
        call = time.monotonic() - started
    finally:
        engine.dispose()
    users = users_result(results)
    return {
        "seconds": call,
        "table_seconds": users.seconds,
        "rows": users.rows,
        "action": users.action,
        "sessions": users.sessions,
        "without_vector_form": no_vector,
        "log": log[-20:],
    }


def measure_deid(server: Server, stream: bool, report: Report) -> dict:
    name = COPY + ("deid_stream" if stream else "deid_sql")
    clone(server, name)
    server.checkpoint()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.pynonymizer_row", "--deid-worker", server.url(name)]
        + (["--stream"] if stream else []),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    process = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"deid worker failed: {done.stderr.strip()[-600:]}")
    d = json.loads(done.stdout.strip().splitlines()[-1])
    report(f"   deid stream={stream}: {d['seconds']:.1f} s (users {d['table_seconds']:.1f} s, {d['action']})")
    return {"stream": stream, **d, "process_seconds": round(process, 3), "name": name}


def run(server: Server, users: int, report: Report) -> dict:
    result: dict = {
        "users": users,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "server": server_facts(server.admin_url),
        "deid_commit": _commit(),
    }
    python = sidevenv.ensure("pynonymizer", [PYNONYMIZER], report)
    result["pynonymizer"] = {"version": sidevenv.installed(python, "pynonymizer")}
    result["faker"] = sidevenv.installed(python, "faker")
    report(f"== building {PROD} with {users} users")
    server.created.append(PROD)
    result["build_seconds"] = bench_build.build(server.admin_url, users, PROD, report=report)
    before = column_facts(server.url(PROD))
    result["production"] = before

    report("-- pynonymizer --only-step ANONYMIZE_DB")
    pyn = measure_pynonymizer(server, python.parent / "pynonymizer", report)
    if pyn.get("name"):
        pyn["output"] = compare(before, column_facts(server.url(pyn["name"])))
        server.drop(pyn.pop("name"))
    result["pynonymizer"].update(pyn)

    result["deid"] = []
    for stream in (True, False):
        report(f"-- deid scrub_database(stream={stream})")
        d = measure_deid(server, stream, report)
        d["output"] = compare(before, column_facts(server.url(d["name"])))
        server.drop(d.pop("name"))
        result["deid"].append(d)
    result["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _commit() -> str | None:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or None


def rows_of(result: dict) -> list[dict]:
    """The table's rows: (tool, seconds) and the figures derived from them."""
    n = result["users"]
    pyn = result["pynonymizer"]
    out = [
        {
            "tool": f"pynonymizer {pyn['version']}: --only-step ANONYMIZE_DB, whole process",
            "seconds": pyn.get("seconds"),
            "note": "start-up, seed table (150 Faker rows, one psql per row), one UPDATE, clean-up"
            if pyn.get("seconds") is not None
            else f"failed: {pyn.get('error', '')}",
        }
    ]
    if "phases" in pyn:
        out.append(
            {
                "tool": "pynonymizer: its UPDATE alone (from its log)",
                "seconds": pyn["phases"]["update"],
                "note": "one psql running the UPDATE of the 8 columns (indexes in place)",
            }
        )
    for d in result["deid"]:
        how = "streamed (stream=True)" if d["stream"] else "SQL rewrite (stream=False)"
        done = {"rebuilt": "streamed, table rebuilt", "streamed": "streamed, updated in place"}.get(
            d["action"], "SQL rewrite"
        )
        if d["stream"] and d["action"] == "rewritten":
            done = "fell back to the SQL rewrite: no vector form for " + ", ".join(d["without_vector_form"])
        out.append(
            {
                "tool": f"deid scrub_database, {how}: whole call",
                "seconds": d["seconds"],
                "note": f"own process; support functions, dictionaries, ledger, then the table: {done}",
            }
        )
        out.append(
            {
                "tool": f"deid scrub_database, {how}: the users table alone",
                "seconds": d["table_seconds"],
                "note": f"{d['sessions']} session(s)",
            }
        )
    reference = pyn.get("seconds")
    for r in out:
        s = r["seconds"]
        r["rows_per_second"] = round(n / s) if s else None
        r["times_faster_than_pynonymizer"] = round(reference / s, 2) if (s and reference) else None
    return out


def markdown(result: dict) -> str:
    server, machine = result["server"], result["machine"]
    lines = [
        f"### pynonymizer vs deid: users table, {result['users']:,} rows — PostgreSQL "
        f"{server['server_version']}",
        "",
        f"{machine.get('nproc')} cores ({machine.get('cpu', '?')}); load average at start "
        f"{machine['load_average'][0]}, at end {machine['load_average_end'][0]}",
        "",
        "| tool | seconds | rows/s | × faster than pynonymizer | notes |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in result["rows"]:
        secs = "failed" if r["seconds"] is None else f"{r['seconds']:.1f}"
        rate = "–" if r["rows_per_second"] is None else f"{r['rows_per_second']:,}"
        ratio = (
            "–" if r["times_faster_than_pynonymizer"] is None else f"{r['times_faster_than_pynonymizer']:.1f}"
        )
        lines.append(f"| {r['tool']} | {secs} | {rate} | {ratio} | {r['note']} |")
    lines += [
        "",
        "| output | columns changed | distinct emails | distinct SSNs | distinct first names | NULL SSNs |",
    ]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    outputs = [("production (before)", None, result["production"]["columns"])]
    pyn = result["pynonymizer"]
    if "output" in pyn:
        outputs.append(("pynonymizer", pyn["output"]["columns_changed"], _as_columns(pyn["output"])))
    for d in result["deid"]:
        label = "deid, streamed" if d["stream"] else "deid, SQL rewrite"
        outputs.append((label, d["output"]["columns_changed"], _as_columns(d["output"])))
    for label, changed, cols in outputs:
        shown = "–" if changed is None else f"{changed}/8"
        lines.append(
            f"| {label} | {shown} | {cols['email']['distinct']:,} | {cols['ssn']['distinct']:,} | "
            f"{cols['first_name']['distinct']:,} | {cols['ssn']['nulls']:,} |"
        )
    if result.get("target"):
        t = result["target"]
        lines += ["", f"Target: {t['target']}: measured {t['measured']} — {'met' if t['met'] else 'NOT met'}"]
    return "\n".join(lines)


def _as_columns(output: dict) -> dict:
    return {c: {"distinct": output["distinct"][c], "nulls": output["nulls"][c]} for c in COLUMNS}


def target(result: dict) -> dict | None:
    """The issue's target: deid's scrub (the default, stream=True) at least 5x faster than pynonymizer."""
    streamed = next((d for d in result["deid"] if d["stream"]), None)
    reference = result["pynonymizer"].get("seconds")
    if not streamed or not reference:
        return None
    ratio = reference / streamed["seconds"]
    how = (
        "streamed" if streamed["action"] in ("rebuilt", "streamed") else "which fell back to the SQL rewrite"
    )
    return {
        "target": "deid's scrub (scrub_database, stream=True, whole call) >= 5x faster than pynonymizer's "
        "anonymisation (whole process)",
        "measured": f"{ratio:.1f}x ({how})",
        "met": ratio >= 5,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pynonymizer_row", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--server", default="embedded", help=SERVER_HELP)
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help=f"users (default {DEFAULT_USERS:,})")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    parser.add_argument("--deid-worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.deid_worker:
        print(json.dumps(deid_worker(args.deid_worker, args.stream)))
        return 0

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    server = Server(server_url(args.server), report)
    lock = sa.create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with lock.connect() as held:
        if not held.exec_driver_sql(f"SELECT pg_try_advisory_lock({LOCK_KEY})").scalar():
            print("another benchmark is running on this server", file=sys.stderr)
            return 1
        try:
            result = run(server, args.users, report)
        finally:
            for name in reversed(server.created):
                server.drop(name)
            held.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_KEY})")
    lock.dispose()
    result["server"]["spec"] = args.server.split("@")[-1]
    result["rows"] = rows_of(result)
    result["target"] = target(result)
    table = markdown(result)
    print(table)
    if not args.no_save:
        save_result(f"{result['started'][:10]}-{args.users}-pynonymizer", result, table, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
