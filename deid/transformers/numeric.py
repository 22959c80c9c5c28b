"""noise: keyed multiplicative noise on numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deid.schema import Kind
from deid.transformers.base import NUMBER_KINDS, Param, Target, Transformer, cast
from deid.transformers.common import by_key, by_param, check_by
from deid.transformers.support import prf_unit_sql


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value:g}"


def _noise(target: Target, params: Mapping[str, Any]) -> str:
    unit = prf_unit_sql(by_key("noise", target, params["by"]))
    factor = f"(1 + {params['relative']!r} * (2 * {unit} - 1))"
    v = target.value
    if target.kind is Kind.FLOAT:
        return cast(f"{v} * {factor}", target.sql_type)
    scaled = f"{v} * {factor}::numeric"  # numeric arithmetic: exact digits for numeric and bigint values
    return cast(f"round({scaled})" if target.kind is Kind.INTEGER else scaled, target.sql_type)


TRANSFORMERS = (
    Transformer(
        name="noise",
        description="Multiply a number by a keyed factor near 1. The factor is in [1 - relative, 1 + "
        "relative] and the result is cast back to its type (integers are rounded). With `by`, the factor is "
        "keyed on another column of the row (an entity id); without it, on the value itself, so equal "
        "values stay equal. Cannot serve a unique column.",
        applies_to=NUMBER_KINDS,
        sql=_noise,
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
        ),
        check=check_by,
        unique_safe=False,
    ),
)
