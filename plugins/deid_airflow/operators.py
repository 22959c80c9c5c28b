"""Thin operators: one per step of the nightly run, each calling deid's step function for one database.

What every step shares lives in DeidStepOperator.execute, in this order:

1. a dry run (param `dry_run`) skips every step but preflight;
2. a RunContext is built from deid.yaml (`config_path`), Airflow's connections and variables (DeidHook), the
   run's logical date (params.run_date) and the `tables` param;
3. the step runs under deid's run lock on the staging server (deid.lock), held for the task's duration,
   after opening again any copy an interrupted publish left closed (steps/guard.py). Between two tasks the
   run holds its working copy as its *holder*, noted on the copy by the snapshot: a `deid run`, `rollback`
   or `cleanup` from the CLI meanwhile is refused, naming this run; `max_active_runs=1` keeps two runs of
   the DAG apart. The mapped scrub tasks of one run share the lock; preflight only reads production and
   takes none, so a dry run is never blocked by a running refresh;
4. deid's terminal errors (a bad rule, an unclassified column, a failed check) and bugs become
   AirflowFailException: the task fails without retry, and marks the working copy unusable (cleanup drops
   it). Transient ones (a lost connection, the lock busy) are retried;
5. the step's facts (names, counts, offsets, seconds; never a row value) go to XCom under FACTS_KEY, for the
   run record that publish assembles; the return value is what the next task needs. The facts are every
   key the step added to or changed in the run context's record (records.step_facts), as `deid run`'s
   record gets them: no list of keys here to fall behind the steps. An operator adds its own on top.

Each task builds its own RunContext and finds everything else on the working copy itself: the plan (the
run's only one, made by the snapshot from the copy's schema as cloned and stored on it; no task plans again),
the steps that finished on it, the sequence offsets. Only the tables to scrub travel by XCom (scrub_prepare
-> scrub, mapped), to map over.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar

import sqlalchemy as sa
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from deid.errors import DeidError
from deid.steps.context import RunContext
from deid_airflow.assets import event_extra
from deid_airflow.hook import DeidHook
from deid_airflow.params import check_conf, is_dry_run, requested_tables, run_date
from deid_airflow.records import FACTS_KEY, run_record, save_record, step_facts


@contextmanager
def terminal_errors_fail_now() -> Iterator[None]:
    """Decide retry or not: deid's transient errors, and the environment's (OSError, a database connection
    lost), propagate and are retried; deid's terminal errors and any other exception (a bug: retrying would
    only repeat it) become AirflowFailException, which fails the task at once. Airflow's own pass unchanged.
    """
    try:
        yield
    except DeidError as error:
        if error.transient:
            raise
        raise AirflowFailException(str(error)) from error
    except (AirflowException, OSError, sa.exc.OperationalError, sa.exc.InterfaceError):
        raise
    except Exception as error:
        raise AirflowFailException(
            f"unexpected {type(error).__name__}: a bug in deid, not retried (see the traceback above)"
        ) from error


class DeidStepOperator(BaseOperator):
    """Base of the step operators: see the module docstring. Subclasses implement `run`."""

    step: ClassVar[str] = ""
    lock: ClassVar[str | None] = "exclusive"  # "shared" for the mapped scrub tasks; None: no lock
    runs_on_dry_run: ClassVar[bool] = False
    # the step's additions to the context's record go to XCom with its facts (off for the mapped scrub:
    # each task's fact is its table's, which run_record files under `tables`)
    passes_record: ClassVar[bool] = True
    template_fields: Sequence[str] = ("database", "config_path", "logical_date")

    def __init__(
        self,
        *,
        database: str,
        config_path: str | None = None,
        logical_date: str | None = None,
        **kwargs: Any,
    ):
        """`database`: its name in deid.yaml. `config_path`: deid.yaml (default: $DEID_CONFIG, else
        ./deid.yaml). `logical_date`: YYYY-MM-DD, overriding the date param and the run's logical date."""
        super().__init__(**kwargs)
        self.database = database
        self.config_path = config_path
        self.logical_date = logical_date

    def execute(self, context: Mapping[str, Any]) -> Any:
        if is_dry_run(context) and not self.runs_on_dry_run:
            raise AirflowSkipException("dry run: plan only, nothing is copied")
        started, began = time.monotonic(), time.time()
        ctx, before = None, None
        try:
            with terminal_errors_fail_now():
                ctx = self.run_context(context)
                lock = nullcontext() if self.lock is None else self._run_lock(ctx)
                with lock:
                    before = copy.deepcopy(ctx.record)
                    returned = dict(self.run(ctx, context) or {})
                facts = {**step_facts(before, ctx.record), **returned} if self.passes_record else returned
        except AirflowSkipException:
            raise
        except BaseException as error:
            if isinstance(error, AirflowFailException) or self._last_try(context):
                self.poison(context, error)
                # what the step noted before it failed (the clone it made, the count near Aurora's limit)
                partial = None
                if ctx is not None and before is not None and self.passes_record:
                    partial = step_facts(before, ctx.record)
                    partial.update(step=self.step, task_seconds=self._since(started), task_started=began)
                self.save_failure(context, error, partial)
            raise
        facts.update(step=self.step, task_seconds=self._since(started), task_started=began)
        context["ti"].xcom_push(key=FACTS_KEY, value=facts)
        return self.result(facts, ctx, context)

    @staticmethod
    def _since(started: float) -> float:
        return round(time.monotonic() - started, 3)

    def run_context(self, context: Mapping[str, Any]) -> RunContext:
        from deid.config import load_config
        from deid.steps.state import Holder

        ctx = RunContext.resolve(
            load_config(self.config_path),
            self.database,
            run_date(context, self.logical_date),
            DeidHook(),
        )
        ctx.only_tables = requested_tables(context)
        ctx.publish_older = bool(context["params"].get("publish_older"))
        ti, dag_run = context["ti"], context["dag_run"]
        began = getattr(dag_run, "start_date", None) or getattr(dag_run, "run_after", None)
        ctx.holder = Holder(
            via="airflow", dag_id=ti.dag_id, run_id=ti.run_id, since=began.isoformat() if began else "?"
        )
        ctx.record["run_id"] = ti.run_id
        # scheduled, manual, backfill, asset_triggered: a backfill restores its logical date's end with
        # server copies (deid.cloud.points), and the record says which run it was
        run_type = getattr(dag_run, "run_type", None)
        ctx.record["run_type"] = str(getattr(run_type, "value", run_type)) if run_type else None
        return ctx

    def _run_lock(self, ctx: RunContext):
        from deid.steps.guard import guarded

        return guarded(ctx.staging_server_url, ctx.staging_name, shared=self.lock == "shared")

    def poison(self, context: Mapping[str, Any], error: BaseException) -> None:
        """A step that ends the run marks the working copy unusable, so that no cleared or retried task can
        take it further (the snapshot drops its own partial copy; publish leaves the published copy as it
        was). Never raises."""
        if self.step in ("preflight", "snapshot", "publish", "cleanup"):
            return
        try:
            from deid.steps.ledger import poison

            cause = error.__cause__ if isinstance(error, AirflowFailException) and error.__cause__ else error
            poison(self.run_context(context), self.step, cause)
        except Exception as problem:
            self.log.warning("could not mark the working copy as failed (%s)", type(problem).__name__)

    def run(self, ctx: RunContext, context: Mapping[str, Any]) -> Mapping[str, Any] | None:
        raise NotImplementedError

    def collect_record(self, ctx: RunContext, context: Mapping[str, Any], *extra: Mapping[str, Any]) -> dict:
        """The run record from the facts every upstream step pushed (in DAG order), plus `extra`."""
        ti = context["ti"]
        run = {
            "database": ctx.database.name,
            "logical_date": ctx.logical_date.isoformat(),
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "run_type": ctx.record.get("run_type"),
        }
        try:
            upstream = self.get_flat_relative_ids(upstream=True)
            steps = [task_id for task_id in self.dag.task_ids if task_id in upstream]
            collected = [
                fact for task_id in steps for fact in ti.xcom_pull(task_ids=[task_id], key=FACTS_KEY) or []
            ]
        except Exception as error:
            self.log.warning("the run record lacks the earlier steps' facts (%s)", type(error).__name__)
            collected = []
        return run_record(run, [*collected, *extra])

    def _last_try(self, context: Mapping[str, Any]) -> bool:
        """No retry follows this try (a transient error on the last try ends the run too)."""
        try_number = getattr(context.get("ti"), "try_number", None)
        return not isinstance(try_number, int) or try_number > (self.retries or 0)

    def save_failure(
        self, context: Mapping[str, Any], error: BaseException, partial: Mapping[str, Any] | None = None
    ) -> None:
        """Save the record of a run that ends here: the facts of the steps before, this step, and why.

        The failing task saves it because no later task may run: the cleanup teardown does not run when
        preflight, its setup, fails. Never raises: the task's own error is what Airflow must see.
        """
        try:
            ctx = self.run_context(context)
            record = self.collect_record(ctx, context, *([partial] if partial else []))
            for warning in save_record(record, ctx, "failed", self.step, error):
                self.log.warning("%s", warning)
            self.log.info("record of the failed run saved as %s", record["files"]["record"])
        except Exception as problem:
            self.log.warning("could not save the failed run's record (%s)", type(problem).__name__)

    def result(self, facts: dict[str, Any], ctx: RunContext, context: Mapping[str, Any]) -> Any:
        """The task's return value (XCom return_value): by default its facts."""
        return facts


