"""One nightly run of one database: the steps in order, under the database's run lock.

A failure at any step leaves the published staging copy untouched (only publish touches it, atomically), and
the working copy is dropped: it may hold production values that the scrub had not yet replaced.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from deid.steps.context import RunContext

log = logging.getLogger("deid.run")

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
    """Run every step (or just `only`) for ctx's database and logical date; returns the run record."""
    from deid.lock import run_lock
    from deid.steps.publish import cleanup

    steps = (only,) if only else STEPS
    functions = step_functions()
    ctx.record.setdefault("steps", {})
    with run_lock(ctx.staging_server_url, ctx.staging_name):
        try:
            for name in steps:
                started = time.monotonic()
                report(f"{name}: started")
                if name == "scrub":
                    functions[name](ctx, progress=lambda r: report(_progress_line(r)))
                else:
                    functions[name](ctx)
                seconds = round(time.monotonic() - started, 3)
                ctx.record["steps"][name] = {"seconds": seconds}
                report(f"{name}: done in {seconds:.1f}s")
        except BaseException:
            if only is None:
                cleanup(ctx)  # never leave a half-scrubbed copy behind
            raise
    return ctx.record


def _progress_line(result) -> str:
    if result.action == "untouched":
        return f"  {result.table}: untouched (shared with the clone)"
    rate = f", {result.rows / result.seconds:,.0f} rows/s" if result.seconds > 0 else ""
    shared = f" ({result.sessions} sessions)" if result.sessions > 1 else ""
    return f"  {result.table}: {result.action} {result.rows:,} rows in {result.seconds:.2f}s{rate}{shared}"


def parse_date(text: str | None) -> dt.date:
    """--date: an ISO date; by default today in UTC, which is what Airflow's daily logical date would be."""
    if not text:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        from deid.errors import DeidError

        raise DeidError(f"--date {text!r} is not a date: use YYYY-MM-DD") from None
