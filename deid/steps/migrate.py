"""Migrate: replay on the working copy the schema migrations staging needs and production lacks, then check
the rules again against the migrated schema.

The step runs after scrub and rebase, so whatever a migration copies or derives comes from scrubbed values;
the rules of the columns a migration adds are not applied tonight, but every column must still have one
(fail closed): it documents the column, and it is in place the day production gains the column too. A table
or column added by a migration without a rule fails the run with the YAML block to paste.

Two sets of tables are left out of the check, explicitly:
- the migration tools' own bookkeeping (deid's version table, Alembic's `alembic_version`),
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
from deid.dberrors import retell
from deid.migrations import apply_migrations, is_bookkeeping
from deid.rules.coverage import absent_from, awaiting_migrations, check_or_raise, without  # noqa: F401
from deid.rules.model import RuleFile
from deid.schema import Schema


def migrate(ctx) -> list[str]:
    """The migrate step of a run: apply what tonight's working copy lacks, re-check the rules against the
    migrated copy, and rebase the sequences the migrations created.

    Returns the names of the migrations applied (also in ctx.record["migrations"]). Raises TerminalError
    when a migration fails, RuleProblems when the migrated schema has a column without a rule.
    """
    from deid.steps.ledger import applied_plan, begin, finish
    from deid.steps.rebase import rebase_database, sequence_facts

    state = begin(ctx, "migrate")
    _, before, rules = applied_plan(ctx, state)  # the copy as cloned: what tonight's migrations start from
    engine = db.engine(ctx.work_url, poolclass=NullPool)
    try:
        applied = apply_migrations(ctx.work_url, ctx.database.migrations, ctx.config.root)
        ctx.record["migrations"] = applied
        after = _introspect(engine, ctx)
        set_aside = check_migrated(rules, after, before)
        # Sequences a migration created have no production high water: their own values and the columns
        # they feed in the copy count, like a production sequence's. Rebased here, they hand out staging IDs.
        known = {s.qualified for s in before.sequences}
        created = dataclasses.replace(
            after, sequences=tuple(s for s in after.sequences if s.qualified not in known)
        )
        with engine.begin() as connection:
            results = rebase_database(connection, created, ctx.logical_date)
    except sa.exc.DBAPIError as exc:
        raise retell(exc, "migrate") from None
    finally:
        engine.dispose()
    if set_aside:
        ctx.record["rules_for_dropped"] = set_aside
    present = {s.qualified for s in after.sequences}
    facts = sequence_facts(results)
    for key in ("offsets", "high_waters"):  # sequences a migration dropped are no longer checked
        kept = {k: v for k, v in (getattr(state, key) or {}).items() if k in present}
        facts[key] = {**kept, **facts[key]}
    if results:
        ctx.record["offsets"] = {**ctx.record.get("offsets", {}), **results}
        ctx.record["sequences_created_by_migrations"] = sorted(results)
    finish(
        ctx,
        state,
        "migrate",
        rules=rules.digest,
        schema=after.digest,
        counts={"migrations": len(applied), "sequences_rebased": len(results)},
        **facts,
    )
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


def _introspect(engine: sa.Engine, ctx) -> Schema:
    with engine.connect() as connection:
        return backend_for(ctx.database.engine).introspect(connection, ctx.database.name)
