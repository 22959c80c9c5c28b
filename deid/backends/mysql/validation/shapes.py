"""MySQL's and MariaDB's spelling of the transformers' promises (deid.expect.shapes puts them together).

Regular expressions run in ICU (MySQL 8) or PCRE (MariaDB): both read deid's patterns (lookaheads, classes)
as PostgreSQL does; they are matched on the value's utf8mb4 text under the binary collation, so case counts.
There are no arrays; JSON paths are `$."key"` or `$[n]` for a step of digits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from deid.backends.mysql.validation.names import literal, text
from deid.schema import Column, Kind

__all__ = ["text"]

_AT_START = {  # DATE_FORMAT of the parts below the unit, and what they read at the unit's start
    "year": ("%m-%d %H:%i:%s.%f", "01-01 00:00:00.000000"),
    "quarter": ("%d %H:%i:%s.%f", "01 00:00:00.000000"),
    "month": ("%d %H:%i:%s.%f", "01 00:00:00.000000"),
    "week": ("%H:%i:%s.%f", "00:00:00.000000"),
    "day": ("%H:%i:%s.%f", "00:00:00.000000"),
}


def matches(value: str, pattern: str) -> str:
    return f"{text(value)} REGEXP {literal(pattern)}"


def strip(text_sql: str, pattern: str) -> str:
    return f"REGEXP_REPLACE({text_sql}, {literal(pattern)}, '')"


def in_words(text_sql: str, words: Sequence[str]) -> str:
    return f"({text_sql}) IN ({', '.join(literal(w) for w in words)})"


def split_name(text_sql: str) -> tuple[str, str]:
    first = f"SUBSTRING_INDEX({text_sql}, ' ', 1)"
    return first, f"SUBSTRING({text_sql}, CHAR_LENGTH({first}) + 2)"


def length(text_sql: str) -> str:
    return f"CHAR_LENGTH({text_sql})"


def substring(text_sql: str, start: int, count: str) -> str:
    return f"SUBSTRING({text_sql}, {start}, {count})"


def address_text(value: str, column: Column) -> str:
    return value  # MariaDB's inet4/inet6 read as the bare address


def equals_constant(value: str, constant: str, column: Column) -> str:
    if column.kind is Kind.JSON:  # the server keeps JSON in its own spelling: compared as documents
        return (
            f"(JSON_CONTAINS({value}, {literal(constant)}) AND JSON_CONTAINS({literal(constant)}, {value}))"
        )
    if column.kind in (Kind.TEXT, Kind.ENUM, Kind.OTHER):
        return f"{text(value)} = {literal(constant)}"
    return f"({value}) = {literal(constant)}"  # the server reads the constant as the column's type


def truncated(value: str, unit: str, column: Column) -> str:
    below, start = _AT_START[unit]
    at = f"DATE_FORMAT({value}, {literal(below)}) = {literal(start)}"
    if unit == "quarter":
        return f"(MONTH({value}) IN (1, 4, 7, 10) AND {at})"
    if unit == "week":
        return f"(WEEKDAY({value}) = 0 AND {at})"  # weeks start on Monday, as ISO's
    return f"({at})"


def every_element(value: str, predicate: Callable[[str], str]) -> str | None:
    return None  # no arrays


def json_path(steps: tuple[str, ...]) -> str:
    return "$" + "".join(f"[{s}]" if s.isdigit() else '."' + s.replace('"', '\\"') + '"' for s in steps)


def json_text_at(value: str, steps: tuple[str, ...]) -> str:
    at = f"JSON_EXTRACT({value}, {literal(json_path(steps))})"
    return f"(CASE WHEN JSON_TYPE({at}) = 'NULL' THEN NULL ELSE JSON_UNQUOTE({at}) END)"
