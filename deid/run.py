"""One nightly run of one database: the steps in order, under the database's run lock.

A failure at any step leaves the published staging copy untouched (only publish touches it, atomically), and
the working copy is dropped: it may hold production values that the scrub had not yet replaced.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import suppress

from deid.config import Config, Settings
from deid.steps.context import RunContext

STEPS = ("snapshot", "scrub", "rebase", "migrate", "validate", "publish")


def step_functions() -> dict[str, Callable[[RunContext], object]]:
    from deid.steps.migrate import migrate
    from deid.steps.publish import publish
    from deid.steps.rebase import rebase
    from deid.steps.scrub import scrub
    from deid.steps.snapshot import snapshot
    from deid.steps.validate import validate

    return {
        "snapshot": snapshot,
        "scrub": scrub,
        "rebase": rebase,
        "migrate": migrate,
        "validate": validate,
        "publish": publish,
    }


def run(ctx: RunContext, only: str | None = None, report: Callable[[str], None] = print) -> dict:
    """Run every step (or just `only`) for ctx's database and logical date; returns the run record.

    Each step checks the working copy's own state before it works on it (steps/state.py), so `only` runs a
    step only where the steps before it finished. A failed step marks the copy unusable; a full run then
    drops it. The record is saved whatever the outcome (deid.records.store), with its HTML report and
    metrics; a file that cannot be written or uploaded is reported as a warning and does not change the
    outcome.
    """
    from deid.records.record import finish_record, start_record
    from deid.steps.guard import guarded
    from deid.steps.ledger import poison
    from deid.steps.preflight import checked_rules
    from deid.steps.publish import cleanup
    from deid.steps.state import Holder, now

    steps = (only,) if only else STEPS
    if "scrub" in steps:
        from deid.vector import warm

        warm.in_background()  # numba's start-up, while the snapshot waits on the database
    functions = step_functions()
    record = ctx.record
    record.update(start_record(ctx.database.name, ctx.logical_date, ctx.rules_path, via="cli"))
    record["subset"] = sorted(ctx.only_tables) if ctx.only_tables is not None else None
    record.setdefault("steps", {})
    ctx.holder = Holder(via="cli", run_id=record["run_id"], since=now())
    began, name, outcome = time.monotonic(), "preflight", "step"
    try:
        checked_rules(ctx)  # a broken or misplaced rule file fails here, before the lock and any copy
        name = None
        with guarded(ctx.staging_server_url, ctx.staging_name) as repaired:
            if repaired:
                record["repaired"] = repaired
                report(f"repaired: {', '.join(repaired)} accept connections again (a publish was cut short)")
            try:
                for name in steps:
                    started = time.monotonic()
                    report(f"{name}: started")
                    if name == "scrub":
                        functions[name](
                            ctx,
                            progress=lambda r: report(_progress_line(r)),
                            streams_done=_validation_ahead(steps),
                        )
                    elif name == "publish":
                        outcome = functions[name](ctx)
                    else:
                        functions[name](ctx)
                    seconds = round(time.monotonic() - started, 3)
                    record["steps"][name] = {"start": round(started - began, 3), "seconds": seconds}
                    report(f"{name}: done in {seconds:.1f}s")
            except BaseException as error:
                if name not in (None, "snapshot", "publish"):  # snapshot drops its own partial copy
                    poison(ctx, name, error)
                if only is None:
                    _quietly(cleanup, ctx, error)  # never leave a half-scrubbed copy behind
                raise
    except BaseException as error:
        # `name` is "preflight" when the rule file failed, None when the lock was refused (another run
        # holds it): either way this run did nothing
        finish_record(record, "failed", failed_step=name or "lock", error=error)
        _save(ctx, report)
        raise
    if outcome == "kept":
        kept = record.get("kept_instead_of_published", {})
        report(f"publish: kept as {kept.get('copy')}, not published: {kept.get('reason')}")
    finish_record(record, outcome if only in (None, "publish") else "step")
    _save(ctx, report)
    return record


def context_for(
    config: Config,
    name: str,
    logical_date: dt.date,
    settings: Settings,
    report: Callable[[str], None] = print,
) -> RunContext:
    """The run's context (RunContext.resolve). A setting it cannot resolve (a connection missing or
    malformed, the salt's secret unset) fails the run at its preflight: the error is raised after a record
    of the failed run is saved, as for any other failure. An unknown database has nowhere to be recorded."""
    from deid.errors import DeidError
    from deid.records.record import finish_record, start_record

    config.database(name)
    try:
        return RunContext.resolve(config, name, logical_date, settings)
    except DeidError as error:
        record = start_record(name, logical_date, config.rules_path(name), via="cli")
        finish_record(record, "failed", failed_step="preflight", error=error)
        _save_record(record, config, _resolvable_secrets(config, name, settings), report)
        raise


def _resolvable_secrets(config: Config, name: str, settings: Settings) -> list[str]:
    """secrets_of's list, of the settings that could be resolved: the record's last guard."""
    from deid.db import url_secrets
    from deid.errors import DeidError

    db, found = config.database(name), []
    with suppress(DeidError):
        found.append(settings.secret(db.salt_secret))
    for connection in (db.production, db.staging_server):
        with suppress(DeidError):
            url = settings.connection(connection)
            found += [url, *url_secrets(url)]
    return found


def _validation_ahead(steps: tuple[str, ...]) -> Callable[[], object] | None:
    """What the scrub starts once its rows are all transformed, when validate follows in this process: GX's
    import, while the server builds the last table's indexes (started earlier, it would hold the GIL the
    stream's threads need: the scrub took 4.5 s longer for 2.8 s less of validate, side by side)."""
    if "validate" not in steps:
        return None
    from deid.expect import gx_runner

    return gx_runner.import_in_background