class PreflightOperator(DeidStepOperator):
    """Rule coverage against production's live schema (read-only): fails closed on an unclassified column.

    Also refuses conf keys that are not params. On a dry run, logs the plan: what every column becomes and
    the SQL of the scrub.
    """

    step = "preflight"
    lock = None
    runs_on_dry_run = True

    def run(self, ctx, context):
        from deid.plan import render
        from deid.steps.preflight import production_plan

        check_conf(context["dag_run"].conf, self.dag.params)  # the context's params include the conf's keys
        plan = production_plan(ctx)
        if is_dry_run(context):
            self.log.info(
                "dry run of %s for %s, the plan:\n%s", ctx.database.name, ctx.logical_date, render(plan)
            )
        # production's plan today: what a dry run shows (the run's own plan, from the copy, is the snapshot's)
        return {"subset": sorted(ctx.only_tables) if ctx.only_tables else None, "plan": plan.verdicts}


class SnapshotOperator(DeidStepOperator):
    """Clone production into tonight's working copy (closed to everyone but deid's role)."""

    step = "snapshot"

    def run(self, ctx, context):
        from deid.steps.snapshot import snapshot

        snapshot(ctx)  # its facts: what it added to ctx.record (see the module's docstring)


class ScrubPrepareOperator(DeidStepOperator):
    """Support objects in the working copy, big tables split; returns the tables and parts of tables the
    scrub rewrites (one mapped task each)."""

    step = "scrub_prepare"

    def run(self, ctx, context):
        from deid.steps.scrub import scrub_prepare

        return {"scrub_tables": scrub_prepare(ctx)}

    def result(self, facts, ctx, context):
        return facts["scrub_tables"]


