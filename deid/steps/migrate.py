"""Migrate: replay on the working copy the schema migrations staging needs and production lacks, then check
the rules again against the migrated schema.

The step runs after scrub and rebase, so whatever a migration copies or derives comes from scrubbed values;
the rules of the columns a migration adds are not applied tonight, but every column must still have one
(fail closed): it documents the column, and it is in place the day production gains the column too. A table
or column added by a migration without a rule fails the run with the YAML block to paste.

Two sets of tables are left out of the check, explicitly:
- the migration tools' own bookkeeping (deid's `_deid_migrations.applied`, Alembic's `alembic_version`),
  unless the rule file has a rule for them, which is then checked like any other;
- rules for tables and columns that existed before tonight's migrations and were dropped by them: the scrub
  needed those rules (production still has the objects), the migrated copy no longer has them.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from deid import db
from deid.backends import backend_for
from deid.migrations import apply_migrations, is_bookkeeping
from deid.rules.coverage import check_or_raise
from deid.rules.load import load_rules
from deid.rules.model import RuleFile
from deid.schema import Schema


def migrate(ctx) -> list[str]:
    """The migrate step of a run: apply what tonight's working copy lacks, then re-check the rules.

    Returns the names of the migrations applied (also in ctx.record["migrations"]). Raises TerminalError
    when a migration fails, RuleProblems when the migrated schema has a column without a rule.
    """
    spec = ctx.database.migrations
    engine = db.engine(ctx.work_url, poolclass=NullPool)
    try:
        before = _introspect(engine, ctx) if spec else None
        applied = apply_migrations(ctx.work_url, spec, ctx.config.root)
        ctx.record["migrations"] = applied
        after = _introspect(engine, ctx)
    finally:
        engine.dispose()
    set_aside = check_migrated(load_rules(ctx.rules_path), after, before)
    if set_aside:
        ctx.record["rules_for_dropped"] = set_aside
    return applied


def check_migrated(rules: RuleFile, migrated: Schema, before: Schema | None = None) -> list[str]:
    """Check `rules` against the `migrated` schema (fail closed; raises RuleProblems with the paste block).

    Bookkeeping tables without a rule are left out, and so are the rules of objects present in `before`
    (the schema before tonight's migrations) and absent from `migrated`. Returns those rules' names.
    """
    dropped = sorted(absent_from(rules, migrated) - absent_from(rules, before)) if before else []
    check_or_raise(without(rules, set(dropped)), without_bookkeeping(migrated, rules))
    return dropped


def without_bookkeeping(schema: Schema, rules: RuleFile) -> Schema:
    """`schema` without the migration tools' own tables, except those `rules` has a rule for."""
    tables = tuple(t for t in schema.tables if not (is_bookkeeping(t) and rules.table(t.qualified) is None))
    return dataclasses.replace(schema, tables=tables)


def absent_from(rules: RuleFile, schema: Schema) -> set[str]:
    """Tables ("schema.table") and columns ("schema.table.column") that `rules` names and `schema` lacks."""
    missing = set()
    for rule in rules.tables:
        table = schema.table(rule.name)
        if table is None:
            missing.add(rule.name)
            continue
        missing |= {f"{rule.name}.{c.name}" for c in rule.columns if table.column(c.name) is None}
    return missing


def without(rules: RuleFile, names: set[str]) -> RuleFile:
    """`rules` without the table rules and column rules named in `names` (as absent_from names them)."""
    if not names:
        return rules
    tables = tuple(
        dataclasses.replace(t, columns=tuple(c for c in t.columns if f"{t.name}.{c.name}" not in names))
        for t in rules.tables
        if t.name not in names
    )
    return dataclasses.replace(rules, tables=tables)


def awaiting_migrations(rules: RuleFile, schema: Schema, has_migrations: bool) -> tuple[RuleFile, set[str]]:
    """Rules to check against production's schema: with migrations configured, rules for tables and columns
    that production lacks are set aside (they wait for the migrate step, whose re-check is strict)."""
    if not has_migrations:
        return rules, set()
    waiting = absent_from(rules, schema)
    return without(rules, waiting), waiting


def _introspect(engine: sa.Engine, ctx) -> Schema:
    with engine.connect() as connection:
        return backend_for(ctx.database.engine).introspect(connection, ctx.database.name)