def _quietly(function: Callable[[RunContext], object], ctx: RunContext, error: BaseException) -> None:
    """Run a clean-up after `error`; its own failure becomes a note on `error`, which is what matters."""
    try:
        function(ctx)
    except Exception as failed:
        error.add_note(f"and {function.__name__} failed too: {failed}")


def _save(ctx: RunContext, report: Callable[[str], None]) -> None:
    """Save the record; never raise: the run's own outcome (a publish, or the error that failed it) stands."""
    _save_record(ctx.record, ctx.config, secrets_of(ctx), report)


def _save_record(record: dict, config: Config, secrets: list[str], report: Callable[[str], None]) -> None:
    from deid.records.record import check_clean, error_text
    from deid.records.store import save_run

    try:
        check_clean(record, secrets)
        warnings = save_run(record, config.records, config.records_dir)
    except Exception as error:
        report(f"warning: the run record was not saved ({error_text(error)})")
        return
    for warning in warnings:
        report(f"warning: {warning}")
    report(f"record: {record['files']['record']}")


def secrets_of(ctx: RunContext) -> list[str]:
    """What must never appear in a record: the salt, the key derived from it, the connection URLs and every
    secret they carry (passwords, in the userinfo or as query parameters: deid.db.url_secrets)."""
    from deid.db import url_secrets
    from deid.transformers.keying import prf_key

    found = [ctx.salt, prf_key(ctx.salt).hex()] if ctx.salt else []
    for url in (ctx.production_url, ctx.staging_server_url):
        found += [url, *url_secrets(url)]
    return found


def _progress_line(result) -> str:
    if result.action == "untouched":
        return f"  {result.table}: untouched (shared with the clone)"
    rate = f", {result.rows / result.seconds:,.0f} rows/s" if result.seconds > 0 else ""
    shared = f" ({result.sessions} sessions)" if result.sessions > 1 else ""
    return f"  {result.table}: {result.action} {result.rows:,} rows in {result.seconds:.2f}s{rate}{shared}"


def parse_date(text: str | None, option: str = "--date") -> dt.date:
    """--date: an ISO date; by default today in UTC, which is what Airflow's daily logical date would be.
    Anything else is wrong usage (exit code 2), named with `option`."""
    if not text:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        from deid.errors import UsageError

        raise UsageError(
            f"{option} {text!r} is not a date\n    fix: write it as YYYY-MM-DD, e.g. {option} 2026-11-27"
        ) from None
