"""Text pieces that several vector forms share, each the Arrow twin of a piece of the reference SQL forms
(the forms package of the backend whose Backend.column_sql gives SQL; its modules common and dictionaries):
the text a keyed message reads (`keyed`), the unique tag (common.tag), dictionary picks
(dictionaries.pick) and fitting a fake into a length limit (common.fit). Bit for bit the SQL's output; no
Python call per value (per dictionary entry is fine: a few thousand, once per process).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.schema import Kind
from deid.transformers.base import Target
from deid.transformers.common import TAG_HEX
from deid.transformers.dictionaries import SIZES, entries
from deid.vector import prf

# char(n) as format_type spells it ("character(12)", "bpchar"), or as a rule file may
_BPCHAR = re.compile(r"(?:character|char|bpchar)(?:\s*\(\s*\d+\s*\))?")
FIT_TRIM = " .-_"  # what common.fit trims off the end of a shortened readable part


def keyed_texts(values: pa.Array, target: Target) -> pa.Array:
    """The text that `keyed()` hashes, CAST(value AS text), from the values' text forms.

    The stream reads a value's output text, which differs from its cast to text in two cases: a char(n)'s
    output keeps the blank padding that the cast drops, and an inet's output omits a full mask length
    (10.1.2.3) that the cast always shows (10.1.2.3/32). Both fixes are idempotent, so values that already
    are cast-to-text forms (as the oracle test reads them) pass unchanged. A domain over char(n) is not
    recognised by its name and keeps its padding.
    """
    values = prf.texts(values)
    if target.kind is Kind.INET:
        bare = pc.invert(pc.match_substring(values, "/"))
        mask = pc.if_else(pc.match_substring(values, ":"), "/128", "/32")
        return pc.if_else(bare, pc.binary_join_element_wise(values, mask, ""), values)
    if _BPCHAR.fullmatch(target.sql_type.strip().lower()):
        return pc.utf8_rtrim(values, characters=" ")  # bpchar to text drops trailing spaces, only those
    return values


def tag(key: prf.Key, prefix: str, values: pa.Array) -> pa.Array:
    """As common.tag: TAG_HEX hex characters of the PRF under `prefix.tag` (NULL for NULL)."""
    return prf.hexes(key, prefix + ".tag", values, TAG_HEX)


@cache
def strings(values: tuple[str, ...]) -> pa.Array:
    """A fixed tuple of strings as an Arrow array, made once."""
    return pa.array(values, pa.string())


@cache
def dictionary(name: str, entry: Callable[[str], str] | None = None) -> pa.Array:
    """Dictionary `name` as an Arrow array, each entry as `entry` makes it (the Python twin of the SQL
    `entry` expression of dictionaries.slot), then right-trimmed of spaces as the slot's rtrim does."""
    made = entries(name) if entry is None else tuple(entry(e) for e in entries(name))
    return strings(tuple(e.rstrip(" ") for e in made))


def pick(
    key: prf.Key, name: str, prefix: str, values: pa.Array, entry: Callable[[str], str] | None = None
) -> pa.Array:
    """As dictionaries.pick: entry mod(prf_int(prefix || chr(31) || value), size) of the dictionary."""
    n, valid = prf.ints(key, prefix, values)
    return take(dictionary(name, entry), n % SIZES[name], valid)


def take(table: pa.Array, index: np.ndarray, valid: np.ndarray) -> pa.Array:
    """table[index[i]] for each i, NULL where not `valid`."""
    return table.take(pa.array(index, mask=~valid))


def join(*parts: str | pa.Array) -> pa.Array:
    """The parts concatenated (`||`): NULL where any part is NULL."""
    return pc.binary_join_element_wise(*parts, "")


def fit(readable: pa.Array, suffix: Sequence[str | pa.Array], suffix_len: int, limit: int | None) -> pa.Array:
    """As common.fit: `readable || suffix`, the readable part cut to `limit - suffix_len` characters (code
    points, as SQL's length() counts) and stripped of trailing separators, so the suffix survives whole."""
    if limit is not None:
        if not suffix:
            return pc.utf8_slice_codeunits(readable, 0, limit)
        readable = pc.utf8_slice_codeunits(readable, 0, limit - suffix_len)
        readable = pc.utf8_rtrim(readable, characters=FIT_TRIM)  # trimmed also when nothing was cut, as SQL
    return join(readable, *suffix) if suffix else readable
