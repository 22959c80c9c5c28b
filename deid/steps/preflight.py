"""Preflight: what a run checks before anything is copied.

`checked_rules` reads the rule file and compares the database it names with deid.yaml's entry that uses it,
so a broken or misplaced rule file fails the run before the snapshot (the CLI's run and Airflow's preflight
task both start with it), and `deid lint` says the same.

`production_plan` then checks the rules against production's live schema (read-only): an early warning, not
the source of truth. It fails a run at once on an unclassified column and shows a dry run's plan, but the
plan that scrubs the copy is built from the copy's own schema by the snapshot and the steps after it
(steps/ledger.py), since production may change while a run is under way.
"""

from __future__ import annotations

from pathlib import Path

from deid import yamlsrc
from deid.backends import backend_for
from deid.config import Config
from deid.db import connect_readonly
from deid.errors import Problem, RuleProblems
from deid.plan import Plan, plan_for
from deid.review.hints import with_drift_hint
from deid.rules.load import load_rules
from deid.rules.model import RuleFile
from deid.steps.context import RunContext


def checked_rules(ctx: RunContext) -> RuleFile:
    """The run's rule file, loaded (every problem at once) and matching deid.yaml's entry; RuleProblems
    otherwise."""
    rules = load_rules(ctx.rules_path)
    problems = database_mismatches(rules, ctx.config, [ctx.database.name])
    if problems:
        raise RuleProblems(problems)
    return rules


def users_of(config: Config, rules_path: Path) -> list[str]:
    """The databases of deid.yaml whose `rules:` is this file."""
    wanted = Path(rules_path).resolve()
    return [name for name in config.databases if config.rules_path(name).resolve() == wanted]


def database_mismatches(rules: RuleFile, config: Config, names: list[str]) -> list[Problem]:
    """A problem for each of deid.yaml's `names` that uses `rules` although the file says it is for another
    database: its `database:` line, and the entry's line in deid.yaml, with the fix."""
    others = [name for name in names if name != rules.database]
    if not others:
        return []
    line = yamlsrc.load(rules.file).line(("database",))
    entries = yamlsrc.load(config.file)
    return [
        Problem(
            rules.file,
            line,
            f"the rule file is for database '{rules.database}', but deid.yaml's database '{name}' uses it "
            f"({config.file}:{entries.line(('databases', name, 'rules'))})",
            f"if this file holds the rules of {name}, write `database: {name}` here; otherwise point "
            f"databases.{name}.rules in {config.file} at the rule file of {name}",
        )
        for name in others
    ]


def production_plan(ctx: RunContext) -> Plan:
    """The plan production's schema would get today; fails closed on any unclassified column."""
    rules = checked_rules(ctx)
    engine = connect_readonly(ctx.production_url)
    try:
        with engine.connect() as connection:
            schema = backend_for(ctx.database.engine).introspect(connection, ctx.database.name)
    finally:
        engine.dispose()
    try:
        plan, _ = plan_for(
            rules, schema, has_migrations=ctx.database.migrations is not None, subset=ctx.only_tables
        )
    except RuleProblems as error:  # production's schema moved away from the rules: point at `deid diff`
        raise with_drift_hint(error, ctx.database.name, ctx.rules_path, ctx.database.rules) from None
    return plan
