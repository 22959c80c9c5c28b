"""Preflight: the rules against production's live schema (read-only), before anything is copied.

An early warning, not the source of truth: it fails a run at once on an unclassified column and shows a dry
run's plan, but the plan that scrubs the copy is built from the copy's own schema by the snapshot and the
steps after it (steps/ledger.py), since production may change while a run is under way.
"""

from __future__ import annotations

from deid.backends import backend_for
from deid.db import connect_readonly
from deid.errors import RuleProblems
from deid.plan import Plan, plan_for
from deid.review.hints import with_drift_hint
from deid.rules.load import load_rules
from deid.steps.context import RunContext


def production_plan(ctx: RunContext) -> Plan:
    """The plan production's schema would get today; fails closed on any unclassified column."""
    rules = load_rules(ctx.rules_path)
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
