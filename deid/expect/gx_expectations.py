"""deid's custom Great Expectations: the checks GX has no built-in for, each a subclass of GX's
UnexpectedRowsExpectation, as GX documents custom SQL expectations (a class with its own description; the
query is the instance's `unexpected_rows_query`; GX's own validation: success when the query returns no row).

The built-ins used where one exists (row counts, uniqueness, regex shapes) are named in BUILT_IN; which
check is which is decided by deid.expect.suites, and run by deid.expect.gx_runner. Every custom query
returns counts and names only (deid.expect.spec), so their results, kept in GX's own format beside the run
record, hold no row value.

Importing this module imports GX: only gx_runner does, when a suite runs.
"""

from __future__ import annotations

from great_expectations import expectations as gxe


class ExpectDeidQueryReturnsNoRows(gxe.UnexpectedRowsExpectation):
    """A deid check of its own; the subclasses below say which."""

    description: str = "deid: the query returns no row (it returns one per failing column, counts only)"


class ExpectValuesMatchTransformerShape(ExpectDeidQueryReturnsNoRows):
    description: str = "deid: every scrubbed value has the shape its transformer promises (a scan per table)"


class ExpectStaticRowsWithinLimit(ExpectDeidQueryReturnsNoRows):
    description: str = "deid: the rows kept unscrubbed as static test data stay within the table's limit"


class ExpectStaticRowsIdentical(ExpectDeidQueryReturnsNoRows):
    description: str = "deid: the static test rows are identical to production's (compared as digests)"


class ExpectForeignKeyWithoutOrphans(ExpectDeidQueryReturnsNoRows):
    description: str = "deid: every referencing row of the foreign key finds its referenced row"


class ExpectSequenceAboveProduction(ExpectDeidQueryReturnsNoRows):
    description: str = "deid: the sequence's next value is above production's high water plus the offset"


class ExpectKeptTextWithoutPii(ExpectDeidQueryReturnsNoRows):
    description: str = "deid: kept text columns hold no value matching a PII pattern (emails, SSNs, ...)"


CUSTOM: dict[str, type[ExpectDeidQueryReturnsNoRows]] = {
    "values_match_transformer_shape": ExpectValuesMatchTransformerShape,
    "static_rows_within_limit": ExpectStaticRowsWithinLimit,
    "static_rows_identical": ExpectStaticRowsIdentical,
    "foreign_key_without_orphans": ExpectForeignKeyWithoutOrphans,
    "sequence_above_production": ExpectSequenceAboveProduction,
    "kept_text_without_pii": ExpectKeptTextWithoutPii,
}

# deid's name of a check -> GX's built-in expectation that makes it (Spec.gx names the class)
BUILT_IN = {
    "row_count_unchanged": "ExpectTableRowCountToEqual",
    "unique_values": "ExpectColumnValuesToBeUnique",
    "values_match_transformer_shape": "ExpectColumnValuesToMatchRegex",  # where the promise is a regex
}


def custom(expectation: str) -> type[ExpectDeidQueryReturnsNoRows]:
    return CUSTOM.get(expectation, ExpectDeidQueryReturnsNoRows)


def built_in(name: str) -> type:
    return getattr(gxe, name)
