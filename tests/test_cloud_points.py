"""deid.cloud.points: which moment of the source a run's clone holds (no AWS needed: the rules alone)."""

from __future__ import annotations

import datetime as dt

from deid.cloud.points import restore_point

DAY = dt.date(2026, 11, 20)
END = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)  # the end of DAY: midnight UTC after it


def test_tonights_run_takes_the_latest_state():
    """The DAG's run of a date runs on that date: the day has not ended, nothing to restore to."""
    point = restore_point(DAY, END - dt.timedelta(hours=21))
    assert point.time is None and not point.backfill
    assert point.reason.startswith("the latest state: 2026-11-20 ends at 2026-11-21T00:00:00Z, not before")


def test_a_late_run_within_the_margin_takes_the_latest_state():
    point = restore_point(DAY, END + dt.timedelta(hours=9))
    assert point.time is None
    assert "9.0 h before" in point.reason and "within backfill_after_hours (24)" in point.reason


def test_a_day_past_the_margin_restores_its_end():
    point = restore_point(DAY, END + dt.timedelta(hours=24, minutes=30))
    assert point.time == END and point.backfill
    assert point.reason.startswith("a past date:") and "24.5 h before" in point.reason


def test_the_margin_is_a_setting_and_0_restores_every_past_day():
    assert restore_point(DAY, END + dt.timedelta(minutes=6), after_hours=0).time == END
    assert restore_point(DAY, END + dt.timedelta(hours=47), after_hours=48).time is None


def test_a_backfill_run_restores_its_end_whatever_the_margin_but_never_a_time_to_come():
    assert restore_point(DAY, END + dt.timedelta(hours=1), backfill_run=True).time == END
    assert restore_point(DAY, END - dt.timedelta(hours=1), backfill_run=True).time is None


def test_a_source_without_a_window_takes_the_latest_state_unless_the_run_is_a_backfill():
    assert restore_point(DAY, None).time is None
    backfill = restore_point(DAY, None, backfill_run=True)
    assert backfill.time == END and "reports no restorable window" in backfill.reason
