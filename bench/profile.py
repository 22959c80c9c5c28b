"""Where the scrub of users spends its time: per SQL primitive, per column, and in the rewrite itself.

    .venv/bin/python -m bench.profile [--server embedded|URL] [--users N] [--reuse-prod] [--keep-prod]

On a template copy of the benchmark's production database (bench/build.py), in deid's own session setup
(_deid functions, dictionaries, key, triggers off):
  primitives   microseconds per call of the SQL pieces the transformers are made of
  columns      seconds to compute each column's new value over the whole table (SELECT, one core)
  explain      EXPLAIN (ANALYZE, BUFFERS, WAL) of the plan's UPDATE with the indexes set aside as deid does,
               and the time spent in each plpgsql support function (track_functions)
  mechanics    the same UPDATE with every expression replaced by the identity: what rewriting costs
  original     the plan's UPDATE with the indexes set aside and rebuilt, as deid runs it in one session
Everything runs in rolled-back transactions or on the throwaway copy, which is dropped at the end. Results
are printed as
markdown and written to bench/results/<date>-<users>-pg<major>-profile.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

import sqlalchemy as sa

from bench import build as bench_build
from bench.run import (
    PROD,
    SALT,
    USERS_TABLE,
    Server,
    measure_rewrite,
    open_deid_session,
    prod_users,
    production_plan,
)
from bench.servers import SERVER_HELP, machine_facts, save_result, server_facts, server_url, timed
from deid.backends.postgresql.forms.support import KEY, doc_ipv4_sql, prf_int_sql, shift_days_sql

COPY = "bench_copy_profile"
MASK63 = 9223372036854775807


# ---------------------------------------------------------------------------------------------------------
# primitives


def primitives(c: sa.Connection, pg18: bool) -> list[dict]:
    n, n_fpe = 1_000_000, 100_000
    pick = "(SELECT d.value FROM _deid.dictionary d WHERE d.name = 'first_name' AND d.idx = mod(g, 600))"
    cases = [
        ("sha256 of a short text", "length(sha256(convert_to(g::text, 'UTF8')))", n),
        ("decode(current_setting(key), 'hex')", f"length(decode(current_setting('{KEY}'), 'hex'))", n),
        ("_deid.prf (SHA-256 of key and message, inlined)", "length(_deid.prf(g::text))", n),
        ("_deid.prf_int (prf, hex, bit(64), bigint)", "_deid.prf_int(g::text) & 1", n),
        ("prf_int written out in the statement (key read once)", f"{prf_int_sql('g::text')} & 1", n),
        ("dictionary pick: correlated index lookup (no hash)", f"length({pick})", n),
        (
            "dictionary pick: array subscript, 5000 entries",
            "length((SELECT array_agg(value ORDER BY idx) FROM _deid.dictionary "
            "WHERE name = 'street_address')[1 + mod(g, 5000)])",
            n // 10,
        ),
        (
            "_deid.fpe_digits, 9 digits (10 Feistel rounds)",
            "length(_deid.fpe_digits(lpad(g::text, 9, '0'), 't'))",
            n_fpe,
        ),
        ("shift_date's keyed shift (shift_days_sql)", shift_days_sql("g::text", 180), n),
        ("fake.ipv4's documentation address (doc_ipv4_sql)", f"length(host({doc_ipv4_sql('g::text')}))", n),
        (
            "regexp_replace 9 digits into ###-##-####",
            "length(regexp_replace(lpad(g::text, 9, '0'), "
            "'^([0-9]{3})([0-9]{2})([0-9]{4})$', '\\1-\\2-\\3'))",
            n,
        ),
        ("to_char 9 digits into ###-##-####", 'length(to_char(g, \'FM000"-"00"-"0000\'))', n),
        (
            "regexp_replace(v, '[^0-9]', '', 'g')",
            "length(regexp_replace(g || '-12-3456', '[^0-9]', '', 'g'))",
            n,
        ),
        ("translate(v, '-', '')", "length(translate(g || '-12-3456', '-', ''))", n),
    ]
    if pg18:
        cases.insert(
            4,
            (
                "prf to bigint by bytea cast (PG 18)",
                f"(substr(_deid.prf(g::text), 1, 8)::bigint & {MASK63}) & 1",
                n,
            ),
        )
    baseline = {}
    out = []
    for name, expression, count in cases:
        if count not in baseline:
            baseline[count] = timed(c, f"SELECT sum(length(g::text)) FROM generate_series(1, {count}) g")
        seconds = timed(c, f"SELECT sum({expression}) FROM generate_series(1, {count}) g")
        out.append({"primitive": name, "us_per_call": round((seconds - baseline[count]) / count * 1e6, 2)})
    return out


# ---------------------------------------------------------------------------------------------------------
# columns


def columns(c: sa.Connection, table_plan) -> list[dict]:
    base = timed(c, "SELECT count(*) FROM users")
    out = []
    for action in table_plan.rewritten:
        seconds = timed(c, f"SELECT sum(length(({action.sql})::text)) FROM users")
        out.append({"column": action.column, "transformer": action.transformer, "seconds": seconds - base})
    total = sum(r["seconds"] for r in out)
    for r in out:
        r["share"] = round(r["seconds"] / total, 3)
        r["seconds"] = round(r["seconds"], 2)
    return out


# ---------------------------------------------------------------------------------------------------------
# explain, mechanics, prototype


def set_aside(c: sa.Connection):
    from deid.backends.postgresql.rewrite import set_aside_indexes

    return set_aside_indexes(c, '"public"."users"')


def explain(c: sa.Connection, statement: str) -> dict:
    with c.begin() as tx:
        c.exec_driver_sql("SET LOCAL track_functions = 'all'")
        set_aside(c)
        started = time.monotonic()
        lines = [r[0] for r in c.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, WAL) {statement}")]
        seconds = time.monotonic() - started
        functions = [
            {
                "function": r[0],
                "calls": r[1],
                "total_s": round(r[2] / 1000, 2),
                "self_s": round(r[3] / 1000, 2),
            }
            for r in c.exec_driver_sql(
                "SELECT funcname, calls, total_time, self_time FROM pg_stat_xact_user_functions "
                "ORDER BY total_time DESC"
            )
        ]
        tx.rollback()
    shown = [line[:150] + ("…" if len(line) > 150 else "") for line in lines if "Index Cond" not in line]
    return {"seconds": round(seconds, 2), "plan": shown, "functions": functions}


def update_seconds(c: sa.Connection, statement: str) -> dict:
    """The table's scrub as deid does it (indexes set aside, UPDATE, rebuild), rolled back afterwards."""
    from deid.backends.postgresql.rewrite import restore_indexes

    with c.begin() as tx:
        aside = set_aside(c)
        update = timed(c, statement)
        started = time.monotonic()
        restore_indexes(c, aside)
        rebuild = time.monotonic() - started
        tx.rollback()
    c.exec_driver_sql("CHECKPOINT")
    c.commit()
    return {"update": round(update, 2), "rebuild": round(rebuild, 2), "total": round(update + rebuild, 2)}


