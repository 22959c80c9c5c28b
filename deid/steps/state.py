"""A copy's own state: which steps finished on it, for which rules and plan, and what stops it.

Every step of a run writes a *stamp* on the working copy when it has finished (the rules digest, the plan
digest and the digest of the schema it saw, with counts), and every step first reads the stamps and refuses
a copy that the steps before it did not finish, for the same rules. `publish` publishes only a copy whose
last stamp is `validate`, for the plan the scrub applied and the schema it still has. So a step run on its
own (`deid run --only publish`), a step that failed half-way, or a task of another Airflow run can never turn
an unscrubbed copy into the staging copy: the state travels with the copy, and no step trusts one it did not
see finish.

The state is a small JSON document (this model) stored with the copy (see copies.py: the copy's note, where
the engine keeps it), so it moves with every rename and cannot disagree with the catalog. It holds deid's
facts only: names, dates, digests, counts, offsets; the model refuses anything else.

Besides the stamps:
- `poisoned`: a step failed on this copy in a way that leaves it unusable; every step refuses it, the next
  snapshot drops it.
- `holder`: the run that owns the working copy (an Airflow run holds it across its tasks; see lock.py).
- `reopen`: publish closed this copy to connections and has not finished; the next deid command for the
  database opens it again (see publish.repair).
- `snapshot_schema`: the copy's own schema when it was cloned (compressed JSON), so the plan never comes
  from production, which may change while a run is under way; the migrate step and the publish gate compare
  the copy's schema now with it.
- `snapshot_plan`: the plan the snapshot made from that schema (compressed JSON, with the rules it set aside
  for the migrations). Every later step, each Airflow task, reads it instead of planning again: one plan per
  run, and its digest, in the snapshot's stamp, proves it is the one the snapshot made.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from deid.errors import TerminalError
from deid.schema import Schema

if TYPE_CHECKING:
    from deid.plan import Plan

# what only the steps of the run read (large, and not for people reading `deid status`); a copy going live
# leaves them behind
RUN_ONLY = ("snapshot_schema", "snapshot_plan")
FORMAT = 1  # the value of the "deid" key: the version of this layout (new keys are optional, so still 1)
STEPS = ("snapshot", "scrub", "rebase", "migrate", "validate")  # stamped in this order; publish consumes
Step = Literal["snapshot", "scrub", "rebase", "migrate", "validate"]
Digest = Annotated[str, Field(pattern=r"^[A-Za-z0-9:_+/=.-]{1,200}$")]
Name = Annotated[str, Field(max_length=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stamp(_Strict):
    """One finished step."""

    step: Step
    run_id: Name
    at: str  # UTC, when it finished (from the clock: a fact about the run, not about the data)
    rules: Digest | None = None  # sha256 of the rule file the step worked from
    plan: Digest | None = None  # sha256 of the scrub plan (see deid.plan.Plan.digest)
    schema_: Digest | None = Field(default=None, alias="schema")  # the copy's schema digest it saw
    counts: dict[Name, int] = Field(default_factory=dict)  # e.g. tables rewritten, expectations passed

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Poison(_Strict):
    step: Name
    at: str
    reason: Annotated[str, Field(max_length=300)]  # deid's own words (the error's kind), never a value


class Holder(_Strict):
    """Who owns a working copy: a CLI command (one process, so its session lock says it all) or an Airflow
    run, whose tasks are separate processes and hold the copy between tasks through this record."""

    via: Literal["cli", "airflow"]
    run_id: Name
    dag_id: Name | None = None
    since: str

    def describe(self) -> str:
        if self.via == "airflow":
            return f"Airflow run {self.dag_id}/{self.run_id} (since {self.since})"
        return f"deid run {self.run_id} (since {self.since})"


class Reopen(_Strict):
    allow_connections: bool  # what to set again if the publish that closed the copy never finished


class CopyState(_Strict):
    """Everything deid stores on a copy. Unknown keys are refused: only deid's facts go here."""

    deid: Literal[1] = FORMAT
    database: Name | None = None
    logical_date: str | None = None
    state: Literal["work", "published", "kept"] = "work"
    run_id: Name | None = None
    rules_digest: Digest | None = None
    published_at: str | None = None
    offsets: dict[Name, int | None] | None = None  # sequence -> offset (a staging fact, not production's)
    high_waters: dict[Name, int] | None = None  # sequence -> production's high water (IDs, not values)
    subset: list[Name] | None = None  # a run limited to these tables; every other one is emptied
    rows: dict[Name, int] | None = None  # rows per table when the copy was cloned
    # what the streamed scrub counted of each column it scrubbed, every row (deid.vector.tally): counts only
    tallies: dict[Name, dict[Name, int]] | None = None
    # foreign keys the scrub's swaps added back NOT VALID, as (table, constraint): validate checks them
    unchecked_keys: list[tuple[Name, Name]] | None = None
    ledger: list[Stamp] = Field(default_factory=list)
    poisoned: Poison | None = None
    holder: Holder | None = None
    reopen: Reopen | None = None
    snapshot_schema: Annotated[str, Field(max_length=50_000_000)] | None = None
    snapshot_plan: Annotated[str, Field(max_length=50_000_000)] | None = None

    @field_validator("logical_date")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is not None:
            dt.date.fromisoformat(value)
        return value

    # --- reading ---------------------------------------------------------------------------------------

    def stamp(self, step: str) -> Stamp | None:
        return next((s for s in self.ledger if s.step == step), None)

    @property
    def done(self) -> tuple[str, ...]:
        return tuple(s.step for s in self.ledger)

    def schema(self) -> Schema:
        """The copy's schema when it was cloned (the one every plan of this copy is built from)."""
        if not self.snapshot_schema:
            raise TerminalError("the working copy does not carry the schema it was cloned with")
        return Schema.from_json(zlib.decompress(base64.b64decode(self.snapshot_schema)).decode())

    def plan(self) -> tuple[Plan, list[str]]:
        """The plan the snapshot made for this copy, and the rules it set aside for the migrations; refused
        when the copy carries none or not the one its snapshot stamped (its digest)."""
        from deid.plan import Plan

        snapshot = self.stamp("snapshot")
        if not self.snapshot_plan or snapshot is None:
            raise Refused(
                "the working copy does not carry the plan of its snapshot (an earlier deid made it): run "
                "the job again from its snapshot step"
            )
        packed = json.loads(zlib.decompress(base64.b64decode(self.snapshot_plan)).decode())
        plan = Plan.from_json(packed["plan"])
        if plan.digest != snapshot.plan:
            raise Refused(
                "the plan on the working copy is not the one its snapshot made (its digest differs): run the "
                "job again from its snapshot step"
            )
        return plan, list(packed["awaiting_migrations"])

    # --- writing ---------------------------------------------------------------------------------------

    def with_stamp(self, stamp: Stamp) -> CopyState:
        """This state with `stamp` appended, after dropping the stamp of its step and every later one (a
        rerun of a step undoes what the steps after it had checked)."""
        keep = STEPS.index(stamp.step)
        ledger = [s for s in self.ledger if STEPS.index(s.step) < keep]
        return self.model_copy(update={"ledger": [*ledger, stamp]})

    def as_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True, exclude_defaults=False)


