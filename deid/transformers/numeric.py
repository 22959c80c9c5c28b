"""noise: keyed multiplicative noise on numbers, optionally clamped into [min, max]."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.errors import TerminalError
from deid.schema import Kind
from deid.transformers.base import NUMBER_KINDS, Batch, Param, Target, Transformer
from deid.transformers.common import by_param, check_by
from deid.vector import decimals, keys, prf

_INTEGER_RANGE = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}  # -n <= value < n
_NUMERIC = re.compile(r"(?:numeric|decimal)\((\d+)(?:,\s*(\d+))?\)")


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value:g}"


def _finite(value: float) -> str | None:
    return None if math.isfinite(value) else f"must be a finite number, got {value}"


def literal(value: float) -> str:
    """A bound as a number's text, exactly as written (6.5, not 6.5000000000000000001)."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _noise_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    from deid.vector import floats  # compiled by numba: imported where used (deid.vector.sha256_kernel)

    values = prf.texts(batch.values)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    if target.kind is Kind.FLOAT:
        single = floats.single(target.sql_type, target.column.name)
        x = floats.parse(values, single=single, column=target.column.name)
        unit = keys.by_units(
            batch, "noise", params["by"], lambda needed: floats.numeric_text(x, needed, single=single)
        )
    else:
        unit = keys.by_units(batch, "noise", params["by"], keys.own_text(values))
    # float8 arithmetic in the SQL form's order: (1 + relative * (2 * unit - 1))
    factor = 1.0 + params["relative"] * (2.0 * unit - 1.0)
    if target.kind is Kind.FLOAT:
        out = _float_noise(x, factor, params, single, target.column.name)
    else:
        out = _decimal_noise(values, factor, target, params)
    return pc.if_else(valid, out, None)


def _float_noise(
    x: np.ndarray, factor: np.ndarray, params: Mapping[str, Any], single: bool, column: str
) -> pa.Array:
    with np.errstate(all="ignore"):
        y = x * factor
        # float8mul's checks (a float4 value is widened first, float48mul): errors there, errors here
        failed = (np.isinf(y) & ~np.isinf(x)) | ((y == 0) & (x != 0) & (factor != 0))
        # least / greatest order NaN above every number
        if params["max"] is not None:
            y = np.where((y > params["max"]) | np.isnan(y), float(literal(params["max"])), y)
        if params["min"] is not None:
            y = np.where(y < params["min"], float(literal(params["min"])), y)
        if single:  # the cast to float4 (dtof) fails on overflow and underflow too
            narrow = y.astype(np.float32)
            failed |= (np.isinf(narrow) & ~np.isinf(y)) | ((narrow == 0) & (y != 0))
            y = narrow
    if failed.any():
        raise TerminalError(f"noise: column {column} has a value whose noised value is out of range")
    # the shortest text that reads back as the same float (float32's own for float4)
    return pc.cast(pa.array(y), pa.string())


