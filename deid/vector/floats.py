"""Floats as the canonical text forms read and convert them (docs/canonical-text.md): float4 and float8
text to numpy, and CAST(v AS numeric).

The reference SQL form turns a float into numeric through printf: '%.15g' for float8, '%.6g' for float4
(DBL_DIG and FLT_DIG significant digits, correctly rounded from the exact binary value, ties to even). Nothing
vectorised prints that. `numeric_text` derives it from Arrow's shortest digits for almost every float, and for
the few where those cannot tell (see there) calls the C library's own printf (`strfromd`, glibc 2.25 and
later) from a numba loop, which gives the digits of the server's (glibc) snprintf. `factor_numeric` does the
same for noise factors without the C library: they are multiples of 2^-53 below 2, whose decimal expansion
64-bit integers can carry.
"""

from __future__ import annotations

import re

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from deid.errors import TerminalError
from deid.vector import prf

_SINGLE = re.compile(r"real|float4|float\(([1-9]|1[0-9]|2[0-4])\)")
_DOUBLE = re.compile(r"double precision|float8|float|float\((2[5-9]|[34][0-9]|5[0-3])\)")

# int strfromd(char *str, size_t n, const char *format, double fp): printf's %e, %f, %g for one double,
# without varargs (which numba cannot call)
_strfromd = types.ExternalFunction(
    "strfromd", types.intc(types.voidptr, types.uintp, types.voidptr, types.float64)
)
# %.14e and %.5e give the same 15 and 6 significant digits as %.15g and %.6g, always as d.ddd...e±x
_FORMATS = {
    False: np.frombuffer(b"%.14e\0", np.uint8).copy(),
    True: np.frombuffer(b"%.5e\0", np.uint8).copy(),
}


def single(sql_type: str, column: str) -> bool:
    """Whether a float column is float4 (its values are read and computed as float32, widened exactly)."""
    spelled = sql_type.strip().lower()
    if _SINGLE.fullmatch(spelled):
        return True
    if _DOUBLE.fullmatch(spelled):
        return False
    raise TerminalError(
        f"column {column}: the vector form cannot tell whether its type {sql_type} is real or double "
        "precision (a domain?), and the two compute differently"
    )


def parse(values: pa.Array, *, single: bool, column: str) -> np.ndarray:
    """Float text ('Infinity', 'NaN' included) as float64; float4 values are parsed as float32 first, so
    '3.1' is the float4 3.0999999046..., as the server holds it. NULL reads as 0."""
    try:
        parsed = pc.cast(prf.texts(values), pa.float32() if single else pa.float64())
    except pa.ArrowInvalid:  # the message would quote the value
        raise TerminalError(f"column {column}: a value is not the canonical text of a float") from None
    return parsed.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)


@intrinsic
def _address(typingctx, array, index):
    """A void pointer to array[index] (a 1-d contiguous array), for the C call."""

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.bitcast(builder.gep(data, [args[1]]), cgutils.voidptr_t)

    return types.voidptr(array, index), codegen


@numba.njit(cache=True)
def _printf_digits(v, fmt, buf, out):  # pragma: no cover  (compiled)
    """The C library's '%.Ne' of v: its digits into `out` (trailing zeros dropped); (count, exponent of the
    first digit)."""
    _strfromd(_address(buf, 0), 64, _address(fmt, 0), v)
    j = 1 if buf[0] == 45 else 0  # '-'
    k = 0
    while buf[j] != 101:  # up to 'e', skipping the decimal point (whatever the locale makes it)
        if 48 <= buf[j] <= 57:
            out[k] = buf[j]
            k += 1
        j += 1
    sign = -1 if buf[j + 1] == 45 else 1
    j += 2
    e = 0
    while buf[j] != 0:
        e = e * 10 + buf[j] - 48
        j += 1
    while k > 0 and out[k - 1] == 48:
        k -= 1
    return k, sign * e


