"""The canonical text of dates and timestamps (ISO, in UTC: docs/canonical-text.md) to integers and back,
over Arrow.

A date is int64 days since 1970-01-01; a timestamp int64 microseconds since 2000-01-01, the reference engine's
own epoch, so that the whole range (4714 BC to 294276 AD) fits. Arrow reads and prints years 0001 to 9999
only, while canonical text has later years with more digits and years before 1 as '0044-03-15 BC'. So the year
is split off and the rest is read in a stand-in year, 2000 to 2399, at the same place of the 400-year
Gregorian cycle, then moved back by whole cycles: a cycle is 146097 days, a whole number of weeks, so months,
ISO weeks and leap days fall alike in both years, and truncation can be done in the stand-in year as well.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.errors import TerminalError
from deid.vector import prf

CYCLE_DAYS = 146097  # days in 400 Gregorian years
DAY_US = 86_400_000_000
CYCLE_US = CYCLE_DAYS * DAY_US
EPOCH_2000_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
EPOCH_2000_DAYS = 10957
# the widest range deid's engines hold (the reference's IS_VALID_DATE, IS_VALID_TIMESTAMP): an error past them
DATE_RANGE = (-2_440_588, 2_145_042_905)  # 4714-11-24 BC to 5874897-12-31, inclusive
TIMESTAMP_RANGE = (-211_813_488_000_000_000, 9_223_371_331_199_999_999)  # to 294276-12-31 23:59:59.999999
# years 0001 to 9999 (0001-01-01 to 9999-12-31 23:59:59.999999), which Arrow prints with their own year
COMMON_ERA_DAYS = (-719_162, 2_932_896)
COMMON_ERA_US = ((-719_162 - EPOCH_2000_DAYS) * DAY_US, (2_932_897 - EPOCH_2000_DAYS) * DAY_US - 1)
# extract(epoch) of timestamps from here on is computed by numeric division, rounded to 4 decimals
_EPOCH_DIVIDED_FROM = 2**63 - 1 - EPOCH_2000_US


@dataclass(frozen=True)
class Instants:
    """Parsed values: `values` (days or microseconds, see above) is meaningful where `finite`."""

    values: np.ndarray  # int64
    valid: np.ndarray  # not NULL
    infinite: np.ndarray  # int8: 1 for 'infinity', -1 for '-infinity', else 0
    zoned: np.ndarray  # the text ended in '+00' (with time zone, in UTC): so does the text written back
    timestamp: bool

    @property
    def finite(self) -> np.ndarray:
        return self.valid & (self.infinite == 0)

    def moved(self, values: np.ndarray) -> Instants:
        """The same instants with new values where finite (infinity plus anything stays infinity)."""
        return replace(self, values=np.where(self.finite, values, self.values))


def _mask(flags: pa.Array) -> np.ndarray:
    return flags.fill_null(False).to_numpy(zero_copy_only=False)


def parse(values: pa.Array, *, timestamp: bool, column: str) -> Instants:
    """Read the text of a date (or timestamp) column. Text that is not canonical (ISO, UTC) fails with an
    error naming the column, never the value."""
    values = prf.texts(values)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    infinite = _mask(pc.equal(values, "infinity")).astype(np.int8) - _mask(pc.equal(values, "-infinity"))
    finite = valid & (infinite == 0)
    zoned = _mask(pc.ends_with(values, "+00")) if timestamp else np.zeros(len(values), bool)
    bc = _mask(pc.ends_with(values, " BC"))
    filler = "2000-01-01 00:00:00" + ("+00" if zoned.any() else "") if timestamp else "2000-01-01"
    text = values if finite.all() else pc.if_else(finite, values, filler)
    try:
        parsed = None if bc.any() else _common_era(text, timestamp, bool(zoned.any()))
        if parsed is None:
            parsed, zoned = _any_year(text, bc, timestamp)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowIndexError):
        # Arrow's message quotes the value: not passed on
        what = "timestamp" if timestamp else "date"
        raise TerminalError(
            f"column {column}: a value is not in the canonical ISO {what} text form, so the vector form "
            "cannot read it (the stream reads dates as ISO, in UTC)"
        ) from None
    return Instants(np.where(finite, parsed, 0), valid, infinite, zoned, timestamp)


def _common_era(text: pa.Array, timestamp: bool, zoned: bool) -> np.ndarray | None:
    """Years 0001 to 9999, the usual case, as Arrow reads them; None when a value is not of them."""
    try:
        if timestamp:  # a zoned timestamp's '+00' read by Arrow itself
            read = pc.cast(text, pa.timestamp("us", "UTC" if zoned else None))
            return pc.cast(read, pa.int64()).to_numpy() - EPOCH_2000_US
        return pc.cast(pc.cast(text, pa.date32()), pa.int32()).to_numpy().astype(np.int64)
    except pa.ArrowInvalid:
        return None


def _strip(text: pa.Array, suffix: str) -> tuple[pa.Array, np.ndarray]:
    found = _mask(pc.ends_with(text, suffix))
    if found.any():
        text = pc.if_else(found, pc.utf8_slice_codeunits(text, 0, -len(suffix)), text)
    return text, found


def _any_year(text: pa.Array, bc: np.ndarray, timestamp: bool) -> tuple[np.ndarray, np.ndarray]:
    """Any year of canonical text, read in its stand-in year: (values, where the text had a zone)."""
    text, bc = _strip(text, " BC")  # the era comes after the zone: '0044-03-15 12:00:00+00 BC'
    zoned = np.zeros(len(text), bool)
    if timestamp:
        text, zoned = _strip(text, "+00")
    parts = pc.split_pattern(text, "-", max_splits=1)
    year = pc.cast(pc.list_element(parts, 0), pa.int64()).to_numpy()
    astronomical = np.where(bc, 1 - year, year)  # 1 BC is year 0
    cycles = (astronomical - 2000) // 400
    stand_in = pc.binary_join_element_wise(
        pc.cast(pa.array(astronomical - 400 * cycles), pa.string()), pc.list_element(parts, 1), "-"
    )
    if timestamp:
        micros = pc.cast(pc.cast(stand_in, pa.timestamp("us")), pa.int64()).to_numpy()
        return micros - EPOCH_2000_US + cycles * CYCLE_US, zoned
    days = pc.cast(pc.cast(stand_in, pa.date32()), pa.int32()).to_numpy()
    return days.astype(np.int64) + cycles * CYCLE_DAYS, zoned


def _arrow(instants: Instants) -> pa.Array:
    """The values as Arrow dates or timestamps (0 where not finite): years 0001 to 9999 only print right."""
    v = np.where(instants.finite, instants.values, 0)
    if instants.timestamp:
        return pa.array(v + EPOCH_2000_US, pa.int64()).cast(pa.timestamp("us"))
    return pa.array(v.astype(np.int32), pa.int32()).cast(pa.date32())


def _stand_in(instants: Instants) -> tuple[pa.Array, np.ndarray]:
    """The instants in their stand-in years 2000..2399 (as Arrow dates or timestamps), and the cycles."""
    v = np.where(instants.finite, instants.values, 0)
    if instants.timestamp:
        cycles = v // CYCLE_US
        stand_in = pa.array(v - cycles * CYCLE_US + EPOCH_2000_US, pa.int64()).cast(pa.timestamp("us"))
    else:
        cycles = (v - EPOCH_2000_DAYS) // CYCLE_DAYS
        stand_in = pa.array((v - cycles * CYCLE_DAYS).astype(np.int32), pa.int32()).cast(pa.date32())
    return stand_in, cycles


def _from_stand_in(stand_in: pa.Array, cycles: np.ndarray, timestamp: bool) -> np.ndarray:
    if timestamp:
        return pc.cast(stand_in, pa.int64()).to_numpy() - EPOCH_2000_US + cycles * CYCLE_US
    return pc.cast(stand_in, pa.int32()).to_numpy().astype(np.int64) + cycles * CYCLE_DAYS


def truncate(instants: Instants, unit: str) -> Instants:
    """Truncated in UTC to the start of the year, quarter, month, ISO week (Monday) or day, as in SQL."""
    stand_in, cycles = _stand_in(instants)
    floored = pc.floor_temporal(stand_in, unit=unit, week_starts_monday=True)
    return instants.moved(_from_stand_in(floored, cycles, instants.timestamp))


def in_range(instants: Instants) -> bool:
    """Whether every finite value is one the engines can hold (DATE_RANGE, TIMESTAMP_RANGE)."""
    low, high = TIMESTAMP_RANGE if instants.timestamp else DATE_RANGE
    v = instants.values[instants.finite]
    return bool(v.size == 0 or (v.min() >= low and v.max() <= high))


def format(instants: Instants) -> pa.Array:
    """The canonical text of these values: ISO, with the year's own digits and era, '+00' where
    the input had it, 'infinity' and '-infinity' as they were, NULL for NULL."""
    low, high = COMMON_ERA_US if instants.timestamp else COMMON_ERA_DAYS
    finite = instants.values[instants.finite]
    if finite.size == 0 or (finite.min() >= low and finite.max() <= high):
        text, bc = pc.cast(_arrow(instants), pa.string()), np.zeros(len(instants.values), bool)
    else:
        stand_in, cycles = _stand_in(instants)
        printed = pc.cast(stand_in, pa.string())  # 'YYYY-MM-DD[ HH:MM:SS.ffffff]', YYYY the stand-in year
        astronomical = pc.year(stand_in).to_numpy() + 400 * cycles
        bc = astronomical <= 0
        year = pc.cast(pa.array(np.where(bc, 1 - astronomical, astronomical)), pa.string())
        text = pc.binary_join_element_wise(
            pc.utf8_lpad(year, 4, "0"), pc.utf8_slice_codeunits(printed, 4), ""
        )
    if instants.zoned.any():
        text = pc.binary_join_element_wise(
            text, "+00" if instants.zoned.all() else pc.if_else(instants.zoned, "+00", ""), ""
        )
    if bc.any():
        text = pc.binary_join_element_wise(text, pc.if_else(bc, " BC", ""), "")
    if not instants.finite.all():
        text = pc.if_else(instants.finite, text, pc.if_else(instants.infinite > 0, "infinity", "-infinity"))
        text = pc.if_else(instants.valid, text, None)
    return text


def epoch_text(instants: Instants, needed: np.ndarray | None = None) -> pa.Array:
    """As CAST(extract(epoch from v) AS text) in the reference SQL form (numeric, as of its version 14): whole
    seconds for a date, seconds with exactly 6 decimals for a timestamp (the sign before the whole part:
    '-0.750000'), 'Infinity' and '-Infinity'. NULL where not `needed` (or NULL)."""
    finite = instants.finite
    if instants.timestamp:
        v = np.where(finite, instants.values, 0)
        seconds, micros = v // 1_000_000 + EPOCH_2000_US // 1_000_000, v % 1_000_000
        # past _EPOCH_DIVIDED_FROM, the reference divides numerics instead: rounded to 4 decimals (half up)
        high = v >= _EPOCH_DIVIDED_FROM
        if high.any():
            rounded = (micros + 50) // 100 * 100
            seconds = np.where(high & (rounded == 1_000_000), seconds + 1, seconds)
            micros = np.where(high, rounded % 1_000_000, micros)
        negative = seconds < 0
        borrow = negative & (micros > 0)  # -0.75 is seconds -1, micros 250000
        whole = np.where(negative, -seconds - borrow, seconds)
        fraction = np.where(borrow, 1_000_000 - micros, micros)
        text = pc.binary_join_element_wise(
            pc.if_else(negative, "-", ""),
            pc.cast(pa.array(whole), pa.string()),
            ".",
            pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), 6, "0"),
            "",
        )
    else:
        text = pc.cast(pa.array(np.where(finite, instants.values, 0) * 86400), pa.string())
    keep = instants.valid if needed is None else instants.valid & needed
    special = pc.if_else(instants.infinite > 0, "Infinity", "-Infinity")
    return pc.if_else(pa.array(keep), pc.if_else(finite, text, special), None)
