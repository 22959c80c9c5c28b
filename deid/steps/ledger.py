"""What every step does around its work: read the copy's state, refuse what it must, stamp what it finished.

    state = begin(ctx, "rebase")        # the copy's state, if the steps before rebase finished on it
    ...                                 # the step's work
    finish(ctx, state, "rebase", ...)   # the stamp, with the digests the next steps compare

`begin` also checks that the copy is this run's (deid.lock.check_holder). `applied_plan` reads the plan the
snapshot made from the copy's own schema and stored on it, and refuses when the rule file changed since:
every step of a copy works from one plan, made once per run, the one the scrub applied. `poison` marks a
copy that a failed step may have left half done, so that no later step, and no publish, ever takes it.
"""

from __future__ import annotations

import logging
from typing import Any

from deid.errors import DeidError, TerminalError
from deid.lock import check_holder
from deid.plan import Plan
from deid.rules.load import load_rules
from deid.rules.model import RuleFile
from deid.schema import Schema
from deid.steps.context import RunContext
from deid.steps.places import place_of
from deid.steps.state import CopyState, Poison, Refused, Stamp, now, require

log = logging.getLogger("deid.steps")


def read_state(ctx: RunContext) -> CopyState | None:
    return place_of(ctx).read_state(ctx)


def write_state(ctx: RunContext, state: CopyState) -> None:
    place_of(ctx).write_state(ctx, state)


def begin(ctx: RunContext, step: str) -> CopyState:
    """The state of tonight's working copy, when `step` may run on it (see state.require); TerminalError
    saying what is missing otherwise."""
    place = place_of(ctx)
    if not place.has_work(ctx):
        raise Refused(
            f"there is no working copy {ctx.work_name} for {step}: run the job for {ctx.logical_date} "
            "from its snapshot step"
        )
    state = require(place.read_state(ctx), step, ctx.work_name)
    check_holder(state.holder, ctx.holder, ctx.work_name)
    return state


def finish(
    ctx: RunContext,
    state: CopyState,
    step: str,
    *,
    rules: str | None = None,
    plan: str | None = None,
    schema: str | None = None,
    counts: dict[str, int] | None = None,
    **facts: Any,
) -> CopyState:
    """Stamp `step` as finished on the copy (dropping later stamps), with other facts of the copy; returns
    the new state. The one write that says the step happened: it comes after everything else it did."""
    stamp = Stamp(
        step=step,
        run_id=ctx.holder.run_id,
        at=now(),
        rules=rules,
        plan=plan,
        schema=schema,
        counts=counts or {},
    )
    new = state.model_copy(update=facts).with_stamp(stamp)
    write_state(ctx, new)
    return new


def poison(ctx: RunContext, step: str, error: BaseException) -> None:
    """Mark the working copy unusable after `step` failed with `error`; never raises (the step's own error
    is what matters). Neither is a refusal (the step did not start), nor a transient error: every step's
    writes are atomic or resumable, so a retry (Airflow's, on a lost connection) starts from a consistent
    copy."""
    if isinstance(error, Refused) or (isinstance(error, DeidError) and error.transient):
        return
    reason = type(error).__name__ if not isinstance(error, DeidError) else error.__class__.__name__
    try:
        state = read_state(ctx)
        if state is None:
            return
        write_state(ctx, state.model_copy(update={"poisoned": Poison(step=step, at=now(), reason=reason)}))
    except Exception as failed:  # the copy may be gone or the server unreachable: cleanup drops it anyway
        log.warning("could not mark %s as failed at %s (%s)", ctx.work_name, step, type(failed).__name__)


def applied_plan(ctx: RunContext, state: CopyState) -> tuple[Plan, Schema, RuleFile]:
    """The plan of this copy, the schema it was cloned with and the rule file: the plan its snapshot made
    and stored on it (never planned again), the rule file the one its snapshot checked, and, once scrubbed,
    the plan the one the scrub applied.

    Adds rules_digest, schema_hash and rules_awaiting_migrations to the run record.
    """
    snapshot = state.stamp("snapshot")
    assert snapshot is not None  # require() saw it
    rules = load_rules(ctx.rules_path)
    if rules.digest != snapshot.rules:
        raise TerminalError(
            f"the rule file {ctx.rules_path.name} changed since the snapshot of {ctx.work_name} (sha256 "
            f"{str(snapshot.rules)[:12]} then, {rules.digest[:12]} now): a copy is scrubbed and checked with "
            "one set of rules. Run the job again from its snapshot step"
        )
    schema = state.schema()
    plan, waiting = state.plan()
    scrubbed = state.stamp("scrub")
    if scrubbed is not None and scrubbed.plan != plan.digest:
        raise TerminalError(
            f"the plan on {ctx.work_name} is not the one its scrub applied: run the job again from its "
            "snapshot step"
        )
    ctx.record["rules_digest"] = rules.digest
    ctx.record["schema_hash"] = schema.digest
    ctx.record["rules_awaiting_migrations"] = sorted(waiting)
    return plan, schema, rules
