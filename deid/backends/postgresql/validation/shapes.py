"""PostgreSQL's spelling of the transformers' promises (deid.expect.shapes puts them together)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from deid.backends.postgresql.validation.names import literal, regex_literal
from deid.schema import Column, Kind


def text(value: str) -> str:
    return f"({value})::text"


def matches(value: str, pattern: str) -> str:
    return f"({value})::text ~ {regex_literal(pattern)}"


def strip(text: str, pattern: str) -> str:
    return f"regexp_replace({text}, {regex_literal(pattern)}, '')"


def in_words(text: str, words: Sequence[str]) -> str:
    listed = ", ".join(literal(w) for w in words)
    # = ANY of a constant array is a hash lookup (PostgreSQL 14+) and, unlike a subquery, runs in parallel
    return f"({text}) = ANY(ARRAY[{listed}]::text[])"


def split_name(text: str) -> tuple[str, str]:
    first = f"split_part({text}, ' ', 1)"
    return first, f"substr({text}, length({first}) + 2)"


def length(text: str) -> str:
    return f"length({text})"


def substring(text: str, start: int, count: str) -> str:
    return f"substr({text}, {start}, {count})"


def address_text(value: str, column: Column) -> str:
    return f"host(({value})::inet)" if column.kind is Kind.INET else f"({value})::text"


def equals_constant(value: str, constant: str, column: Column) -> str:
    # compared as text after the same cast the scrub used, so every type (json included) compares
    return f"({value})::text = (CAST({literal(constant)} AS {column.data_type}))::text"


def truncated(value: str, unit: str, column: Column) -> str:
    unit_sql = literal(unit)
    spelled = column.data_type.strip().lower()
    if column.kind is Kind.DATE:
        return f"({value})::timestamp = date_trunc({unit_sql}, ({value})::timestamp)"
    if spelled == "timestamptz" or spelled.endswith("with time zone"):
        return f"({value}) = date_trunc({unit_sql}, {value}, 'UTC')"
    return f"({value}) = date_trunc({unit_sql}, {value})"


def every_element(value: str, predicate: Callable[[str], str]) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM unnest({value}) AS _deid_u(_deid_e) WHERE NOT ({predicate('_deid_e')}))"
    )


def json_text_at(value: str, steps: tuple[str, ...]) -> str:
    return f"(({value})::jsonb #>> ARRAY[{', '.join(literal(s) for s in steps)}]::text[])"


def conforms(action, column: Column, value: str) -> str | None:
    """deid.expect.shapes.conforms in PostgreSQL's spelling (tests hold it to the stream's vector shapes)."""
    import sys

    from deid.expect import shapes as promises

    return promises.conforms(action, column, value, sys.modules[__name__])
