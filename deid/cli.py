"""`deid`: one entry point, a subcommand per verb. Each verb is a plain function whose docstring is its help.

Exit codes:
  0   success
  1   rule or data problems a person must fix (lint findings, unclassified columns, failed checks)
  2   wrong command-line usage (an unknown option, a date that is not YYYY-MM-DD)
  3   configuration error (deid.yaml, a connection or secret missing or malformed)
  4   transient failure (a database unreachable, another run holding the lock): retrying may help
  70  a bug in deid (run again with --debug and report the traceback)
Errors are printed once, without a traceback, unless --debug is given.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import textwrap
from pathlib import Path

from deid.errors import DeidError, RuleProblems, UsageError
from deid.signals import interruptible

EXIT_BUG = 70


def cmd_lint(args: argparse.Namespace) -> int:
    """Check rule files: syntax, transformers, parameters, and (with a schema) full column coverage.

    Without --schema or --database, a schema snapshot beside the rule file (rules/<db>.schema.json, written
    by `deid schema`) is used when present, so pull requests are checked without production access.
    """
    from deid.rules import constraints, coverage
    from deid.rules.load import load_rules

    files = [Path(f) for f in args.rules] or _default_rule_files(args)
    if not files:
        raise DeidError("no rule files found: pass them as arguments, e.g. deid lint rules/learners.yaml")
    failures = []
    for path in files:
        try:
            rules = load_rules(path)
            _check_users(args, rules)
            note = _threshold_note(args, rules.database)
            if note:
                print(f"{path}: {note}")
            schema, origin = _lint_schema(args, rules.database, path)
            if schema is None:
                print(
                    f"{path}: ok (rules only; no schema to check coverage against: "
                    "pass --schema or --database)"
                )
                continue
            rules, waiting = _awaiting_migrations(args, rules, schema)
            for warning in constraints.warnings(rules, schema):  # unproven, not refused: lint still passes
                print(warning, file=sys.stderr)
            coverage.check_or_raise(rules, schema)
            if waiting:
                print(f"{path}: {len(waiting)} rule(s) wait for migrations: {', '.join(sorted(waiting))}")
            columns = sum(len(t.columns) for t in schema.rule_tables)
            print(
                f"{path}: ok ({len(schema.rule_tables)} tables, {columns} columns covered; "
                f"schema from {origin})"
            )
        except RuleProblems as exc:
            failures.append(exc)
            print(str(exc), file=sys.stderr)
    return 1 if failures else 0


def _check_users(args: argparse.Namespace, rules) -> None:
    """RuleProblems when a database of deid.yaml uses this rule file while it names another database (as
    `deid run` refuses it). No deid.yaml, or one that cannot be read: nothing to compare with (lint is about
    rule files; the commands that read deid.yaml say what is wrong with it)."""
    from deid.errors import ConfigError
    from deid.steps.preflight import database_mismatches, users_of

    try:
        config = _config(args)
    except ConfigError:
        return
    problems = database_mismatches(rules, config, users_of(config, Path(rules.file)))
    if problems:
        raise RuleProblems(problems)


def _threshold_note(args: argparse.Namespace, database: str) -> str | None:
    """A note (never a failure) when deid.yaml raises pii_max_hits for the database: it lets that many hits
    of every pattern pass in every kept column, where a waiver in the rule file lets one check pass on one
    column. Kept working for existing setups; lint points to waivers. No deid.yaml: nothing to say."""
    from deid.errors import ConfigError

    try:
        hits = _config(args).database(database).validation.pii_max_hits
    except ConfigError:
        return None
    if hits <= 0:
        return None
    return (
        f"note: deid.yaml sets validation.pii_max_hits: {hits} for {database}, which lets {hits} matching "
        "rows of every PII pattern pass in every kept column. Waive one check on one column instead: "
        'waive: {phone: "why"} in its rule, and set pii_max_hits back to 0'
    )


def cmd_plan(args: argparse.Namespace) -> int:
    """Print, per table, what each column becomes and the SQL the scrub will run, without running it.

    With --diff BASE HEAD instead of DATABASE: what a rule-file change changes for each column, as Markdown
    for a pull-request comment (risky changes first, marked ⚠). BASE and HEAD are rule files, or
    git:REF:PATH for a committed version (e.g. git:origin/main:rules/learners.yaml).
    """
    from deid import plan as planning
    from deid.rules.load import load_rules

    if args.diff or not args.database:
        from deid.review.commands import plan_diff

        return plan_diff(args)
    config = _config(args)
    rules = load_rules(config.rules_path(args.database))
    schema = _schema_file(args.schema) if args.schema else _introspect(config, args.database)
    rules, waiting = _awaiting_migrations(args, rules, schema)
    print(planning.render(planning.build_plan(rules, schema), with_sql=not args.no_sql))
    if waiting:
        print(f"Rules waiting for migrations (checked after the migrate step): {', '.join(sorted(waiting))}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Compare a schema snapshot with the live schema (or another snapshot), and say what each change means
    for the rule file. Exit 1 when the rule file needs changes.

      deid diff DATABASE             rules/<db>.schema.json (beside the rule file) vs production (read-only)
      deid diff DATABASE --to FILE   ... vs another snapshot instead of production
      deid diff --from OLD --to NEW  two snapshots; the rule file beside OLD, or --rules
    Add --write to refresh the old snapshot with the new schema once the rules are updated.
    """
    from deid.review.commands import diff

    return diff(args)


