"""keep, null and constant: the transformers that do not look at the value."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from deid.schema import Kind
from deid.transformers.base import ANY_KIND, Batch, Param, Target, Transformer
from deid.transformers.common import too_long

EVERY_KIND = frozenset(Kind)


def _keep_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    return batch.values


def _null_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    return pa.nulls(len(batch.values), pa.string())


def _constant_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    return pc.if_else(batch.values.is_valid(), pa.scalar(params["value"], pa.string()), None)


def _parses_as(kind: Kind, value: str) -> bool:
    """A best-effort check that the database will accept the constant; the database has the last word."""
    try:
        if kind is Kind.INTEGER:
            int(value.strip())
        elif kind in (Kind.NUMERIC, Kind.FLOAT):
            Decimal(value.strip())
        elif kind is Kind.BOOLEAN:
            return value.strip().lower() in ("true", "false", "t", "f", "yes", "no", "on", "off", "1", "0")
        elif kind is Kind.DATE:
            date.fromisoformat(value.strip())
        elif kind is Kind.TIMESTAMP:
            datetime.fromisoformat(value.strip())
        elif kind is Kind.UUID:
            uuid.UUID(value.strip())
        elif kind is Kind.JSON:
            json.loads(value)
    except (ValueError, InvalidOperation):
        return False
    return True


def _check_constant(target: Target, params: Mapping[str, Any]) -> str | None:
    value = params["value"]
    if not _parses_as(target.kind, value):
        return f"constant value is not a valid {target.kind.value} ({target.sql_type})"
    return too_long(target, len(value), "the constant") if target.kind is Kind.TEXT else None


TRANSFORMERS = (
    Transformer(
        name="keep",
        description="Keep the column as it is in production. The column is not rewritten at all. A column "
        "that looks like an identifier needs a `reason:` to be kept.",
        applies_to=EVERY_KIND,
        vector=_keep_vector,
        rewrites=False,
    ),
    Transformer(
        name="null",
        description="Replace every value with NULL. For free text and anything with no safe replacement; "
        "cannot apply to a NOT NULL column.",
        applies_to=EVERY_KIND,
        vector=_null_vector,
        keeps_nulls=False,
    ),
    Transformer(
        name="constant",
        description="Replace every non-NULL value with one constant, cast to the column's type. NULL stays "
        "NULL. Cannot serve a unique column.",
        applies_to=ANY_KIND,
        vector=_constant_vector,
        params=(Param("value", str, "the replacement, written as text and cast to the column's type"),),
        check=_check_constant,
        unique_safe=False,
    ),
)
