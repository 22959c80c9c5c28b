"""PostgreSQL numeric text as exact Arrow decimals (decimal256: 76 digits) and back, keeping numeric's scale.

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
from deid.vector.prf import texts as string_array

DIGITS = 76  # decimal256's precision
SPECIALS = ("NaN", "Infinity", "-Infinity")  # numeric's non-finite values (1, 2, 3 in `special`)


def read(values: pa.Array, *, spare: int, column: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Numeric (or integer) text as (decimals, each value's scale, special): decimal256 with `spare` of the
    76 digits left free (for a product); `special` is 1, 2, 3 for 'NaN', 'Infinity', '-Infinity' (read as
    0)."""
    values = string_array(values)
    special = np.zeros(len(values), np.int8)
    for code, word in enumerate(SPECIALS, 1):
        special[pc.equal(values, word).fill_null(False).to_numpy(zero_copy_only=False)] = code
    text = pc.if_else(special == 0, values, "0") if special.any() else values
    point = pc.find_substring(text, ".").fill_null(-1).to_numpy()
    length = pc.binary_length(text).fill_null(0).to_numpy()
    scales = np.where(point >= 0, length - point - 1, 0).astype(np.int64)
    scale = int(scales.max()) if len(scales) else 0
    precision = DIGITS - spare
    try:
        decimals = pc.cast(text, pa.decimal256(precision, scale)) if scale <= precision else None
    except pa.ArrowInvalid:  # the message may quote the value
        decimals = None
    if decimals is None:
        raise TerminalError(
            f"column {column}: a value has more digits than the vector form computes with ({precision} "
            "significant digits here)"
        )
    return decimals, scales, special


def fractions(digits: np.ndarray, scales: np.ndarray) -> pa.Array:
    """digits / 10^scale for each row (digits below 2 * 10^15 and value below 2, as noise factors) as one
    decimal256 array at the largest of the scales."""
    top = int(scales.max()) if len(scales) else 0
    powers = pa.array([10**k for k in range(top + 1)], pa.decimal256(top + 1, 0))
    shifted = pc.multiply(pc.cast(pa.array(digits), pa.decimal256(19, 0)), powers.take(top - scales))
    # digits * 10^(top - scale) is the value times 10^top: the same buffer read at scale top is the value,
    # at most 2 so top + 1 digits (the precision a product's type adds up)
    return pa.Array.from_buffers(pa.decimal256(top + 1, top), len(digits), shifted.buffers())


def texts(values: pa.Array, scales: np.ndarray) -> pa.Array:
    """Each decimal printed with its own scale (no larger than the array's; the digits dropped are zeros),
    so that PostgreSQL reads back the same numeric, scale included. Arrow prints very small values in
    E-notation ('1.2E-8'), which numeric reads with the same scale."""
    precision, top = values.type.precision, values.type.scale
    kinds, first = np.unique(scales, return_index=True)
    if len(kinds) <= 1:
        scale = int(kinds[0]) if len(kinds) else top
        return pc.cast(pc.cast(values, pa.decimal256(precision - top + scale, scale)), pa.string())
    # one cast per distinct scale (a handful), over the rows sorted by scale, then put back in order
    order = np.argsort(scales, kind="stable")
    bounds = np.searchsorted(scales[order], kinds).tolist() + [len(scales)]
    pieces = [
        pc.cast(
            pc.cast(values.take(order[lo:hi]), pa.decimal256(precision - top + int(s), int(s))), pa.string()
        )
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
    with localcontext(Context(prec=2 * DIGITS)):
        # rounded outwards to the values' scale, which keeps every comparison with values of that scale
        exact = exact.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_FLOOR if above else ROUND_CEILING)
        decimals = max(0, -exact.normalize().as_tuple().exponent)
        digits = len(exact.quantize(Decimal(1).scaleb(-decimals)).as_tuple().digits)
    bound = pa.scalar(exact, pa.decimal256(max(digits, decimals, 1), decimals))
    compare = pc.greater if above else pc.less
    return compare(values, bound).fill_null(False).to_numpy(zero_copy_only=False)


def _exact(literal: str) -> Decimal:
    with localcontext(Context(prec=2 * DIGITS)):
        return Decimal(literal)


def numeric_text(literal: str) -> str:
    """The text of numeric `literal` as PostgreSQL prints it: positional, with the literal's scale
    ('1e+20' -> '100000000000000000000', '1.5e-07' -> '0.00000015')."""
    return format(_exact(literal), "f")
