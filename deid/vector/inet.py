"""IPv6 addresses in their canonical text form, over arrays of 16-bit groups.

The canonical text of an IPv6 address (docs/canonical-text.md) is inet_net_ntop's: each group in
lower-case hex without leading zeros, and the longest run of two or more zero groups (the first, on a tie)
as "::"; a single zero group stays "0". A text column gets that spelling from the SQL form, so the vector
form must spell it the same. Addresses whose first group is 0 (::, ::1, IPv4-embedded forms) print
differently again and are not handled: deid's fake addresses all start 2001:db8.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.vector import prf

GROUPS = 8


@cache
def _group_texts(colon: bool) -> pa.Array:
    """The hex text of every 16-bit group ("0" .. "ffff"), after a colon or not: 65536 entries."""
    return pa.array([(":" if colon else "") + f"{g:x}" for g in range(1 << 16)], pa.string())


@cache
def _runs() -> tuple[np.ndarray, np.ndarray]:
    """For each of the 256 patterns of zero groups (bit i: group i is 0), the start and length of the run
    that becomes "::" (length 0: none), chosen as inet_net_ntop does."""
    base, length = np.zeros(256, np.int8), np.zeros(256, np.int8)
    for pattern in range(256):
        best = (0, 0)
        start = None
        for i in range(GROUPS + 1):
            if i < GROUPS and pattern >> i & 1:
                start = i if start is None else start
            elif start is not None:
                if i - start > best[1]:  # strictly longer: the first of equal runs wins
                    best = (start, i - start)
                start = None
        if best[1] >= 2:
            base[pattern], length[pattern] = best
    return base, length


def ipv6_texts(words: np.ndarray, valid: np.ndarray) -> pa.Array:
    """The inet text of each address, given as an (n, 8) array of its groups; NULL where not `valid`."""
    if (words[valid, 0] == 0).any():
        raise ValueError("ipv6_texts: addresses starting with a zero group are not supported")
    words = words.astype(np.int64)
    mask = ~valid
    hexed, after_colon = _group_texts(False), _group_texts(True)
    # Most addresses have no run of zero groups: every group printed, joined by colons
    out = pc.binary_join_element_wise(
        hexed.take(pa.array(words[:, 0], mask=mask)),
        *(after_colon.take(words[:, i]) for i in range(1, GROUPS)),
        "",
    )
    zero_bits = (words == 0).astype(np.int64) << np.arange(GROUPS)
    base, length = (table[zero_bits.sum(axis=1)] for table in _runs())
    compressed = (length > 0) & valid
    if compressed.any():  # rare (two zero groups in a row): redo those rows with their run as "::"
        out = pc.replace_with_mask(out, pa.array(compressed), _compressed(words, base, length, compressed))
    return out


def full_texts(words: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Each address spelled in full, eight groups of four hex digits (2001:0db8:0000:...): a valid inet
    input of fixed width, so written as one byte matrix; NULL where not `valid`."""
    hexed = prf.hex_matrix(words.astype(">u2").view(np.uint8), 4 * GROUPS).reshape(-1, GROUPS, 4)
    colons = np.full((len(words), GROUPS, 1), ord(":"), np.uint8)
    spelled = np.concatenate([hexed, colons], axis=2).reshape(len(words), 5 * GROUPS)[:, :-1]
    return prf.fixed_strings(spelled, valid)


def _compressed(words: np.ndarray, base: np.ndarray, length: np.ndarray, rows: np.ndarray) -> pa.Array:
    """The text of the selected rows, whose run is base[i]..base[i] + length[i] - 1: groups in the run print
    nothing, except the first, which prints the ":" that makes "::" with the next group's colon (or with
    the colon added after a run that ends the address)."""
    words, base, length = words[rows], base[rows].astype(np.int64), length[rows].astype(np.int64)
    after_colon = _group_texts(True)
    pieces = [_group_texts(False).take(words[:, 0])]
    for i in range(1, GROUPS):
        inside = (base <= i) & (i < base + length)
        run_piece = pc.if_else(pa.array(base == i), ":", "")
        pieces.append(pc.if_else(pa.array(inside), run_piece, after_colon.take(words[:, i])))
    pieces.append(pc.if_else(pa.array(base + length == GROUPS), ":", ""))
    return pc.binary_join_element_wise(*pieces, "")
