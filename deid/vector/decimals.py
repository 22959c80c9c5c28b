"""Numeric arithmetic of noise over Arrow decimals (decimal128, or decimal256 when 38 digits are too few),
exact, and back to text keeping numeric's scale.

A numeric prints as many decimals as its scale (dscale): a product of numerics has the sum of their scales,
so '1234.50' * 0.95 prints '1172.7750'. Arrow decimals have one scale per array, so values are read at the
largest scale of the batch and each is printed back at its own (`texts`).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, localcontext

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.errors import TerminalError
from deid.vector import prf

NARROW, WIDE = 38, 76  # the digits of decimal128 (faster) and of decimal256
SPECIALS = ("NaN", "Infinity", "-Infinity")  # numeric's non-finite values (1, 2, 3 in `special`)


def _family(type_: pa.DataType):
    return pa.decimal128 if pa.types.is_decimal128(type_) else pa.decimal256


def times(
    values: pa.Array, digits: np.ndarray, scales: np.ndarray, *, column: str
) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Numeric (or integer) text times digits / 10^scale (noise factors: below 2, 15 significant digits),
    exactly, as numeric multiplies: (the products, at the largest scale; each product's own numeric scale,
    the value's plus the factor's; `special`, 1, 2, 3 where the value is 'NaN', 'Infinity', '-Infinity',
    whose product reads 0). decimal128 when the products fit, else decimal256."""
    values = prf.texts(values)
    special = np.zeros(len(values), np.int8)
    for code, word in enumerate(SPECIALS, 1):
        special[pc.equal(values, word).fill_null(False).to_numpy(zero_copy_only=False)] = code
    text = pc.if_else(special == 0, values, "0") if special.any() else values
    # numeric's text is positional ('-1234.50'): its digits and scale are where the point is
    point = pc.find_substring(text, ".").fill_null(-1).to_numpy()
    length = pc.binary_length(text).fill_null(1).to_numpy()
    negative = pc.starts_with(text, "-").fill_null(False).to_numpy(zero_copy_only=False)
    value_scales = np.where(point >= 0, length - point - 1, 0).astype(np.int64)
    scale = int(value_scales.max(initial=0))
    precision = max(int((np.where(point >= 0, point, length) - negative).max(initial=1)), 1) + scale
    top = int(scales.max(initial=0))
    wide = precision + top + 2 > NARROW  # the product's digits: the value's, the factor's (top + 1), a carry
    if precision + top + 2 > WIDE:
        raise TerminalError(f"column {column}: a value has more digits than the vector form computes with")
    make = pa.decimal256 if wide else pa.decimal128
    try:
        read = pc.cast(text, make(precision, scale))
    except pa.ArrowInvalid:  # not a number: the message would quote the value
        raise TerminalError(f"column {column}: a value is not the canonical text of a number") from None
    return pc.multiply(read, _fractions(digits, scales, top, make)), value_scales + scales, special


def _fractions(digits: np.ndarray, scales: np.ndarray, top: int, make) -> pa.Array:
    """digits / 10^scale at scale `top`: digits * 10^(top - scale) (at most 2 * 10^top) read at scale top."""
    if top <= 18:  # fits int64
        shifted = pc.cast(pa.array(digits * 10 ** (top - scales)), make(19, 0))
    else:
        powers = pa.array([10**k for k in range(top + 1)], pa.decimal256(top + 1, 0))
        shifted = pc.multiply(pc.cast(pa.array(digits), pa.decimal256(19, 0)), powers.take(top - scales))
        shifted = pc.cast(shifted, make(top + 1, 0))
    return pa.Array.from_buffers(make(top + 1, top), len(digits), shifted.buffers())


def texts(values: pa.Array, scales: np.ndarray) -> pa.Array:
    """Each decimal printed with its own scale (no larger than the array's; the digits dropped are zeros),
    so that the engine reads back the same decimal, scale included. Arrow prints very small values in
    E-notation ('1.2E-8'), which numeric reads with the same scale."""
    precision, top, make = values.type.precision, values.type.scale, _family(values.type)
    kinds = np.unique(scales)
    if len(kinds) <= 1:
        scale = int(kinds[0]) if len(kinds) else top
        return pc.cast(pc.cast(values, make(precision - top + scale, scale)), pa.string())
    # one cast per distinct scale (a handful), over the rows sorted by scale, then put back in order
    order = np.argsort(scales, kind="stable")
    bounds = np.searchsorted(scales[order], kinds).tolist() + [len(scales)]
    pieces = [
        pc.cast(pc.cast(values.take(order[lo:hi]), make(precision - top + int(s), int(s))), pa.string())
        for s, lo, hi in zip(kinds, bounds[:-1], bounds[1:], strict=True)
    ]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return pa.concat_arrays(pieces).take(inverse)


def beyond(values: pa.Array, literal: str, *, above: bool) -> np.ndarray:
    """Where values are greater (`above`) or less than the SQL number `literal` (False where NULL)."""
    exact = _exact(literal)
    scale, whole = values.type.scale, values.type.precision - values.type.scale
    if exact.copy_abs() >= Decimal(10) ** whole:  # beyond every value: all or none compare so
        return np.full(len(values), (exact < 0) == above) & values.is_valid().to_numpy(zero_copy_only=False)
    with localcontext(Context(prec=2 * WIDE)):
        # rounded outwards to the values' scale, which keeps every comparison with values of that scale
        exact = exact.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_FLOOR if above else ROUND_CEILING)
        decimals = max(0, -exact.normalize().as_tuple().exponent)
        digits = len(exact.quantize(Decimal(1).scaleb(-decimals)).as_tuple().digits)
    bound = pa.scalar(exact, _family(values.type)(max(digits, decimals, 1), decimals))
    compare = pc.greater if above else pc.less
    return compare(values, bound).fill_null(False).to_numpy(zero_copy_only=False)


def _exact(literal: str) -> Decimal:
    with localcontext(Context(prec=2 * WIDE)):
        return Decimal(literal)


def numeric_text(literal: str) -> str:
    """The text of numeric `literal` in canonical text: positional, with the literal's scale
    ('1e+20' -> '100000000000000000000', '1.5e-07' -> '0.00000015')."""
    return format(_exact(literal), "f")
