"""PostgreSQL's in-database implementation of the transformers: every transformer's SQL form, by name.

A transformer (deid.transformers) is a definition and a vector form over Arrow arrays, which the streamed
scrub runs on every engine. Its SQL form here is an expression PostgreSQL evaluates set-based inside the
working copy: it rewrites the tables the stream does not take (those under stream_from_rows), computes the
columns without a vector form as their rows stream out, and is the oracle the vector forms are tested against
(tests/vector_oracle.py): both give the same values for the same salt.

The registry is explicit, no registration by import side effect: a form exists when it is in a module's FORMS
and that module is listed here. support.py holds the `_deid` schema the forms call and the session's key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deid.backends.postgresql.forms import basic, dates, fake, hashing, masking, numeric, structured
from deid.backends.postgresql.forms.sql import ELEMENT, SqlForm, element_wise, over_array, sql_target
from deid.backends.postgresql.quoting import quote_ident
from deid.rules.targets import target_for
from deid.schema import Column, Table

_MODULES = (basic, masking, hashing, fake, dates, numeric, structured)
FORMS: dict[str, SqlForm] = {name: sql for module in _MODULES for name, sql in module.FORMS.items()}
assert len(FORMS) == sum(len(m.FORMS) for m in _MODULES), "two modules give a form of the same transformer"


def form(transformer: str) -> SqlForm:
    """The SQL form of the transformer called `transformer` (every transformer has one: a test says so)."""
    return FORMS[transformer]


def column_sql(table: Table, column: Column, transformer: str, params: Mapping[str, Any]) -> str:
    """The expression of the column's new value (Backend.column_sql): the transformer's form applied to the
    column, or to each of its elements, mapped over the array."""
    each = element_wise(column, transformer)
    target = target_for(table, column, element_wise=each)
    sql = form(transformer)(sql_target(target, ELEMENT if each else quote_ident(column.name)), params)
    return over_array(sql, column) if each else sql
