"""Outcomes from what the streamed scrub counted of every row (deid.vector.tally), where the SQL checks
could only sample: each scrubbed value compared with its own row's production value, every output value
looked up among all of production's values of the column, and NULLs kept as NULLs.

A column with tallies needs neither the sampled comparison nor the scan of production's column that
leaks.py makes for the others; only the window checks of shift_date and noise (which need the two values
side by side, not their equality) stay sampled.
"""

from __future__ import annotations

from collections.abc import Mapping

from deid.expect.report import Outcome
from deid.names import column_key
from deid.plan import Plan
from deid.steps.validate import MAY_COINCIDE
from deid.transformers import get

Tallies = Mapping[str, Mapping[str, int]]  # "schema.table.column" -> counts


def tallied_columns(plan: Plan, tallies: Tallies | None) -> set[str]:
    """The plan's rewritten columns the stream counted (column keys)."""
    if not tallies:
        return set()
    return {
        key for tp in plan.tables for a in tp.rewritten if (key := column_key(tp.table, a.column)) in tallies
    }


def tally_outcomes(plan: Plan, tallies: Tallies | None) -> list[Outcome]:
    from deid.expect.leaks import allowance

    outcomes: list[Outcome] = []
    for tp in plan.tables:
        for action in tp.rewritten:
            counts = (tallies or {}).get(column_key(tp.table, action.column))
            if counts is None:
                continue
            given = counts["rows"] - counts["nulls_in"]
            where = (tp.table, action.column)
            if action.transformer != "null":
                allowed = int(MAY_COINCIDE.get(action.transformer, 0.0) * given)
                unchanged = counts["unchanged"]
                outcomes.append(
                    Outcome(
                        "value_differs_from_production", *where, unchanged <= allowed, unchanged, given,
                        allowed, "every row, compared with its own production value as it streamed",
                    )
                )  # fmt: skip
            produced = given - counts["nulls_made"] + counts["nulls_lost"]
            allowed_found = allowance(
                action, sampled=produced, production_rows=counts["rows"] + counts["static"]
            )
            if allowed_found is not None:
                found = counts["found_in_production"]
                outcomes.append(
                    Outcome(
                        "value_not_found_in_production", *where, found <= allowed_found, found, produced,
                        allowed_found, "every scrubbed value, looked up among all of production's values",
                    )
                )  # fmt: skip
            broken = counts["nulls_lost"] + (
                counts["nulls_made"] if get(action.transformer).keeps_nulls else 0
            )
            outcomes.append(
                Outcome(
                    "nulls_stay_nulls", *where, broken == 0, broken, counts["rows"], 0,
                    "every row: a NULL stays NULL and a value stays a value",
                )
            )  # fmt: skip
    return outcomes
