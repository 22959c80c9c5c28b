"""noise's SQL form: the value times a keyed factor, in float8 for floats and in exact numeric arithmetic
otherwise, clamped before the cast back to the column's type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deid.backends.postgresql.forms.common import by_key
from deid.backends.postgresql.forms.sql import cast
from deid.backends.postgresql.forms.support import prf_unit_sql
from deid.schema import Kind
from deid.transformers.base import Target
from deid.transformers.numeric import literal


def _clamped(expression: str, value: str, params: Mapping[str, Any]) -> str:
    if params["max"] is None and params["min"] is None:
        return expression
    if params["max"] is not None:
        expression = f"least({expression}, {literal(params['max'])})"
    if params["min"] is not None:
        expression = f"greatest({expression}, {literal(params['min'])})"
    # least and greatest skip NULL arguments: without the CASE, NULL would become the bound
    return f"CASE WHEN {value} IS NULL THEN NULL ELSE {expression} END"


def _noise(target: Target, params: Mapping[str, Any]) -> str:
    unit = prf_unit_sql(by_key("noise", target, params["by"]))
    factor = f"(1 + {params['relative']!r} * (2 * {unit} - 1))"
    v = target.value
    if target.kind is Kind.FLOAT:
        return cast(_clamped(f"{v} * {factor}", v, params), target.sql_type)
    scaled = f"{v} * {factor}::numeric"  # numeric arithmetic: exact digits for numeric and bigint values
    # clamped before the cast, so a value noised past numeric(p, s)'s limit is brought back, not an overflow;
    # the bounds are whole (integers) or have at most s decimals (checked), so rounding keeps them inside
    noised = f"round({scaled})" if target.kind is Kind.INTEGER else scaled
    return cast(_clamped(noised, v, params), target.sql_type)


FORMS = {"noise": _noise}
