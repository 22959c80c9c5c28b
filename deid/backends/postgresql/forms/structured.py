"""json's SQL form: the document as jsonb, each nested transformer's SQL form applied to the text at its
path (through the registry), the result written back where the whole path exists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deid.backends.postgresql.forms.sql import cast, sql_target
from deid.backends.postgresql.forms.support import SCHEMA
from deid.backends.postgresql.quoting import quote_literal
from deid.schema import Kind
from deid.transformers.base import Target
from deid.transformers.common import text_limit
from deid.transformers.structured import inner, nested


def _path_sql(steps: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(quote_literal(s) for s in steps) + "]::text[]"


def _document(target: Target, params: Mapping[str, Any]) -> str:
    """The value as jsonb: json columns are cast; text is parsed, a value that is not JSON being what
    `invalid` says (NULL, {} or an error naming the column)."""
    if target.kind is Kind.TEXT:
        invalid, what = quote_literal(params["invalid"]), quote_literal(target.column.name)
        return f"{SCHEMA}.json_parse({target.value}, {invalid}, {what})"
    return f"({target.value})::jsonb"  # json round-trips through jsonb


def _json(target: Target, params: Mapping[str, Any]) -> str:
    from deid.backends.postgresql.forms import form  # the registry imports this module

    document = _document(target, params)
    for path, steps, transformer, parsed in nested(params["paths"]):
        # the value at the path, as text: what the nested transformer's form reads
        value = f"({_document(target, params)} #>> {_path_sql(steps)})"
        at = sql_target(inner(target, path), value, target.row)
        new = form(transformer.name)(at, parsed)
        # a nested NULL (the null transformer) is written as JSON null
        document = (
            f"{SCHEMA}.jsonb_replace({document}, {_path_sql(steps)}, coalesce(to_jsonb({new}), 'null'))"
        )
    if target.kind is Kind.TEXT:
        # never cast to varchar(n) directly: the cast would cut the document, leaving text that is not JSON
        limit = text_limit(target)
        invalid, what = quote_literal(params["invalid"]), quote_literal(target.column.name)
        lim = "NULL" if limit is None else str(limit)
        document = f"{SCHEMA}.json_text({document}, {lim}, {invalid}, {what})"
    return cast(document, target.sql_type)


FORMS = {"json": _json}
