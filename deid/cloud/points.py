"""Which moment of the source a run's clone holds: the source's latest state (tonight's run), or the end of
the run's logical date (a backfill).

Why the end of the logical date: a backfill of 2026-11-20 should hold 2026-11-20's data, the same whenever
it is run, as everything else in a run derives from its logical date (naming.end_of_logical_date: midnight
UTC after it, so the whole day is in). A nightly run of that date ran at its scheduled time on the day and
took the latest state then; a backfill cannot see that moment again, and the day's end is the nearest rule
that a run of the CLI (`deid run --date`, which has a date and no time) and of Airflow can share.

What counts as a backfill, and why:

- The day ended before the source's latest restorable time by more than `backfill_after_hours` (24 by
  default): the date is past, so its data is asked for. Within that margin, the run is a late run of that
  night (a failed run cleared the next morning, a retry after midnight, `deid run --date` of yesterday):
  it takes the latest state, a copy-on-write clone in minutes, instead of a full copy that can take hours
  for a day-old difference. `backfill_after_hours: 0` restores every past day.
- An Airflow backfill run (run type `backfill`) says so itself: it restores the end of its date as soon as
  that end is past, whatever the margin.
- A day that has not ended yet (tonight's run: the DAG's run of a date runs on that date) is never a
  backfill: nothing can be restored to a time to come.

The source's latest restorable time, not the clock, is the reference: it is what AWS can restore, and the
run's choice then follows from AWS's facts and the logical date alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from deid.cloud import naming

BACKFILL_AFTER_HOURS = 24.0


@dataclass(frozen=True)
class RestorePoint:
    """The moment to restore (None: the source's latest state) and why, for the run record."""

    time: dt.datetime | None
    reason: str

    @property
    def backfill(self) -> bool:
        return self.time is not None


def restore_point(
    logical_date: dt.date,
    latest: dt.datetime | None,
    *,
    after_hours: float = BACKFILL_AFTER_HOURS,
    backfill_run: bool = False,
) -> RestorePoint:
    """Where a clone for `logical_date` restores the source whose latest restorable time is `latest` (None:
    the source reports none, its automated backups are off); `backfill_run`: the run says it is a backfill
    (Airflow's run type). See the module's docstring for the rules."""
    end = naming.end_of_logical_date(logical_date)
    ends = f"{logical_date} ends at {naming.iso_utc(end)}"
    if latest is None:
        if backfill_run:
            return RestorePoint(end, f"a backfill run: {ends} (the source reports no restorable window)")
        return RestorePoint(None, "the latest state: the source reports no latest restorable time")
    behind = (latest - end).total_seconds() / 3600
    if behind <= 0:
        return RestorePoint(
            None,
            f"the latest state: {ends}, not before the source's latest restorable time "
            f"{naming.iso_utc(latest)}",
        )
    ago = f"{behind:.1f} h before the source's latest restorable time"
    if backfill_run:
        return RestorePoint(end, f"a backfill run: {ends}, {ago}")
    if behind > after_hours:
        return RestorePoint(
            end, f"a past date: {ends}, {ago}, more than backfill_after_hours ({after_hours:g})"
        )
    return RestorePoint(
        None,
        f"the latest state: {ends}, {ago}, within backfill_after_hours ({after_hours:g}): a late run of "
        "that night",
    )