@numba.njit(cache=True)
def _shortest_digits(data, start, end, out):  # pragma: no cover  (compiled)
    """Arrow's shortest text of a float ('-0.00125', '1e+20', '1.2345678901234567e-7') as its significant
    digits into `out` (no leading or trailing zeros); (count, exponent of the first digit)."""
    j = start + 1 if data[start] == 45 else start
    k, before, lead, point = 0, 0, 0, False
    while j < end and data[j] != 101 and data[j] != 69:  # up to 'e' or 'E'
        c = data[j]
        if c == 46:
            point = True
        else:
            before += 0 if point else 1
            if k == 0 and c == 48:
                lead += 1  # zeros before the first significant digit
            else:
                out[k] = c
                k += 1
        j += 1
    e = 0
    if j < end:
        sign = -1 if data[j + 1] == 45 else 1
        j += 2 if data[j + 1] == 45 or data[j + 1] == 43 else 1
        while j < end:
            e = e * 10 + data[j] - 48
            j += 1
        e *= sign
    while k > 0 and out[k - 1] == 48:
        k -= 1
    return k, before - lead - 1 + e


@numba.njit(cache=True)
def _round_digits(out, k, e, precision):  # pragma: no cover  (compiled)
    """The first `precision` of k > precision digits, rounded (never a tie: see numeric_text)."""
    up = out[precision] >= 53  # '5' or more
    k = precision
    if up:
        i = precision - 1
        while i >= 0 and out[i] == 57:  # 9s carry
            out[i] = 48
            i -= 1
        if i < 0:
            out[0], k, e = 49, 1, e + 1
        else:
            out[i] += 1
    while k > 0 and out[k - 1] == 48:
        k -= 1
    return k, e


@numba.njit(cache=True)
def _numeric_texts(x, valid, shortest, shortest_offsets, precision, normal, fmt):  # pragma: no cover
    n = len(x)
    digits = np.zeros((n, 24), np.uint8)
    count = np.zeros(n, np.int64)  # significant digits without trailing zeros; 0 for zero
    exponent = np.zeros(n, np.int64)
    special = np.zeros(n, np.int64)  # 1 NaN, 2 Infinity, 3 -Infinity
    lengths = np.zeros(n, np.int64)
    buf = np.zeros(64, np.uint8)
    for i in range(n):
        if not valid[i]:
            continue
        v = x[i]
        if np.isnan(v):
            special[i], lengths[i] = 1, 3
            continue
        if np.isinf(v):
            special[i], lengths[i] = (2, 8) if v > 0 else (3, 9)
            continue
        row = digits[i]
        k, e = _shortest_digits(shortest, shortest_offsets[i], shortest_offsets[i + 1], row)
        if abs(v) < normal and v != 0:  # subnormal: fewer bits, so its shortest digits may be too few
            k, e = _printf_digits(v, fmt, buf, row)
        elif k > precision:
            if k == precision + 1 and row[precision] == 53:  # the shortest digits tie; x itself may not
                k, e = _printf_digits(v, fmt, buf, row)
            else:
                k, e = _round_digits(row, k, e, precision)
        count[i], exponent[i] = k, e
        if k == 0:  # zero, -0 included: numeric has no sign for it
            lengths[i] = 1
        elif e >= 0:
            lengths[i] = (v < 0) + max(e + 1, k) + (1 if k > e + 1 else 0)
        else:
            lengths[i] = (v < 0) + 1 - e + k  # '0.', -e - 1 zeros, the digits
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = np.cumsum(lengths)
    data = np.empty(offsets[n], np.uint8)
    words = ("NaN", "Infinity", "-Infinity")
    for i in range(n):
        p = offsets[i]
        k, e = count[i], exponent[i]
        if special[i]:
            word = words[special[i] - 1]
            for c in range(len(word)):
                data[p + c] = ord(word[c])
        elif lengths[i] == 0:
            continue
        elif k == 0:
            data[p] = 48
        else:
            if x[i] < 0:
                data[p] = 45
                p += 1
            if e >= 0:  # integer digits (the missing ones are zeros), then the fraction, if any
                for c in range(max(e + 1, k)):
                    if c == e + 1:
                        data[p] = 46
                        p += 1
                    data[p] = digits[i, c] if c < k else 48
                    p += 1
            else:
                data[p], data[p + 1] = 48, 46
                p += 2
                for _ in range(-e - 1):
                    data[p] = 48
                    p += 1
                for c in range(k):
                    data[p] = digits[i, c]
                    p += 1
    return data, offsets


