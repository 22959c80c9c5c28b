"""The shape each transformer promises, as a vector predicate over a batch of its outputs: the stream counts
the values out of shape for every row, so validation needs no scan of the copy for them.

The same promises as deid.expect.shapes (SQL predicates over the copy; the regexes are shared), written with
Arrow's compute functions (RE2 regexes, dictionary lookups by hash). A transformer without a vector predicate
here (`constant` and `truncate_date`, which compare with the column type's rendering; `hash` digits into an
integer column) keeps its SQL check; `tests/test_vector_shapes.py` holds each predicate to its SQL twin,
value by value, on conforming and broken values alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from deid.expect.shapes import DICTIONARY_FAKES, LENGTH_TYPE, limited, regex, tag_suffix
from deid.schema import Column, Kind
from deid.transformers.dictionaries import entries
from deid.transformers.masking import RESTRICTED_ZIP3

VectorPredicate = Callable[[pa.Array], pa.Array]  # outputs (text) -> true where a value conforms


def vector_predicate(transformer: str, params: Mapping[str, Any], column: Column) -> VectorPredicate | None:
    """The predicate of the transformer's promise over its text outputs (NULLs are not judged: the tally
    counts them apart), judged as the column will store them; None where validation checks the shape in SQL
    instead."""
    judged = _judged(transformer, params, column)
    if judged is None:
        return None
    stored = _as_stored(column)
    return judged if stored is None else lambda values: judged(stored(values))


def _as_stored(column: Column) -> Callable[[pa.Array], pa.Array] | None:
    """The text a length-limited column gives back for a text written into it: char(n) drops trailing spaces
    (its cast to text), varchar(n) cuts the spaces past n (any other excess is refused by the COPY)."""
    spelled = column.data_type.strip().lower()
    found = LENGTH_TYPE.fullmatch(spelled)
    if found is None:
        return None
    if found.group(1) in ("character", "char", "bpchar"):
        return lambda values: pc.utf8_rtrim(values, " ")
    length = int(found.group(2))
    return lambda values: pc.if_else(
        pc.greater(pc.utf8_length(values), length), pc.utf8_slice_codeunits(values, 0, length), values
    )


def _judged(transformer: str, params: Mapping[str, Any], column: Column) -> VectorPredicate | None:
    if transformer in DICTIONARY_FAKES:
        return _dictionary_fake(transformer, params, column, (DICTIONARY_FAKES[transformer],))
    if transformer == "fake.name":
        return _dictionary_fake(transformer, params, column, ("first_name", "last_name"))
    if transformer in ("fake.ipv4", "fake.ipv6") and column.kind is Kind.INET:
        # the server's spelling (host()) drops leading zeros and lowercases: the vector form writes
        # 2001:0db8:..., which the column stores as 2001:db8:...
        pattern = "(?i)^0*2001:0*db8:" if transformer == "fake.ipv6" else regex(transformer, params, column)
        return lambda values: pc.match_substring_regex(_host(values), pattern)
    if transformer == "redact":
        return _redact(params)
    if transformer == "generalize_zip":
        return _generalize_zip(params)
    pattern = regex(transformer, params, column)
    if pattern is None:
        return None
    return lambda values: pc.match_substring_regex(values, pattern)


def _host(values: pa.Array) -> pa.Array:
    """An address's text without its mask length (inet's host())."""
    return pc.replace_substring_regex(values, "/[0-9]+$", "")


def _dictionary_fake(
    transformer: str, params: Mapping[str, Any], column: Column, dictionaries: tuple[str, ...]
) -> VectorPredicate:
    """Its unique tag where it has one, then (unless the column's length may have shortened the entry) each
    word in its dictionary: one word, or for a name the first word and the rest."""
    tag = tag_suffix(transformer, params) + "$" if params.get("unique") else None

    def predicate(values: pa.Array) -> pa.Array:
        ok = pc.match_substring_regex(values, tag) if tag else pc.is_valid(values)
        if limited(column):
            return ok
        bare = pc.replace_substring_regex(values, tag, "") if tag else values
        if len(dictionaries) == 1:
            return pc.and_(ok, pc.is_in(bare, value_set=_entries(dictionaries[0])))
        first = pc.replace_substring_regex(bare, "(?s) .*$", "")  # split_part(bare, ' ', 1)
        rest = pc.replace_substring_regex(
            bare, "^[^ ]*( |$)", "", max_replacements=1
        )  # after the first space
        found = pc.and_(
            pc.is_in(first, value_set=_entries(dictionaries[0])),
            pc.is_in(rest, value_set=_entries(dictionaries[1])),
        )
        return pc.and_(ok, found)

    return predicate


@cache
def _entries(name: str) -> pa.Array:
    return pa.array(entries(name), pa.string())


def _redact(params: Mapping[str, Any]) -> VectorPredicate:
    start, end, mask = params["keep_start"], params["keep_end"], re.escape(params["mask"])

    def predicate(values: pa.Array) -> pa.Array:
        short = pc.less_equal(pc.utf8_length(values), start + end)
        middle = pc.utf8_slice_codeunits(values, start, -end if end else None)
        return pc.if_else(
            short,
            pc.match_substring_regex(values, f"^{mask}*$"),
            pc.match_substring_regex(middle, f"^{mask}+$"),
        )

    return predicate


def _generalize_zip(params: Mapping[str, Any]) -> VectorPredicate:
    """Three digits (and "00" when padded), whose prefix is 000 or not a restricted one (the SQL regex says
    so by a lookahead, which RE2 has not)."""
    pattern = "^[0-9]{3}" + ("00" if params["pad"] else "") + "$"
    restricted = pa.array(sorted(RESTRICTED_ZIP3), pa.string())

    def predicate(values: pa.Array) -> pa.Array:
        prefix = pc.utf8_slice_codeunits(values, 0, 3)
        allowed = pc.or_(pc.equal(prefix, "000"), pc.invert(pc.is_in(prefix, value_set=restricted)))
        return pc.and_(pc.match_substring_regex(values, pattern), allowed)

    return predicate