class ScrubTableOperator(DeidStepOperator):
    """Scrub one table of the working copy, or one part of a big one (mapped over scrub_prepare's units,
    side by side; a part needs only the copy, so any worker can run it)."""

    step = "scrub"
    lock = "shared"
    passes_record = False
    template_fields: Sequence[str] = (*DeidStepOperator.template_fields, "table")

    def __init__(self, *, table: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.table = table

    def run(self, ctx, context):
        from deid.steps.scrub import scrub_table_set, table_fact

        (result,) = scrub_table_set(ctx, {self.table})
        return {"table": result.table, **table_fact(result)}


class ScrubFinishOperator(DeidStepOperator):
    """Refresh materialized views from scrubbed data; drop the key-derived support objects."""

    step = "scrub_finish"

    def run(self, ctx, context):
        from deid.steps.scrub import scrub_finish

        scrub_finish(ctx)


class RebaseOperator(DeidStepOperator):
    """Move every sequence far above production, by the logical date's offset; returns the offsets."""

    step = "rebase"

    def run(self, ctx, context):
        from deid.steps.rebase import rebase

        rebase(ctx)

    def result(self, facts, ctx, context):
        return ctx.record["offsets"]


class MigrateOperator(DeidStepOperator):
    """Replay the migrations staging needs; re-check the rules against the migrated schema."""

    step = "migrate"

    def run(self, ctx, context):
        from deid.steps.migrate import migrate

        migrate(ctx)


class ValidateOperator(DeidStepOperator):
    """Check the working copy on its own and against production; any failed check fails the run before
    publish. The sequences are checked against the offsets the rebase noted on the copy."""

    step = "validate"

    def run(self, ctx, context):
        from deid.records.counts import run_counts
        from deid.steps.validate import validate

        try:
            validate(ctx)
        finally:  # the same count as the run's summary, deid status and the report, passed or not
            if ctx.record.get("checks") or ctx.record.get("expectations"):
                self.log.info("validation: %s", run_counts(ctx.record).checks_text())


class PublishOperator(DeidStepOperator):
    """Swap the working copy in under the staging name, atomically; keep the previous copy.

    Returns the run record (every step's facts) and writes it to the records dir (see records.py). Its
    outlets (the DAG gives it the staging copy's asset, deid_airflow.assets) get an event with the record's
    names and dates; a copy kept instead of published (an older date) skips the task, so they get none.
    """

    step = "publish"

    def run(self, ctx, context):
        from deid.steps.publish import publish

        outcome = publish(ctx)  # the run_id is noted on the copy: its run record is found by it
        return {"outcome": outcome}

    def result(self, facts, ctx, context):
        # The copy is published (or kept) by now: nothing below may fail the task (a retry of publish would
        # find no working copy), so a record that cannot be assembled or saved is a warning.
        record = self.collect_record(ctx, context, facts)
        outcome = record.pop("outcome", "published")
        try:
            for warning in save_record(record, ctx, outcome):
                self.log.warning("%s", warning)
            self.log.info("run record saved as %s", record["files"]["record"])
            from deid.records.history import summary_lines

            for line in summary_lines(record):  # what `deid run` prints at its end, in the same words
                self.log.info("%s", line)
        except Exception as error:
            self.log.warning("could not save the run record (%s); it is in XCom", type(error).__name__)
        if outcome != "published":
            # the staging copy was not refreshed: a skipped task records no event for the DAG's outlets
            kept = record.get("kept_instead_of_published") or {}
            raise AirflowSkipException(
                f"not published: kept as {kept.get('copy')} for rollback, as the published copy is of a "
                f"later logical date ({kept.get('published_date')}); the param publish_older publishes it"
            )
        for asset in self.outlets:  # the staging copy's asset (deid_airflow.assets): what the event says
            context["outlet_events"][asset].extra.update(event_extra(record))
        return record


class CleanupOperator(DeidStepOperator):
    """Drop this run's working copy if it is still there (it may hold production values).

    The DAG's teardown: it runs once every step is done, whatever their outcome. After a successful publish
    there is nothing left to drop.
    """

    step = "cleanup"

    def run(self, ctx, context):
        from deid.steps.publish import cleanup

        return {"dropped_working_copy": cleanup(ctx)}
