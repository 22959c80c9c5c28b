"""The review commands' bodies (`deid diff`, `deid plan --diff`), kept out of cli.py, which only registers
them. They reuse the CLI's helpers for snapshots, live introspection and rules waiting for migrations."""

from __future__ import annotations

import argparse
from pathlib import Path

from deid.errors import UsageError


def diff(args: argparse.Namespace) -> int:
    """`deid diff` (see its help in cli.py)."""
    from deid.cli import _awaiting_migrations, _config, _introspect, _schema_file
    from deid.review import schema_diff
    from deid.review.hints import snapshot_path
    from deid.rules import coverage
    from deid.rules.load import load_rules

    if not args.database and not (args.old and args.new):
        raise UsageError(
            "name a configured DATABASE, or two snapshots: deid diff --from OLD.json --to NEW.json"
        )
    rules_path = Path(args.rules) if args.rules else None
    if rules_path is None and args.database:
        rules_path = _config(args).rules_path(args.database)
    elif rules_path is None:
        beside = Path(args.old.removesuffix(".schema.json") + ".yaml")
        rules_path = beside if beside.exists() else None
    old_path = Path(args.old) if args.old else snapshot_path(rules_path)
    if not old_path.exists():
        raise UsageError(
            f"no schema snapshot {old_path} to compare with: write it with "
            f"`deid schema {args.database or 'DATABASE'} --out {old_path}` and commit it"
        )
    old = _schema_file(str(old_path))
    new = _schema_file(args.new) if args.new else _introspect(_config(args), args.database)
    new_label = args.new or f"database {args.database} (live)"
    changes = schema_diff.diff_schemas(old, new)
    drift = None
    if rules_path is not None:
        rules = load_rules(rules_path, _shown(rules_path))
        # rules for what neither schema has wait for the configured migrations; what the old one had and the
        # new one lacks was dropped, and its rules are what the report is about
        _, waiting = _awaiting_migrations(args, rules, old)
        waiting &= coverage.absent_from(rules, new)
        rules = coverage.without(rules, waiting)
        drift = schema_diff.explain(changes, rules, new)
        if waiting:
            print(f"{len(waiting)} rule(s) wait for migrations: {', '.join(sorted(waiting))}")
    print(schema_diff.render(drift, changes, _shown(old_path), new_label))
    if drift is None:
        print("\nNo rule file to check: pass --rules FILE to see what the changes mean for it.")
    if args.write:
        old_path.write_text(new.to_json())
        print(f"wrote {_shown(old_path)} (commit it with the rule file's changes)")
    return 1 if drift is not None and drift.needs_change else 0


def plan_diff(args: argparse.Namespace) -> int:
    """`deid plan --diff BASE HEAD` (see its help in cli.py)."""
    from deid.review import plan_diff as pd

    if not args.diff or args.database:
        raise UsageError(
            "usage: deid plan DATABASE, or deid plan --diff BASE HEAD (two rule files, or git:REF:PATH)"
        )
    base, head = args.diff
    print(pd.render(pd.compare(pd.load_version(base), pd.load_version(head)), base, head))
    return 0


def _shown(path: Path) -> str:
    """The path as the owner would type it: relative to the working folder when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
