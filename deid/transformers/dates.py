"""shift_date and truncate_date: move or coarsen dates and timestamps, keeping their type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from deid.errors import TerminalError
from deid.schema import Kind
from deid.transformers.base import DATE_KINDS, Batch, Param, Target, Transformer
from deid.transformers.common import by_param, check_by
from deid.vector import datetimes, keys

UNITS = ("year", "quarter", "month", "week", "day")


def _parse(batch: Batch, target: Target) -> datetimes.Instants:
    timestamp = target.kind is Kind.TIMESTAMP
    return datetimes.parse(batch.values, timestamp=timestamp, column=target.column.name)


def _shift_date_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    instants = _parse(batch, target)
    days = params["days"]
    keyed = keys.by_ints(
        batch, "shift_date", params["by"], lambda needed: datetimes.epoch_text(instants, needed)
    )
    k = keyed % (2 * days)  # in [0, 2 * days), made a shift in [-days, days] without 0, as in the SQL form
    shift = np.where(k < days, k - days, k - days + 1)
    moved = instants.moved(instants.values + shift * (datetimes.DAY_US if instants.timestamp else 1))
    if not datetimes.in_range(moved):  # where the SQL form fails too ("date out of range")
        raise TerminalError(f"shift_date: column {target.column.name} has a value shifted out of range")
    return datetimes.format(moved)


def _truncate_date_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    # a value with a time zone is read in UTC (the stream pins it), so it is truncated in UTC, as in SQL
    truncated = datetimes.truncate(_parse(batch, target), params["unit"])
    if not datetimes.in_range(truncated):  # the year of 4714 BC starts before the range
        raise TerminalError(f"truncate_date: column {target.column.name} has a value truncated out of range")
    return datetimes.format(truncated)


TRANSFORMERS = (
    Transformer(
        name="shift_date",
        description="Move a date or timestamp by a keyed number of days, never 0. The shift is in [-days, "
        "days] and the type is kept. With `by`, the shift is keyed on another column of the row (an entity "
        "id), so every date of one entity moves by the same amount in every table; without it, on the value "
        "itself. Timestamps move by whole 24-hour days. Cannot serve a unique column.",
        applies_to=DATE_KINDS,
        vector=_shift_date_vector,
        params=(
            Param("days", int, "largest shift, in days, either way", default=30, minimum=1, maximum=3650),
            by_param("shift"),
        ),
        check=check_by,
        unique_safe=False,
    ),
    Transformer(
        name="truncate_date",
        description="Truncate a date or timestamp to the start of its year, quarter, month, ISO week or "
        "day. The type is kept; values with a time zone are truncated in UTC. Cannot serve a unique column.",
        applies_to=DATE_KINDS,
        vector=_truncate_date_vector,
        params=(Param("unit", str, "year, quarter, month, week or day", default="month", choices=UNITS),),
        unique_safe=False,
    ),
)
