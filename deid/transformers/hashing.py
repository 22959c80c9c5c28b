"""hash: a keyed, deterministic replacement as hex, as digits in a pattern (SSN, account numbers), or as an
email address. Digits come from a keyed permutation, so a unique column stays unique."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.schema import Kind
from deid.transformers.base import Batch, Param, Target, Transformer
from deid.transformers.common import domain_param, too_long
from deid.transformers.keying import MAX_DIGITS
from deid.vector import fpe, prf
from deid.vector.textcast import sql_text

UNIQUE_HEX = 32  # 128 bits: collisions among 10^9 distinct values have probability below 2^-68
_INTEGER_DIGITS = {"smallint": 4, "integer": 9, "bigint": MAX_DIGITS}
_MAX_GROUPS = 9  # the SQL form lays runs of '#' out by regular-expression back-references, \1 to \9


def _pattern(value: str) -> str | None:
    digits, groups = value.count("#"), len(re.findall("#+", value))
    if not 1 <= digits <= MAX_DIGITS:
        return f"must hold 1 to {MAX_DIGITS} '#' (one per digit), got {digits}"
    if groups > _MAX_GROUPS:
        return f"may hold at most {_MAX_GROUPS} runs of '#', got {groups}"
    return None


def _hash_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    fmt = params["format"]
    values = sql_text(batch.values, target.sql_type)  # keyed on the value cast to text, as the SQL form
    if target.kind is Kind.UUID:
        return _uuid_vector(batch.key, values)
    if fmt == "digits":
        return _digits_vector(batch.key, values, target, params["pattern"])
    hexed = prf.hexes(batch.key, "hash", values, params["length"])
    if fmt == "email":
        hexed = pc.binary_join_element_wise(hexed, "@" + params["domain"], "")
    return hexed


def _digits_vector(key: prf.Key, values: pa.Array, target: Target, pattern: str) -> pa.Array:
    """hash_digits (or hash{n}_digits_rounds, the same values) laid into the pattern: the permutation of the
    value's digits when they fill the pattern (an integer column's in-range values always do, padded with
    zeros), else the keyed hash of the whole value's text (as hash_digits reads it) mod 10^n."""
    from deid.vector import digits  # compiled by numba: imported where used (deid.vector.sha256_kernel)

    n = pattern.count("#")
    x, fits, valid = digits.read(values, n, target.kind is Kind.INTEGER)
    out = np.zeros(len(x), np.int64)
    permuted = valid & fits
    if permuted.all():
        out = fpe.permute(key, "hash.digits", n, x, rows=target.rows)
    elif permuted.any():
        out[permuted] = fpe.permute(key, "hash.digits", n, x[permuted], rows=target.rows)
    drawn = valid & ~fits
    if drawn.any():
        # out of range integers are in hash_digits' input unpadded: their text, exactly as read
        h, _ = prf.ints(key, "hash.digits", pc.if_else(pa.array(drawn), values, None))
        out[drawn] = h[drawn] % 10**n
    return digits.lay_out(out, valid, pattern)


_UUID_HEX = np.r_[0:8, 9:13, 14:18, 19:23, 24:36]  # where the 32 hex digits go in the 36 characters


def _uuid_vector(key: prf.Key, values: pa.Array) -> pa.Array:
    """The first 16 PRF bytes with the version nibble 8 and the variant bits 10, written as a uuid's text
    is (lower-case, hyphenated)."""
    raw, valid = prf.digests(key, "hash.uuid", values)
    raw = raw[:, :16].copy()
    raw[:, 6] = (raw[:, 6] & 15) | 128
    raw[:, 8] = (raw[:, 8] & 63) | 128
    out = np.full((len(raw), 36), ord("-"), np.uint8)
    out[:, _UUID_HEX] = prf.hex_matrix(raw, 32)
    return prf.fixed_strings(out, valid)


def _output_length(params: Mapping[str, Any]) -> int:
    if params["format"] == "digits":
        return len(params["pattern"])
    return params["length"] + (1 + len(params["domain"]) if params["format"] == "email" else 0)


def _check(target: Target, params: Mapping[str, Any]) -> str | None:
    fmt = params["format"]
    if target.kind is Kind.UUID:
        if fmt != "hex" or params["length"] != UNIQUE_HEX:
            return "hash on a uuid column always makes a uuid (122 keyed bits); drop format and length"
        return None
    if target.kind is Kind.INTEGER:
        if fmt != "digits":
            return "hash on an integer column needs format: digits"
        if set(params["pattern"]) != {"#"}:
            return "hash on an integer column needs a pattern of '#' only"
        most = _INTEGER_DIGITS.get(target.sql_type, 9)
        if len(params["pattern"]) > most:
            return f"hash: {target.sql_type} holds {most} digits without overflow; shorten the pattern"
        return None
    if target.unique and fmt != "digits" and params["length"] < UNIQUE_HEX:
        return (
            f"hash on a unique column needs length of at least {UNIQUE_HEX} (128 bits), so that distinct "
            "values keep distinct hashes"
        )
    return too_long(target, _output_length(params), f"hash (format {fmt})")


TRANSFORMERS = (
    Transformer(
        name="hash",
        description="Replace the value with a keyed hash of it. The same value gives the same output in "
        "every table, database and run (same salt). format hex: `length` hex characters; email: "
        "<hex>@<domain>; digits: the `pattern` with each '#' a digit. With digits, a value whose digits "
        "fill the pattern exactly goes through a keyed permutation, so distinct values stay distinct "
        "(unique columns stay unique). Integer columns take format digits with a pattern of '#' only. "
        "uuid columns (and uuid arrays) get a uuid: version 8 with 122 keyed bits, so a uuid key and the "
        "foreign keys referencing it stay consistent and distinct values stay distinct.",
        applies_to=frozenset({Kind.TEXT, Kind.INTEGER, Kind.UUID}),
        vector=_hash_vector,
        params=(
            Param("format", str, "hex, digits or email", default="hex", choices=("hex", "digits", "email")),
            Param(
                "length",
                int,
                "hex characters of the hash (format hex and email); at least 32 on a unique column",
                default=32,
                minimum=8,
                maximum=64,
            ),
            Param(
                "pattern",
                str,
                "format digits: '#' is a digit, anything else is written as is",
                default="###-##-####",
                validate=_pattern,
            ),
            domain_param("email addresses (format email)"),
        ),
        check=_check,
    ),
)
