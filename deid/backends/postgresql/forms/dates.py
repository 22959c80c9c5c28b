"""The SQL forms of shift_date and truncate_date."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deid.backends.postgresql.forms.common import by_key
from deid.backends.postgresql.forms.sql import cast
from deid.backends.postgresql.forms.support import shift_days_sql
from deid.backends.postgresql.quoting import quote_literal
from deid.schema import Kind
from deid.transformers.base import Target


def _with_time_zone(sql_type: str) -> bool:
    spelled = sql_type.strip().lower()
    return spelled == "timestamptz" or spelled.endswith("with time zone")


def _shift_date(target: Target, params: Mapping[str, Any]) -> str:
    days = shift_days_sql(by_key("shift_date", target, params["by"]), params["days"])
    if target.kind is Kind.DATE:
        return cast(f"{target.value} + {days}", target.sql_type)
    # whole 24-hour days: adding calendar days to a timestamptz would depend on the session's time zone
    return cast(f"{target.value} + make_interval(hours => 24 * {days})", target.sql_type)


def _truncate_date(target: Target, params: Mapping[str, Any]) -> str:
    unit, v = quote_literal(params["unit"]), target.value
    if target.kind is Kind.DATE:
        return cast(f"date_trunc({unit}, ({v})::timestamp)", target.sql_type)
    if _with_time_zone(target.sql_type):
        # in UTC, so the result does not depend on the session's time zone
        return cast(f"date_trunc({unit}, {v}, 'UTC')", target.sql_type)
    return cast(f"date_trunc({unit}, {v})", target.sql_type)


FORMS = {"shift_date": _shift_date, "truncate_date": _truncate_date}