def pack_schema(schema: Schema) -> str:
    """The schema as stored on the copy: compressed JSON (a few KB for hundreds of tables)."""
    return base64.b64encode(zlib.compress(schema.to_json().encode(), 9)).decode()


def pack_plan(plan: Plan, awaiting_migrations: Iterable[str]) -> str:
    """The plan as stored on the copy: compressed JSON, with the rules set aside for the migrations."""
    packed = {"plan": plan.to_json(), "awaiting_migrations": sorted(awaiting_migrations)}
    return base64.b64encode(zlib.compress(json.dumps(packed).encode(), 9)).decode()


def parse_state(data: Mapping[str, Any] | None) -> CopyState | None:
    """The state in a copy's metadata; None when there is none or it is not deid's (a format deid does not
    know is treated as no state: such a copy can be dropped, never published)."""
    if not data or data.get("deid") != FORMAT:
        return None
    try:
        return CopyState.model_validate(dict(data))
    except ValidationError:
        return None


def checked(database: str, data: Mapping[str, Any]) -> CopyState:
    """`data` as a CopyState; TerminalError naming the database when it holds anything but deid's facts."""
    try:
        return CopyState.model_validate({**data, "deid": FORMAT})
    except ValidationError as exc:
        # the offending values are not echoed: the point of the check is that they might not be deid's own
        where = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise TerminalError(f"refusing to store metadata on {database}: invalid {', '.join(where)}") from None


class Refused(TerminalError):
    """A step did not start: the copy is not one it may work on (steps missing, another run's, unusable).
    Nothing was done to the copy, so nothing marks it: a refusal never poisons another run's copy."""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def require(state: CopyState | None, step: str, copy: str) -> CopyState:
    """The state of `copy`, when the steps before `step` finished on it in order and nothing poisoned it.

    Raises TerminalError saying what is missing and what to run. A step may run again once it has finished
    (the later stamps are then dropped), except where noted by its own code.
    """
    if state is None:
        raise Refused(
            f"{copy} carries no deid state: it was not made by this version's snapshot step, so nothing can "
            "tell what was done to it. Run the job from its snapshot step"
        )
    if state.poisoned is not None:
        raise Refused(
            f"{copy} cannot be used: its {state.poisoned.step} step failed ({state.poisoned.reason}) and may "
            "have left it half done. Run the job again from its snapshot step (which drops this copy)"
        )
    needed = STEPS[: STEPS.index(step)] if step in STEPS else STEPS
    done = state.done
    if done[: len(needed)] != needed:
        missing = next(s for i, s in enumerate(needed) if i >= len(done) or done[i] != s)
        finished = ", ".join(done) or "none"
        raise Refused(
            f"{copy} is not ready for {step}: the {missing} step has not finished on it (finished: "
            f"{finished}). Run the steps in order: {' > '.join(STEPS)} > publish"
        )
    rules = {s.rules for s in state.ledger[: len(needed)] if s.rules}
    if len(rules) > 1:
        raise Refused(f"{copy} was worked on with different rule files; run it again from snapshot")
    return state
