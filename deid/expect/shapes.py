"""The shape each transformer promises, as an SQL predicate that is true for a conforming value.

What each transformer promises is here; the engine spells the parts (Backend.validation().shapes, a
ShapeSpelling). Read in the working copy only: a predicate looks at the scrubbed value, never at
production. Transformers whose promise is relative to the production value (shift_date's window, noise's
factor) are checked against production on the primary-key sample instead (see leaks.py); `keep` promises
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from deid.backends.base import ShapeSpelling
from deid.plan import ColumnAction
from deid.schema import Column, Kind
from deid.transformers.common import TAG_HEX
from deid.transformers.dictionaries import entries
from deid.transformers.fake import FAKES
from deid.transformers.masking import RESTRICTED_ZIP3

# (spelling, value SQL, params, column) -> SQL
Predicate = Callable[[ShapeSpelling, str, Mapping[str, Any], Column], str | None]

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


def tag_suffix(name: str, params: Mapping[str, Any]) -> str:
    """The unique tag a `unique: true` fake ends with, as a regex ('' without it)."""
    return re.escape(_SEPARATORS[name]) + _TAG if params.get("unique") else ""


def _without_tag(s: ShapeSpelling, value: str, name: str, params: Mapping[str, Any]) -> str:
    if not params.get("unique"):
        return s.text(value)
    return s.strip(s.text(value), tag_suffix(name, params) + "$")


def _dictionary_fake(dictionary: str) -> Predicate:
    def predicate(s: ShapeSpelling, value: str, params: Mapping[str, Any], column: Column) -> str:
        name = "fake." + dictionary
        tagged = s.matches(value, tag_suffix(name, params) + "$") if params.get("unique") else "true"
        if limited(column):
            return tagged  # a shortened entry is no longer in the dictionary
        return f"({tagged} AND {s.in_words(_without_tag(s, value, name, params), entries(dictionary))})"

    return predicate


def _fake_name(s: ShapeSpelling, value: str, params: Mapping[str, Any], column: Column) -> str:
    tagged = s.matches(value, tag_suffix("fake.name", params) + "$") if params.get("unique") else "true"
    if limited(column):
        return tagged
    first, last = s.split_name(_without_tag(s, value, "fake.name", params))
    firsts, lasts = s.in_words(first, entries("first_name")), s.in_words(last, entries("last_name"))
    return f"({tagged} AND {firsts} AND {lasts})"


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
    if transformer == "generalize_zip":
        restricted = "|".join(RESTRICTED_ZIP3)
        return f"^(000|(?!{restricted})[0-9]{{3}})" + ("00" if params["pad"] else "") + "$"
    return None


def regex_shape(action: ColumnAction, column: Column) -> str | None:
    """The regex a conforming value's text matches, when that is the transformer's whole promise on this
    column (for GX's ExpectColumnValuesToMatchRegex); None where it is more (a dictionary entry, a mask, a
    date, each element of an array, a JSON path), or a range (hash's digits into an integer)."""
    if column.kind is Kind.ARRAY or action.transformer not in _REGEX_ONLY:
        return None
    return regex(action.transformer, action.params, column)


def _regex_only(transformer: str) -> Predicate:
    def predicate(s: ShapeSpelling, value: str, params: Mapping[str, Any], column: Column) -> str:
        return s.matches(value, regex(transformer, params, column))

    return predicate


def _fake_ip(transformer: str) -> Predicate:
    def predicate(s: ShapeSpelling, value: str, params: Mapping[str, Any], column: Column) -> str:
        return s.matches(s.address_text(value, column), regex(transformer, params, column))

    return predicate


def digits_pattern(pattern: str) -> str:
    return "^" + "".join("[0-9]" if c == "#" else re.escape(c) for c in pattern) + "$"


def _hash(s: ShapeSpelling, value: str, params: Mapping[str, Any], column: Column) -> str:
    if params["format"] == "digits" and column.kind is Kind.INTEGER:
        return f"({value}) BETWEEN 0 AND {10 ** len(params['pattern']) - 1}"
    return s.matches(value, regex("hash", params, column))


def _redact(s: ShapeSpelling, value: str, params: Mapping[str, Any], column: Column) -> str:
    start, end, mask = params["keep_start"], params["keep_end"], re.escape(params["mask"])
    masked = s.substring(value, start + 1, f"{s.length(value)} - {start + end}")
    return (
        f"CASE WHEN {s.length(value)} <= {start + end} THEN {s.matches(value, f'^{mask}*$')} "
        f"ELSE {s.matches(masked, f'^{mask}+$')} END"
    )


def _constant(s: ShapeSpelling, value: str, params: Mapping[str, Any], column: Column) -> str:
    # compared as the column holds the constant, so every type (json included) compares
    return s.equals_constant(value, params["value"], column)


def _truncate_date(s: ShapeSpelling, value: str, params: Mapping[str, Any], column: Column) -> str:
    return s.truncated(value, params["unit"], column)


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
    "generalize_zip": _regex_only("generalize_zip"),
    "constant": _constant,
    "truncate_date": _truncate_date,
}
# the transformers whose promise is a regex on the value's text and nothing more (regex_shape)
_REGEX_ONLY = ("fake.email", "fake.phone", "fake.ipv4", "fake.ipv6", "fake.url", "hash", "generalize_zip")
# Promises relative to production's value, checked on the primary-key sample (leaks.py).
RELATIVE = ("shift_date", "noise")


def conforms(action: ColumnAction, column: Column, value: str, spelling: ShapeSpelling) -> str | None:
    """SQL that is true when `value` (an SQL expression for the scrubbed value) keeps the transformer's
    promise; None when the promise cannot be read from the working copy alone."""
    if action.transformer == "null":
        return f"({value}) IS NULL"
    if action.transformer == "json":
        return _json(spelling, action, value)
    predicate = PREDICATES.get(action.transformer)
    if predicate is None:
        return None
    if column.kind is Kind.ARRAY:
        # transformers apply to each element: every element must conform
        element = Column(column.name, column.element_type or "text", column.element_kind or Kind.OTHER)
        return spelling.every_element(value, lambda e: predicate(spelling, e, action.params, element))
    return f"(({value}) IS NULL OR {predicate(spelling, value, action.params, column)})"


def _json(s: ShapeSpelling, action: ColumnAction, value: str) -> str | None:
    """json: each path's nested transformer promise, on the value at that path (missing paths are fine)."""
    from deid.transformers.structured import nested

    parts = []
    for _, steps, transformer, parsed in nested(action.params["paths"]):
        at = s.json_text_at(value, steps)
        text_column = Column("(json path)", "text", Kind.TEXT)
        if transformer.name == "null":
            parts.append(f"{at} IS NULL")
        elif transformer.name in PREDICATES:
            parts.append(f"({at} IS NULL OR {PREDICATES[transformer.name](s, at, parsed, text_column)})")
    return "(" + " AND ".join(parts) + ")" if parts else None