def numeric_text(x: np.ndarray, valid: np.ndarray, *, single: bool) -> pa.Array:
    """As CAST(CAST(v AS numeric) AS text) for floats `x` (float4 ones widened): '%.15g' (float8) or '%.6g'
    (float4) read as numeric, 'NaN', 'Infinity', '-Infinity'; NULL where not `valid`.

    Most values need no printf. Arrow prints the shortest digits that read back as x, and of those the
    closest to x. With at most 15 (6) of them, they are printf's: x, a normal float of 53 (24) bits, is
    nearer to them than half a step of the 15-digit grid. With more, rounding them to 15 gives printf's
    digits, since a midpoint of the grid between x and them would be a closer shortest; except when they
    are 16 ending in 5, the midpoint itself, where only the exact x decides: those go to printf, as
    subnormal floats do.
    """
    precision = 6 if single else 15
    shortest = pc.cast(pa.array(x.astype(np.float32) if single else x), pa.string())
    _, offsets_buffer, data_buffer = shortest.buffers()
    shortest_offsets = np.frombuffer(offsets_buffer, np.int32)[: len(x) + 1]
    data, offsets = _numeric_texts(
        x,
        valid,
        np.frombuffer(data_buffer, np.uint8),
        shortest_offsets,
        precision,
        float(np.finfo(np.float32 if single else np.float64).smallest_normal),
        _FORMATS[single],
    )
    large = offsets[-1] >= 2**31
    mask = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(
        pa.large_string() if large else pa.string(),
        len(x),
        [mask, pa.py_buffer(offsets if large else offsets.astype(np.int32)), pa.py_buffer(data)],
        null_count=-1 if mask is not None else 0,
    )


_MASK53 = (1 << 53) - 1
_HALF = 1 << 52  # a remainder of 2^52 (of 2^53) is half of the last digit


@numba.njit(cache=True)
def _factor_numeric(x):  # pragma: no cover  (compiled)
    n = len(x)
    digits = np.empty(n, np.int64)
    scale = np.empty(n, np.int64)
    for i in range(n):
        f = np.int64(x[i] * 9007199254740992.0)  # x * 2^53: exact, below 2^54
        acc, rest, k = f >> 53, f & _MASK53, 0
        significant = 1 if acc else 0
        while significant < 15 and rest != 0:  # the next decimal digit of the exact expansion
            rest *= 10  # below 2^57
            acc = acc * 10 + (rest >> 53)
            rest &= _MASK53
            k += 1
            if acc:
                significant += 1
        if rest > _HALF or (rest == _HALF and acc & 1):  # round half to even, as printf
            acc += 1
        while k > 0 and acc % 10 == 0:  # '%g' drops trailing zeros, so numeric's scale has none
            acc //= 10
            k -= 1
        digits[i], scale[i] = acc, k
    return digits, scale


def factor_numeric(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CAST(x AS numeric) of float8s x in [0, 2) that are multiples of 2^-53 (noise factors: 1 + r * (2u -
    1)), as (digits, scale): the numeric is digits / 10^scale, with the scale numeric gets from '%.15g'."""
    x = np.ascontiguousarray(x, np.float64)
    scaled = x * 9007199254740992.0
    if not ((x >= 0) & (x < 2) & (scaled == np.floor(scaled))).all():
        raise ValueError("factor_numeric takes multiples of 2^-53 in [0, 2)")
    return _factor_numeric(x)
