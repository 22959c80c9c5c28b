"""The shape each transformer promises, as an SQL predicate that is true for a conforming value.

Read in the working copy only: a predicate looks at the scrubbed value, never at production. Transformers
whose promise is relative to the production value (shift_date's window, noise's factor) are checked against
production on the primary-key sample instead (see leaks.py); `keep` promises nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from deid.expect.sql import literal, regex_literal
from deid.plan import ColumnAction
from deid.schema import Column, Kind
from deid.transformers.common import TAG_HEX
from deid.transformers.dictionaries import entries
from deid.transformers.fake import FAKES
from deid.transformers.masking import RESTRICTED_ZIP3

Predicate = Callable[[str, Mapping[str, Any], Column], str | None]  # (value SQL, params, column) -> SQL

# a length-limited text type: (its name, its length)
LENGTH_TYPE = re.compile(r"(character varying|varchar|character|char|bpchar)\((\d+)\)")
# the fakes that pick one dictionary entry (their promise: the entry, and the unique tag if asked)
DICTIONARY_FAKES = {
    "fake.first_name": "first_name",
    "fake.last_name": "last_name",
    "fake.street_address": "street_address",
    "fake.company": "company",
    "fake.user_name": "user_name",
}
_TAG = f"[0-9a-f]{{{TAG_HEX}}}"
_SEPARATORS = {fake.name: fake.separator for fake in FAKES}  # between a fake and its unique tag


def limited(column: Column) -> bool:
    """A length-limited text column: fake values may have been shortened to fit, so not whole entries."""
    return bool(LENGTH_TYPE.fullmatch(column.data_type.strip().lower()) or column.max_length)


def _matches(value: str, pattern: str) -> str:
    return f"({value})::text ~ {regex_literal(pattern)}"


def _in_dictionary(value: str, name: str) -> str:
    words = ", ".join(literal(w) for w in entries(name))
    # = ANY of a constant array is a hash lookup (PostgreSQL 14+) and, unlike a subquery, runs in parallel
    return f"({value}) = ANY(ARRAY[{words}]::text[])"


def tag_suffix(name: str, params: Mapping[str, Any]) -> str:
    """The unique tag a `unique: true` fake ends with, as a regex ('' without it)."""
    return re.escape(_SEPARATORS[name]) + _TAG if params.get("unique") else ""


def _without_tag(value: str, name: str, params: Mapping[str, Any]) -> str:
    if not params.get("unique"):
        return f"({value})::text"
    return f"regexp_replace(({value})::text, {regex_literal(tag_suffix(name, params) + '$')}, '')"


def _dictionary_fake(dictionary: str) -> Predicate:
    def predicate(value: str, params: Mapping[str, Any], column: Column) -> str:
        name = "fake." + dictionary
        tagged = _matches(value, tag_suffix(name, params) + "$") if params.get("unique") else "true"
        if limited(column):
            return tagged  # a shortened entry is no longer in the dictionary
        return f"({tagged} AND {_in_dictionary(_without_tag(value, name, params), dictionary)})"

    return predicate


def _fake_name(value: str, params: Mapping[str, Any], column: Column) -> str:
    tagged = _matches(value, tag_suffix("fake.name", params) + "$") if params.get("unique") else "true"
    if limited(column):
        return tagged
    bare = _without_tag(value, "fake.name", params)
    first = f"split_part({bare}, ' ', 1)"
    last = f"substr({bare}, length({first}) + 2)"
    return f"({tagged} AND {_in_dictionary(first, 'first_name')} AND {_in_dictionary(last, 'last_name')})"


def regex(transformer: str, params: Mapping[str, Any], column: Column) -> str | None:
    """The regex a conforming value's text matches in full, for the transformers whose promise is just that
    (the SQL predicates below and the stream's vector ones, deid.vector.shapes, share it); None for others."""
    if transformer == "fake.email":
        return f"^[a-z0-9.]*{tag_suffix(transformer, params)}@{re.escape(params['domain'])}$"
    if transformer == "fake.phone":
        return r"^\+1-[2-9][0-9]{2}-555-01[0-9]{2}" + tag_suffix(transformer, params) + "$"
    if transformer == "fake.ipv4":
        return r"^(192\.0\.2|198\.51\.100|203\.0\.113)\.[0-9]{1,3}$"
    if transformer == "fake.ipv6":
        return "^2001:db8:"
    if transformer == "fake.url":
        return f"^https://{re.escape(params['domain'])}/[0-9a-f]{{32}}$"
    if transformer == "hash" and params["format"] == "digits":
        return None if column.kind is Kind.INTEGER else digits_pattern(params["pattern"])
    if transformer == "hash":
        hexed = f"[0-9a-f]{{{params['length']}}}"
        return f"^{hexed}@{re.escape(params['domain'])}$" if params["format"] == "email" else f"^{hexed}$"
    return None


def _regex_only(transformer: str) -> Predicate:
    def predicate(value: str, params: Mapping[str, Any], column: Column) -> str:
        return _matches(value, regex(transformer, params, column))

    return predicate


def _address(value: str, column: Column) -> str:
    return f"host(({value})::inet)" if column.kind is Kind.INET else f"({value})::text"


def _fake_ip(transformer: str) -> Predicate:
    def predicate(value: str, params: Mapping[str, Any], column: Column) -> str:
        return _matches(_address(value, column), regex(transformer, params, column))

    return predicate


def digits_pattern(pattern: str) -> str:
    return "^" + "".join("[0-9]" if c == "#" else re.escape(c) for c in pattern) + "$"


def _hash(value: str, params: Mapping[str, Any], column: Column) -> str:
    if params["format"] == "digits" and column.kind is Kind.INTEGER:
        return f"({value}) BETWEEN 0 AND {10 ** len(params['pattern']) - 1}"
    return _matches(value, regex("hash", params, column))


def _redact(value: str, params: Mapping[str, Any], column: Column) -> str:
    start, end, mask = params["keep_start"], params["keep_end"], re.escape(params["mask"])
    masked = f"substr({value}, {start + 1}, length({value}) - {start + end})"
    return (
        f"CASE WHEN length({value}) <= {start + end} THEN {_matches(value, f'^{mask}*$')} "
        f"ELSE {_matches(masked, f'^{mask}+$')} END"
    )


def _generalize_zip(value: str, params: Mapping[str, Any], column: Column) -> str:
    restricted = "|".join(RESTRICTED_ZIP3)
    zip3 = f"^(000|(?!{restricted})[0-9]{{3}})" + ("00" if params["pad"] else "") + "$"
    return _matches(value, zip3)


def _constant(value: str, params: Mapping[str, Any], column: Column) -> str:
    # compared as text after the same cast the scrub used, so every type (json included) compares
    return f"({value})::text = (CAST({literal(params['value'])} AS {column.data_type}))::text"


def _truncate_date(value: str, params: Mapping[str, Any], column: Column) -> str:
    unit = literal(params["unit"])
    spelled = column.data_type.strip().lower()
    if column.kind is Kind.DATE:
        return f"({value})::timestamp = date_trunc({unit}, ({value})::timestamp)"
    if spelled == "timestamptz" or spelled.endswith("with time zone"):
        return f"({value}) = date_trunc({unit}, {value}, 'UTC')"
    return f"({value}) = date_trunc({unit}, {value})"


PREDICATES: dict[str, Predicate] = {
    **{name: _dictionary_fake(dictionary) for name, dictionary in DICTIONARY_FAKES.items()},
    "fake.name": _fake_name,
    "fake.email": _regex_only("fake.email"),
    "fake.phone": _regex_only("fake.phone"),
    "fake.ipv4": _fake_ip("fake.ipv4"),
    "fake.ipv6": _fake_ip("fake.ipv6"),
    "fake.url": _regex_only("fake.url"),
    "hash": _hash,
    "redact": _redact,
    "generalize_zip": _generalize_zip,
    "constant": _constant,
    "truncate_date": _truncate_date,
}
# Promises relative to production's value, checked on the primary-key sample (leaks.py).
RELATIVE = ("shift_date", "noise")


def conforms(action: ColumnAction, column: Column, value: str) -> str | None:
    """SQL that is true when `value` (an SQL expression for the scrubbed value) keeps the transformer's
    promise; None when the promise cannot be read from the working copy alone."""
    if action.transformer == "null":
        return f"({value}) IS NULL"
    if action.transformer == "json":
        return _json(action, value)
    predicate = PREDICATES.get(action.transformer)
    if predicate is None:
        return None
    element = column
    if column.kind is Kind.ARRAY:
        # transformers apply to each element: every element must conform
        element = Column(column.name, column.element_type or "text", column.element_kind or Kind.OTHER)
        inner = predicate("_deid_e", action.params, element)
        return f"NOT EXISTS (SELECT 1 FROM unnest({value}) AS _deid_u(_deid_e) WHERE NOT ({inner}))"
    return f"(({value}) IS NULL OR {predicate(value, action.params, element)})"


def _json(action: ColumnAction, value: str) -> str | None:
    """json: each path's nested transformer promise, on the value at that path (missing paths are fine)."""
    from deid.transformers.structured import nested

    parts = []
    for _, steps, transformer, parsed in nested(action.params["paths"]):
        at = f"(({value})::jsonb #>> ARRAY[{', '.join(literal(s) for s in steps)}]::text[])"
        text_column = Column("(json path)", "text", Kind.TEXT)
        if transformer.name == "null":
            parts.append(f"{at} IS NULL")
        elif transformer.name in PREDICATES:
            parts.append(f"({at} IS NULL OR {PREDICATES[transformer.name](at, parsed, text_column)})")
    return "(" + " AND ".join(parts) + ")" if parts else None