def identity_statement(table_plan) -> str:
    """The plan's UPDATE with each new value replaced by the column itself (a forced rewrite)."""
    sets = [f'    "{a.column}" = "{a.column}"' for a in table_plan.rewritten]
    return f"UPDATE {USERS_TABLE} SET\n" + ",\n".join(sets)


# ---------------------------------------------------------------------------------------------------------


def profile(server: Server, users: int, args) -> dict:
    if not (args.reuse_prod and prod_users(server) == users):
        bench_build.build(server.admin_url, users, PROD, report=server.report)
        server.admin(f"COMMENT ON DATABASE \"{PROD}\" IS 'deid bench: {users} users'")
    plan = production_plan(server)
    table_plan = next(t for t in plan.tables if t.table == USERS_TABLE)
    server.clone(COPY)
    facts = server_facts(server.admin_url)
    pg18 = int(str(facts["server_version"]).split(".")[0]) >= 18
    result: dict = {
        "users": users,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "server": {"spec": args.server, **facts},
    }
    engine = sa.create_engine(server.url(COPY))
    report = server.report
    try:
        with engine.connect() as c:
            open_deid_session(c, plan, SALT)
            c.exec_driver_sql("SET max_parallel_workers_per_gather = 0")  # one core (deid's split: bench.run)
            c.commit()
            report("primitives")
            result["primitives"] = primitives(c, pg18)
            c.commit()
            report("columns")
            result["columns"] = columns(c, table_plan)
            c.commit()
            report("explain")
            result["explain"] = explain(c, table_plan.statement)
            report("mechanics")
            result["mechanics"] = update_seconds(c, identity_statement(table_plan))
            report("original")
            result["original"] = update_seconds(c, table_plan.statement)
    finally:
        engine.dispose()
        server.drop(COPY)
    report("rewrite limit")
    result["rewrite_limit"] = round(measure_rewrite(server).seconds or 0, 2)
    return result


def markdown(r: dict) -> str:
    limit = r.get("rewrite_limit")

    def x(seconds: float) -> str:
        return f"{seconds / limit:.1f}×" if limit else "–"

    out = [
        f"### Profile of the users scrub, {r['users']:,} users, PostgreSQL {r['server']['server_version']}",
        "",
        "| primitive | µs per call |",
        "| --- | ---: |",
    ]
    out += [f"| {p['primitive']} | {p['us_per_call']:.2f} |" for p in r["primitives"]]
    out += ["", "| column | transformer | seconds (SELECT, 1 core) | share |", "| --- | --- | ---: | ---: |"]
    out += [
        f"| {c['column']} | {c['transformer']} | {c['seconds']:.1f} | {c['share']:.0%} |"
        for c in r["columns"]
    ]
    out += [
        "",
        "| plpgsql function (inside the UPDATE) | calls | total s | self s |",
        "| --- | ---: | ---: | ---: |",
    ]
    out += [
        f"| {f['function']} | {f['calls']:,} | {f['total_s']} | {f['self_s']} |"
        for f in r["explain"]["functions"]
    ]
    out += (
        ["", "EXPLAIN (ANALYZE, BUFFERS, WAL), indexes set aside:", "", "```"]
        + r["explain"]["plan"]
        + ["```"]
    )
    out += [
        "",
        f"| users scrub variant (indexes set aside, rebuilt) | seconds | × rewrite limit ({limit} s) |",
        "| --- | ---: | ---: |",
    ]
    for key, label in (
        ("mechanics", "identity UPDATE (mechanics only) + rebuild"),
        ("original", "deid's UPDATE + rebuild"),
    ):
        out.append(f"| {label} | {r[key]['total']} | {x(r[key]['total'])} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="embedded", help=SERVER_HELP)
    parser.add_argument("--users", type=int, default=bench_build.DEFAULT_USERS)
    parser.add_argument(
        "--reuse-prod", action="store_true", help=f"reuse an existing {PROD} of the same size"
    )
    parser.add_argument("--keep-prod", action="store_true", help=f"do not drop {PROD} at the end")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*-profile.json")
    args = parser.parse_args(argv)

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    server = Server(server_url(args.server), report)
    try:
        result = profile(server, args.users, args)
    finally:
        if not args.keep_prod:
            server.drop(PROD)
    table = markdown(result)
    print(table)
    if not args.no_save:
        major = str(result["server"]["server_version"]).split(".")[0]
        save_result(f"{result['started'][:10]}-{args.users}-pg{major}-profile", result, table, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
