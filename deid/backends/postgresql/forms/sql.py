"""What every SQL form writes with: the target's value as SQL, literals of rule-file text, casts, the keyed
message, and a column's elements mapped over its array."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from deid.backends.postgresql.quoting import quote_ident, quote_literal
from deid.schema import Column, Kind
from deid.transformers.base import Target

SqlForm = Callable[[Target, Mapping[str, Any]], str]  # (target with its value as SQL, parameters) -> SQL

ELEMENT = "_deid_elem"  # the alias of one array element inside the mapped expression


def sql_target(target: Target, value: str, row: Callable[[str], str] = quote_ident) -> Target:
    """The target as an SQL form reads it: `value` is SQL for the input, `row(name)` the quoted reference to
    another column of the same row (for parameters such as `by:`)."""
    return dataclasses.replace(target, value=value, row=row)


def over_array(element_sql: str, column: Column) -> str:
    """Map an element expression over an array column, keeping order and NULL arrays."""
    return (
        f"CASE WHEN {quote_ident(column.name)} IS NULL THEN NULL ELSE ARRAY("
        f"SELECT {element_sql} FROM unnest({quote_ident(column.name)}) "
        f"WITH ORDINALITY AS _deid_u({ELEMENT}, _deid_n) "
        f"ORDER BY _deid_n)::{column.data_type} END"
    )


def cast(expression: str, sql_type: str) -> str:
    return f"({expression})::{sql_type}"


def keyed(prefix: str, value_sql: str) -> str:
    """The message a keyed hash reads: a per-use prefix (so uses are uncorrelated) and the value as text.

    It depends on nothing but the value, so the same value gives the same output in every table and run.
    """
    return f"{quote_literal(prefix)} || chr(31) || ({value_sql})::text"


def element_wise(column: Column, transformer: str) -> bool:
    """Whether the form applies to each element of the column (an array) rather than to the whole value:
    every transformer but null, which empties the whole array."""
    return column.kind is Kind.ARRAY and transformer != "null"
