"""The SQL forms of keep, null and constant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deid.backends.postgresql.forms.sql import cast
from deid.backends.postgresql.quoting import quote_literal
from deid.transformers.base import Target


def _keep(target: Target, params: Mapping[str, Any]) -> str:
    return target.value


def _null(target: Target, params: Mapping[str, Any]) -> str:
    return f"NULL::{target.sql_type}"


def _constant(target: Target, params: Mapping[str, Any]) -> str:
    value = quote_literal(params["value"])
    return cast(f"CASE WHEN {target.value} IS NULL THEN NULL ELSE {value} END", target.sql_type)


FORMS = {"keep": _keep, "null": _null, "constant": _constant}