def cmd_transformers(args: argparse.Namespace) -> int:
    """List the transformers, or show one: its parameters, defaults and the column types it applies to."""
    from deid.transformers import all_transformers, get

    if args.name:
        t = get(args.name)
        print(f"{t.name}\n\n{textwrap.fill(t.description, 100)}\n")
        print(f"applies to: {', '.join(sorted(k.value for k in t.applies_to))}")
        print(f"NULL stays NULL: {'yes' if t.keeps_nulls else 'no'}")
        if t.dictionaries:
            print(f"fake-value dictionaries: {', '.join(t.dictionaries)}")
        print("parameters:" if t.params else "parameters: none")
        for p in t.params:
            default = (
                "required" if p.required else "optional" if p.default is None else f"default {p.default!r}"
            )
            choices = f"; one of {', '.join(map(repr, p.choices))}" if p.choices else ""
            print(f"  {p.name} ({p.type_name}, {default}{choices})\n      {p.description}")
        return 0
    items = all_transformers()
    width = max(len(t.name) for t in items)
    for t in items:
        first = t.description.split(". ")[0].rstrip(".")
        print(f"{t.name:<{width}}  {first}")
    print("\n`deid transformers NAME` shows one; a rule may also name a policy class (rules/policies/).")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    """Sample a production database (read-only) and report, per column, the identifier it seems to hold.

    Evidence is counts and pattern names (`content: email 212/250 sampled`), never a value. --write drafts a
    rule file for every table and column that lints clean against the database's schema; it does not replace
    an existing file unless --force (draft elsewhere and compare: `deid plan --diff RULES DRAFT`).
    """
    from deid.classify.scan import scan_database

    if args.write and Path(args.write).exists() and not args.force:
        # an owner's rule file holds decisions and reasons a draft cannot know: never overwritten by default
        raise UsageError(
            f"{args.write} exists: deid scan does not overwrite a rule file. Write the draft elsewhere "
            f"(--write /tmp/{args.database}.draft.yaml) and compare it with `deid plan --diff {args.write} "
            f"/tmp/{args.database}.draft.yaml`, or pass --force to replace it"
        )
    return scan_database(_config(args), args.database, rows=args.rows, write=args.write)


def cmd_schema(args: argparse.Namespace) -> int:
    """Introspect a production database (read-only) and write its structure as JSON (no row values)."""
    schema = _introspect(_config(args), args.database)
    text = schema.to_json()
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out} ({len(schema.tables)} tables, {len(schema.sequences)} sequences)")
    else:
        sys.stdout.write(text)
    return 0