def _decimal_noise(
    values: pa.Array, factor: np.ndarray, target: Target, params: Mapping[str, Any]
) -> pa.Array:
    """Decimal arithmetic, exact: the value times the float factor made a decimal as the SQL form's cast makes
    it (floats.factor_numeric: 15 significant digits), rounded half away from zero on integers, clamped,
    printed with the product's scale (the cast to the column's type, numeric(p, s) rounding included, is the
    server's, as in the SQL form)."""
    from deid.vector import floats  # compiled by numba: imported where used (deid.vector.sha256_kernel)

    digits, scales = floats.factor_numeric(factor)
    product, scales, special = decimals.times(values, digits, scales, column=target.column.name)
    if target.kind is Kind.INTEGER:
        product = pc.round(product, ndigits=0, round_mode="half_towards_infinity")
    # numeric's NaN and infinities: Infinity * 0 is NaN; NaN sorts above Infinity, above every number
    result = np.where((special > 1) & (digits == 0), 1, special)
    high = low = np.zeros(len(values), bool)
    if params["max"] is not None:
        high = ((result == 0) & decimals.beyond(product, literal(params["max"]), above=True)) | (result == 1)
        high |= result == 2
    if params["min"] is not None:
        low = ~high & (
            ((result == 0) & decimals.beyond(product, literal(params["min"]), above=False)) | (result == 3)
        )
    if target.kind is Kind.INTEGER:
        # a value noised past bigint but clamped is the bound, as in the SQL form; unclamped, it fails there
        inner = pc.if_else(high | low, pa.scalar(0, product.type), product) if (high | low).any() else product
        try:
            text = pc.cast(pc.cast(inner, pa.int64()), pa.string())
        except pa.ArrowInvalid:
            raise TerminalError(
                f"noise: column {target.column.name} has a value noised out of range"
            ) from None
    elif _NUMERIC.fullmatch(target.sql_type.strip().lower()):
        text = pc.cast(product, pa.string())  # numeric(p, s): the cast rounds it, as in the SQL form
    else:
        text = decimals.texts(product, scales)  # numeric keeps the product's scale: printed as it is
    if result.any():
        words = pa.array(["", *decimals.SPECIALS]).take(pa.array(result))
        text = pc.if_else(result == 0, text, words)
    if high.any():
        text = pc.if_else(high, decimals.numeric_text(literal(params["max"])), text)
    if low.any():
        text = pc.if_else(low, decimals.numeric_text(literal(params["min"])), text)
    return text


def _ordered(params: Mapping[str, Any]) -> str | None:
    low, high = params["min"], params["max"]
    if low is not None and high is not None and low > high:
        return f"min ({low:g}) must not be greater than max ({high:g})"
    return None


def _fits(target: Target, name: str, value: float) -> str | None:
    """Whether a bound is a value of the column's type, so that the clamped output is one as well."""
    sql_type = target.sql_type.strip().lower()
    if target.kind is Kind.INTEGER:
        if not value.is_integer():
            return f"noise: {name} must be a whole number on an integer column, got {value:g}"
        limit = _INTEGER_RANGE.get(sql_type)
        if limit is not None and not -limit <= value < limit:
            return f"noise: {name} {value:g} does not fit {sql_type}"
    found = _NUMERIC.fullmatch(sql_type) if target.kind is Kind.NUMERIC else None
    if found:
        precision, scale = int(found.group(1)), int(found.group(2) or 0)
        exact = Decimal(repr(value))
        decimals = max(0, -int(exact.as_tuple().exponent))
        if decimals > scale:
            return f"noise: {name} {value:g} has more decimals than {sql_type} keeps ({scale})"
        if abs(exact) >= Decimal(10) ** (precision - scale):
            return f"noise: {name} {value:g} does not fit {sql_type}"
    return None


def _check(target: Target, params: Mapping[str, Any]) -> str | None:
    for name in ("min", "max"):
        if params[name] is not None:
            problem = _fits(target, name, params[name])
            if problem:
                return problem
    return check_by(target, params)


def _bound(which: str) -> Param:
    return Param(
        which,
        float,
        f"optional {'lower' if which == 'min' else 'upper'} bound: a noised value beyond it becomes it, so a "
        "CHECK range holds; a value of the column's type (whole on integers, at most the scale's decimals on "
        "numeric(p, s))",
        default=None,
        validate=_finite,
    )


TRANSFORMERS = (
    Transformer(
        name="noise",
        description="Multiply a number by a keyed factor near 1. The factor is in [1 - relative, 1 + "
        "relative] and the result is cast back to its type (integers are rounded). With `by`, the factor is "
        "keyed on another column of the row (an entity id); without it, on the value itself, so equal "
        "values stay equal. With `min` and/or `max`, the result is clamped into [min, max] (for a column "
        "with a CHECK range). Cannot serve a unique column.",
        applies_to=NUMBER_KINDS,
        vector=_noise_vector,
        params=(
            Param(
                "relative",
                float,
                "largest relative change, greater than 0 and at most 1",
                default=0.1,
                minimum=0,
                maximum=1,
                validate=_positive,
            ),
            by_param("factor"),
            _bound("min"),
            _bound("max"),
        ),
        check=_check,
        unique_safe=False,
        validate_params=_ordered,
    ),
)
