"""Outcomes from what the streamed scrub counted of every row (deid.vector.tally), where the SQL checks
could only sample: each scrubbed value compared with its own row's production value, every output value
looked up among all of production's values of the column, and NULLs kept as NULLs.

A column with tallies needs neither the sampled comparison nor the scan of production's column that
leaks.py makes for the others; only the window checks of shift_date and noise (which need the two values
side by side, not their equality) stay sampled. A column whose outputs the stream held to its transformer's
shape (deid.vector.shapes) needs no shape scan of the copy either.
"""

from __future__ import annotations

from collections.abc import Mapping

from deid.expect.report import Outcome
from deid.names import column_key
from deid.plan import ColumnAction, Plan
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


def shaped_columns(plan: Plan, tallies: Tallies | None) -> set[str]:
    """The plan's rewritten columns whose every output the stream held to its transformer's shape."""
    return {key for key in tallied_columns(plan, tallies) if "out_of_shape" in (tallies or {})[key]}


def tally_outcomes(plan: Plan, tallies: Tallies | None) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for tp in plan.tables:
        for action in tp.rewritten:
            counts = (tallies or {}).get(column_key(tp.table, action.column))
            if counts is not None:
                outcomes += _column(tp.table, action, counts)
    return outcomes


def _column(table: str, action: ColumnAction, counts: Mapping[str, int]) -> list[Outcome]:
    from deid.expect.leaks import allowance

    found: list[Outcome] = []

    def outcome(expectation: str, broken: int, checked: int, allowed: int, detail: str) -> None:
        found.append(
            Outcome(expectation, table, action.column, broken <= allowed, broken, checked, allowed, detail)
        )

    given = counts["rows"] - counts["nulls_in"]
    if action.transformer != "null":
        allowed = int(MAY_COINCIDE.get(action.transformer, 0.0) * given)
        outcome("value_differs_from_production", counts["unchanged"], given, allowed,
                "every row, compared with its own production value as it streamed")  # fmt: skip
    produced = given - counts["nulls_made"] + counts["nulls_lost"]
    allowed = allowance(action, sampled=produced, production_rows=counts["rows"] + counts["static"])
    if allowed is not None:
        outcome("value_not_found_in_production", counts["found_in_production"], produced, allowed,
                "every scrubbed value, looked up among all of production's values")  # fmt: skip
    if "out_of_shape" in counts:
        outcome("values_match_transformer_shape", counts["out_of_shape"], produced, 0,
                "every scrubbed value, as it streamed")  # fmt: skip
    made = counts["nulls_made"] if _keeps_values(action) else 0
    outcome("nulls_stay_nulls", counts["nulls_lost"] + made, counts["rows"], 0,
            "every row: a NULL stays NULL and a value stays a value")  # fmt: skip
    return found


def _keeps_values(action: ColumnAction) -> bool:
    """Whether a value must stay a value: not for transformers that may make NULLs, nor for json on a text
    column whose `invalid: null` makes NULL of what is not JSON (on a document column it never applies)."""
    if action.transformer == "json":
        return action.params.get("invalid") != "null"
    return get(action.transformer).keeps_nulls
