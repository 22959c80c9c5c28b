"""Digits out of text values and into patterns, for `hash` format digits (hashing.py; support.py's
hash_digits and hashing._formatted), one compiled pass over Arrow's buffers instead of string kernels: a
value's digits are read and counted in the same pass that parses them.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from deid.vector import prf


@numba.njit(cache=True, nogil=True)  # nogil: batches are transformed on several threads
def _read(data, offsets, valid, n, integer, x, fits):
    """x[i]: the number the ASCII digits of value i spell (its first n digits); fits[i]: whether they are
    exactly n digits, or, for an integer column (`integer`), whether the value is in [0, 10^n), which the
    SQL form pads with zeros to n digits first."""
    for i in range(len(offsets) - 1):
        x[i] = 0
        fits[i] = False
        if not valid[i]:
            continue
        count = 0
        value = 0
        negative = False
        for p in range(offsets[i], offsets[i + 1]):
            c = data[p]
            if 48 <= c <= 57:  # ASCII only, as translate(value, ..., '0123456789'): UTF-8 never reuses these
                count += 1
                if count <= n:
                    value = value * 10 + (c - 48)
            elif c == 45:
                negative = True
        x[i] = value
        # an integer's text is its digits (and a minus sign), so in range means: not negative, at most n
        fits[i] = count == n or (integer and not negative and count < n)


def read(values: pa.Array, n: int, integer: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, fits, valid) for each value: see `_read`. `values` is text (prf.texts)."""
    data, offsets, valid = prf._layout(prf.texts(values))
    x = np.empty(len(valid), np.int64)
    fits = np.empty(len(valid), np.bool_)
    _read(data, offsets, valid, n, integer, x, fits)
    return x, fits, valid


@numba.njit(cache=True, nogil=True)  # nogil: batches are transformed on several threads
def _lay(numbers, positions, out):
    """Write each number's digits, zero-padded to len(positions), at those byte positions of its row."""
    n = len(positions)
    for i in range(len(numbers)):
        r = numbers[i]
        for j in range(n - 1, -1, -1):
            out[i, positions[j]] = 48 + r % 10
            r //= 10


def lay_out(numbers: np.ndarray, valid: np.ndarray, pattern: str) -> pa.Array:
    """The pattern with its '#' replaced by the digits of each number (in [0, 10^k), k the number of '#'),
    zero-padded; everything else copied. '#' is ASCII, so it never occurs inside another character's UTF-8
    bytes, and every output has the pattern's byte length."""
    template = np.frombuffer(pattern.encode(), np.uint8)
    positions = np.flatnonzero(template == ord("#"))
    out = np.empty((len(numbers), len(template)), np.uint8)
    out[:] = template
    _lay(np.ascontiguousarray(numbers, np.int64), positions, out)
    return prf.fixed_strings(out, valid)