def cmd_rules_schema(args: argparse.Namespace) -> int:
    """Regenerate the JSON Schemas that editors use to validate and complete rule files and deid.yaml."""
    from deid.rules import jsonschema

    for written in jsonschema.write(Path(args.out)):
        print(f"wrote {written}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Refresh a staging copy: snapshot, scrub, rebase, migrate, validate, publish (or one step with --only).

    Everything date-dependent derives from --date (the logical date; default: today, UTC), so a rerun of a
    date gives the same staging data. Two runs of the same database never overlap.
    """
    from deid.run import context_for, parse_date, run

    def report(line: str) -> None:
        print(f"deid run {args.database}: {line}", flush=True)

    logical_date = parse_date(args.date)  # wrong usage (exit 2) before anything else is read
    config = _config(args)
    ctx = context_for(config, args.database, logical_date, config.settings(), report)
    ctx.publish_older = args.publish_older
    record = run(ctx, only=args.only, report=report)
    print_summary(record)
    return 0


def print_summary(record: dict) -> None:
    """What a run did, in a few lines: rows scrubbed, sequences rebased, migrations, checks, publish."""
    from deid.records.history import summary_lines

    for line in summary_lines(record):
        print(line)


def cmd_rollback(args: argparse.Namespace) -> int:
    """Swap a kept staging copy back in (default: the newest kept one); the current one is kept.

    Refused while a run of the database is under way (a CLI run, or an Airflow run between its tasks)."""
    from deid.run import parse_date
    from deid.steps.guard import check_no_run_under_way, guarded
    from deid.steps.places import place_for

    config = _config(args)
    db = config.database(args.database)
    server = config.settings().connection(db.staging_server)
    to = parse_date(args.to, "--to") if args.to else None
    with guarded(server, db.staging_name) as repaired:
        _say_repaired(repaired)
        place = place_for(config, args.database, config.settings())
        if db.server_copies is None:
            check_no_run_under_way(server, db.staging_name, _cli_holder())
        restored = place.rollback(to)
    print(f"{_published_name(db)} is now the copy of {restored}")
    return 0


def _published_name(db) -> str:
    """The name staging users connect to: the staging database, or the DNS name of server copies."""
    return db.server_copies.record_name if db.server_copies is not None else db.staging_name


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Drop the working copies of a database (a killed run's leftovers: they may hold production values).

    A working copy that belongs to an Airflow run is left alone unless --force: use it only when that run is
    over (failed without its cleanup task)."""
    from deid.steps.guard import guarded
    from deid.steps.places import place_for

    config = _config(args)
    db = config.database(args.database)
    server = config.settings().connection(db.staging_server)
    with guarded(server, db.staging_name) as repaired:
        _say_repaired(repaired)
        dropped = place_for(config, args.database, config.settings()).drop_work(_cli_holder(), args.force)
    dropped += _drop_preview_leftovers(db.engine, server)
    print(f"dropped {', '.join(dropped)}" if dropped else f"{db.staging_name} has no working copy")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    """Rows of one table before and after its scrub, side by side, computed on a throw-away copy.

    It shows production values, so only the people deid.yaml's preview.allowed names may run it (default:
    nobody), in a terminal (elsewhere only with --yes-show-production-values; never under CI). Nothing is
    logged or recorded; the throw-away database is dropped afterwards, whatever happens."""
    from deid.preview.command import preview

    return preview(_config(args), args)


def _drop_preview_leftovers(engine: str, server: str) -> list[str]:
    """Throw-away databases of killed previews (server-wide: they belong to no staging name)."""
    from deid.backends import backend_for
    from deid.lock import lock_url
    from deid.steps.copies import admin

    with admin(lock_url(server)) as c:
        return backend_for(engine).preview_support().drop_leftovers(c)


def _cli_holder():
    from deid.steps.state import Holder, now

    return Holder(via="cli", run_id="cli", since=now())


def _say_repaired(repaired: list[str]) -> None:
    for name in repaired:
        print(f"repaired: {name} accepts connections again (a publish or rollback was cut short)")


def cmd_status(args: argparse.Namespace) -> int:
    """What is published for a database, since when, from which rules, with which offsets; and kept copies."""
    from deid.steps.places import place_for

    config = _config(args)
    db = config.database(args.database)
    server = config.settings().connection(db.staging_server)
    place = place_for(config, args.database, config.settings())
    info = place.status()
    info["repaired"] = _repair_if_idle(server, db.staging_name)
    if info["repaired"]:
        info = {**place.status(), "repaired": info["repaired"]}
    _attach_records(info, config, args.database)
    if args.json:
        import json

        print(json.dumps(info, indent=2, default=str))
    else:
        print(format_status(info))
    return 0


def _repair_if_idle(server: str, staging_name: str) -> list[str] | None:
    """Open again what an interrupted publish left closed, unless a deid command works on the database
    right now (then its own repair covers it); None when the lock was busy."""
    from deid.lock import Busy
    from deid.steps.guard import guarded

    try:
        with guarded(server, staging_name) as repaired:
            return repaired
    except Busy:
        return None


def _attach_records(info: dict, config, database: str) -> None:
    """Each copy's run record, when one is on file (records are read once, for all copies)."""
    from deid.records.store import read_records, record_for_copy

    records = read_records(config.records_dir, database)
    for copy in filter(None, [info.get("published"), *info.get("kept", [])]):
        run_id = (copy.get("metadata") or {}).get("run_id")
        copy["record"] = record_for_copy(records, run_id, copy.get("logical_date"))


def cmd_history(args: argparse.Namespace) -> int:
    """The recorded runs of a database, the most recent first: outcome, timings, validation, report path.

    Reads the run records (deid.yaml's records.dir, or $DEID_RECORDS_DIR); needs no database connection.
    """
    from deid.records.history import format_history
    from deid.records.store import read_records

    config = _config(args)
    config.database(args.database)  # an unknown name is an error, not an empty history
    records = read_records(config.records_dir, args.database)[: args.limit]
    if args.json:
        import json

        print(json.dumps(records, indent=2, default=str))
    else:
        print(format_history(records) if records else f"no runs of {args.database} in {config.records_dir}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Great Expectations' Data Docs of a database's validations (--data-docs): prints the site's index.html.

    Built from the results each run keeps in GX's format beside its record (<run>.gx.json), into
    <records dir>/<database>/data-docs/: every run that has them, or the one --run names (its
    <logical date>__<started> name, its run id, or its logical date). Without --data-docs: the run's report.
    """
    from deid.records.store import read_records

    config = _config(args)
    config.database(args.database)  # an unknown name is an error
    if args.data_docs:
        from deid.expect.data_docs import build

        print(build(config.records_dir, args.database, args.run))
        return 0
    runs = [r for r in read_records(config.records_dir, args.database)
            if args.run in (None, r.get("run_id"), r.get("logical_date"))]  # fmt: skip
    if not runs:
        from deid.errors import ConfigError

        raise ConfigError(f"no {'such ' if args.run else ''}run of {args.database} in {config.records_dir}")
    print(runs[0].get("files", {}).get("report", ""))
    return 0


def cmd_records_lifecycle(args: argparse.Namespace) -> int:
    """The S3 lifecycle rule that expires uploaded run records after deid.yaml's records.keep_days.

    Prints the rule as JSON; --apply puts it on the bucket (replacing an earlier deid rule, keeping every
    other rule of the bucket). Local records are pruned by every run; S3 objects only by this rule.
    """
    import json

    from deid.records.retention import apply_lifecycle, lifecycle_rule

    records = _config(args).records
    if args.apply:
        from botocore.exceptions import BotoCoreError, ClientError

        from deid.errors import ConfigError, TransientError

        try:
            apply_lifecycle(records)
        except ClientError as error:  # refused: a permission or the bucket, which a person must fix
            code = error.response.get("Error", {}).get("Code", "error")
            raise ConfigError(
                f"could not set the lifecycle of {records.s3.where()}: {code}; the role needs "
                "s3:GetLifecycleConfiguration and s3:PutLifecycleConfiguration on the bucket"
            ) from None
        except BotoCoreError as error:  # the network or the endpoint: worth a retry
            raise TransientError(f"could not reach {records.s3.where()}: {type(error).__name__}") from None
        print(f"{records.s3.where()}: run records expire {records.keep_days} days after upload")
    else:
        print(json.dumps(lifecycle_rule(records), indent=2))
    return 0


def format_status(info: dict) -> str:
    """One line per copy: what it is, which logical date, since when, which rules, how far IDs moved."""
    lines = []
    for role, copies in (
        ("published", [info.get("published")]),
        ("kept", info.get("kept", [])),
        ("working", info.get("work", [])),
        ("unreadable", info.get("unknown", [])),  # server copies whose note could not be read
    ):
        for copy in filter(None, copies):
            meta = copy.get("metadata") or {}
            offsets = meta.get("offsets") or {}
            facts = [f"{role:<9}", f"{copy['name']:<40}", f"date {copy.get('logical_date') or '?'}"]
            if not copy.get("allow_connections", True):
                facts.append("CLOSED to connections")
            if meta.get("poisoned"):
                facts.append(f"unusable: {meta['poisoned'].get('step')} failed")
            holder = meta.get("holder") or {}
            if holder.get("via") == "airflow":
                facts.append(f"held by Airflow run {holder.get('dag_id')}/{holder.get('run_id')}")
            if meta.get("ledger"):
                facts.append("steps " + ",".join(s.get("step", "?") for s in meta["ledger"]))
            if meta.get("published_at"):
                facts.append(f"published {meta['published_at']}")
            if meta.get("rules_digest"):
                facts.append(f"rules sha256 {meta['rules_digest'][:12]}")
            if offsets:
                facts.append(
                    f"{len(offsets)} sequences offset {min(offsets.values()):,}..{max(offsets.values()):,}"
                )
            if copy.get("record"):
                from deid.records.history import run_facts

                facts += run_facts(copy["record"])
            lines.append("  ".join(facts))
    if not info.get("published"):
        lines.insert(0, f"{info.get('staging_name')}: nothing published yet")
    for name in info.get("repaired") or ():
        lines.append(f"repaired: {name} accepts connections again (a publish or rollback was cut short)")
    if info.get("repaired") is None and "repaired" in info:
        lines.append("(a deid command is working on this database right now)")
    return "\n".join(lines)


def _awaiting_migrations(args: argparse.Namespace, rules, schema):
    """Rules for objects that the database's configured migrations add are not checked against production."""
    from deid.config import config_path
    from deid.steps.migrate import awaiting_migrations

    if not config_path(args.config).exists():
        return rules, set()
    config = _config(args)
    db = config.databases.get(rules.database)
    return awaiting_migrations(rules, schema, db is not None and db.migrations is not None)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def _config(args: argparse.Namespace):
    from deid.config import load_config

    return load_config(args.config)


def _default_rule_files(args: argparse.Namespace) -> list[Path]:
    root = Path(args.config).parent if args.config else Path(".")
    return sorted(p for p in (root / "rules").glob("*.yaml"))


def _schema_file(path: str):
    """A schema snapshot written by `deid schema`; anything else is wrong usage, named with its fix."""
    import json

    from deid.schema import Schema

    try:
        return Schema.load(Path(path))
    except OSError as exc:
        reason = "it is a folder" if isinstance(exc, IsADirectoryError) else (exc.strerror or "").lower()
    except json.JSONDecodeError as exc:
        reason = f"not JSON (line {exc.lineno}, column {exc.colno})"
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # the snapshot holds names and types only, but the exception's text is not shown all the same
        reason = f"not a schema snapshot ({type(exc).__name__})"
    raise UsageError(
        f"cannot read the schema snapshot {path}: {reason}. "
        "Write one with `deid schema DATABASE --out FILE`, or pass --database to introspect the live schema."
    )


def _lint_schema(args: argparse.Namespace, database: str, rules_path: Path):
    if args.schema:
        return _schema_file(args.schema), args.schema
    if args.database:
        if args.database != database:
            return None, None
        return _introspect(_config(args), database), f"database {database} (live)"
    snapshot = rules_path.with_suffix(".schema.json")
    if snapshot.exists():
        return _schema_file(str(snapshot)), str(snapshot)
    return None, None


def _introspect(config, name: str):
    from deid.backends import backend_for
    from deid.db import connect_readonly

    db = config.database(name)
    engine = connect_readonly(config.settings().connection(db.production))
    try:
        with engine.connect() as connection:
            return backend_for(db.engine).introspect(connection, name)
    finally:
        engine.dispose()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deid",
        description="De-identified staging copies of production databases.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="deid.yaml to read (default: $DEID_CONFIG or ./deid.yaml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, **kwargs) -> argparse.ArgumentParser:
        doc = func.__doc__ or ""
        p = sub.add_parser(
            name,
            help=doc.splitlines()[0],
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )
        p.set_defaults(func=func)
        return p

    lint = add("lint", cmd_lint)
    lint.add_argument("rules", nargs="*", help="rule files (default: rules/*.yaml)")
    source = lint.add_mutually_exclusive_group()
    source.add_argument("--schema", help="schema JSON written by `deid schema`")
    source.add_argument("--database", help="introspect this configured database (read-only)")

    plan = add("plan", cmd_plan)
    plan.add_argument("database", nargs="?")
    plan.add_argument("--diff", nargs=2, metavar=("BASE", "HEAD"), help="compare two versions of a rule file")
    plan.add_argument("--schema", help="use this schema JSON instead of introspecting production")
    plan.add_argument("--no-sql", action="store_true", help="only the per-column table, not the SQL")

    diff = add("diff", cmd_diff)
    diff.add_argument("database", nargs="?", help="a database of deid.yaml")
    diff.add_argument("--from", dest="old", help="the old snapshot (default: the one beside the rule file)")
    diff.add_argument("--to", dest="new", help="the new snapshot (default: the live schema, read-only)")
    diff.add_argument("--rules", help="the rule file (default: the database's, or the one beside --from)")
    diff.add_argument("--write", action="store_true", help="then write the new schema over the old snapshot")

    transformers = add("transformers", cmd_transformers)
    transformers.add_argument("name", nargs="?")

    scan = add("scan", cmd_scan)
    scan.add_argument("database")
    scan.add_argument("--rows", type=_positive, default=1000, help="rows sampled per table (default 1000)")
    scan.add_argument("--write", metavar="FILE", help="draft a complete rule file here")
    scan.add_argument("--force", action="store_true", help="with --write: replace the file if it exists")

    schema = add("schema", cmd_schema)
    schema.add_argument("database")
    schema.add_argument("--out", help="write to this file instead of standard output")

    run = add("run", cmd_run)
    run.add_argument("database")
    run.add_argument("--date", help="logical date YYYY-MM-DD (default: today, UTC)")
    run.add_argument(
        "--only",
        choices=("snapshot", "scrub", "rebase", "migrate", "validate", "publish"),
        help="run one step on this date's working copy (refused where the steps before it did not finish)",
    )
    run.add_argument(
        "--publish-older",
        action="store_true",
        help="publish even if the published copy is of a later date (by default such a copy is only kept)",
    )

    rollback = add("rollback", cmd_rollback)
    rollback.add_argument("database")
    rollback.add_argument("--to", help="the logical date of the kept copy to restore (default: the newest)")

    cleanup = add("cleanup", cmd_cleanup)
    cleanup.add_argument("database")
    cleanup.add_argument(
        "--force", action="store_true", help="also drop a copy an Airflow run holds (when that run is over)"
    )

    preview = add("preview", cmd_preview)
    preview.add_argument("database")
    preview.add_argument("table", help="schema.table (a bare name means public.NAME)")
    preview.add_argument("--rows", type=_positive, default=5, help="rows to show, at most 100 (default 5)")
    preview.add_argument("--columns", help="only these columns, e.g. --columns email,ssn")
    preview.add_argument(
        "--yes-show-production-values",
        action="store_true",
        help="print even when standard output is not a terminal (never under CI)",
    )

    status = add("status", cmd_status)
    status.add_argument("database")
    status.add_argument("--json", action="store_true", help="everything, as JSON")

    history = add("history", cmd_history)
    history.add_argument("database")
    history.add_argument("--limit", type=_positive, default=20, help="at most this many runs (default 20)")
    history.add_argument("--json", action="store_true", help="the records themselves, as JSON")

    report = add("report", cmd_report)
    report.add_argument("database")
    report.add_argument("--run", help="one run: <logical date>__<started>, its run id, or a logical date")
    report.add_argument("--data-docs", action="store_true", help="build Great Expectations' Data Docs")

    lifecycle = add("records-lifecycle", cmd_records_lifecycle)
    lifecycle.add_argument("--apply", action="store_true", help="put the rule on the bucket (else: print it)")

    rules_schema = add("rules-schema", cmd_rules_schema)
    rules_schema.add_argument("--out", default="rules/rules.schema.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    # pyarrow (imported by Great Expectations, used for the run's metrics) then allocates with malloc, reusing
    # memory the validation freed, instead of mimalloc reserving segments of its own: 4 MB less at the peak
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    parser = build_parser()
    args = parser.parse_args(argv)
    with interruptible() as received:
        code = _dispatch(args)
    if received.exit_code is not None:
        # whatever the interrupted statement raised on its way out, the signal is why the command stopped
        name = signal.Signals(received.signum).name
        print(f"deid: stopped by {name}; what the command had started was cleaned up", file=sys.stderr)
        return received.exit_code
    return code


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except DeidError as exc:
        if args.debug:
            raise
        print(f"deid: {exc}" if not isinstance(exc, RuleProblems) else str(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so plainly, without dumping values that may come from production
        if args.debug:
            raise
        print(
            f"deid: internal error ({type(exc).__name__}); run again with --debug for the traceback",
            file=sys.stderr,
        )
        return EXIT_BUG


def command() -> None:
    """The `deid` command (and `python -m deid.cli`): main, then an exit without the interpreter's last
    garbage collections over everything GX, pandas and numba allocated (1.0 s at the end of every run,
    measured). gc.freeze() only takes what exists out of the collector's sight: atexit handlers (logging's
    flush, temporary folders' clean-up) still run."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    command()
