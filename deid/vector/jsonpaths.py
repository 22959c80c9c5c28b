"""The vector form of `json`: transformers applied at paths inside JSON documents, batch by batch, giving what
the transformer's SQL form gives (deid.transformers.structured; jsondoc.py says what the server does).

For a batch of documents (text):

1. each document is parsed (jsondoc.parse: the one Python call per value); a text column's value that is not
   a document becomes what `invalid` says (NULL, `{}`, or an error naming the column, never the value), a
   document column's fails the scrub as the SQL form's cast does;
2. for each path, the values found there (in the documents as they were read) are gathered into one Arrow
   text array, as the SQL form's `#>>` gives them, and the nested transformer's vector form runs over the
   whole array, its `by:` column read from the same rows (Batch.row);
3. the outputs are written back path after path as JSON strings (JSON null for NULL, so `null` gives JSON
   null), where the path still leads to a value; a document without the path is left as it is;
4. each document is printed in the normal form; a text column's that no longer fits its varchar(n) becomes
   what `invalid` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from deid.errors import TerminalError
from deid.schema import Kind
from deid.transformers.base import Batch, Target
from deid.transformers.common import text_limit
from deid.vector import jsondoc

_NO_DOCUMENT = object()  # a NULL value, or an invalid one made NULL
_HINT = "invalid: null or invalid: empty replaces such values"


def json_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    """The json transformer's vector form (deid.transformers.base.VectorForm)."""
    from deid.transformers.structured import inner, nested  # structured names this as its vector form

    text_column = target.kind is Kind.TEXT
    invalid = params["invalid"] if text_column else "fail"
    documents = [_read(value, invalid, target) for value in batch.values.to_pylist()]
    paths = nested(params["paths"])
    # every path reads the documents as they were (the SQL form reads each path from the value, not from
    # the document the paths before it rewrote), so all are gathered before any is written
    gathered = [_gather(documents, steps) for _, steps, _, _ in paths]
    for (path, _, transformer, parsed), (rows, places, found) in zip(paths, gathered, strict=True):
        if not rows:
            continue
        outputs = _nested(batch, inner(target, path), path, transformer, parsed, rows, found)
        for (container, place), new in zip(places, outputs, strict=True):
            container[place] = new  # a str, or None: JSON null
    limit = text_limit(target) if text_column else None
    return pa.array([_written(d, limit, invalid, target) for d in documents], pa.string())


def _read(value: str | None, invalid: str, target: Target) -> Any:
    if value is None:
        return _NO_DOCUMENT
    try:
        return jsondoc.parse(value)
    except jsondoc.TooDeep:
        raise TerminalError(_too_deep(target)) from None
    except jsondoc.Invalid:
        return _invalid(invalid, target, "holds a value that is not valid JSON")


def _invalid(invalid: str, target: Target, problem: str) -> Any:
    """What `invalid` makes of a value: NULL, an empty object, or the scrub's end."""
    if invalid == "fail":
        where = f"json: column {target.column.name} {problem}"
        if target.kind is Kind.TEXT:
            raise TerminalError(f"{where}; {_HINT}")
        raise TerminalError(f"{where} (or a number or escape out of the server's range): fix the document")
    return {} if invalid == "empty" else _NO_DOCUMENT


def _too_deep(target: Target) -> str:
    return (
        f"json: column {target.column.name} holds a document nested deeper than the scrub reads; "
        "copy its table schema_only, or null the column"
    )


def _gather(documents: list[Any], steps: tuple[str, ...]) -> tuple[list[int], list[tuple], list[str | None]]:
    """The rows where the path leads to a value, the value's place (container, key) and its text."""
    rows, places, found = [], [], []
    for row, document in enumerate(documents):
        if document is _NO_DOCUMENT:
            continue
        place = jsondoc.locate(document, steps)
        if place is not None:
            rows.append(row)
            places.append(place)
            container, key = place
            found.append(jsondoc.as_text(container[key]))
    return rows, places, found


def _nested(
    batch: Batch, inner: Target, path: str, transformer, parsed, rows: list[int], found: list[str | None]
) -> list[str | None]:
    """The nested transformer's outputs for the values found at `path` (in `rows` of the batch); `inner`:
    what it sees (structured.inner)."""
    if transformer.vector is None:
        raise TerminalError(f"json: {transformer.name} at {path} has no vector form")
    taken = pa.array(rows, pa.int64())
    given = Batch(
        values=pa.array(found, pa.string()), key=batch.key, row=lambda name: batch.row(name).take(taken)
    )
    outputs = transformer.vector(given, inner, parsed)
    if len(outputs) != len(found):
        raise AssertionError(f"{transformer.name} gave {len(outputs)} values for {len(found)}")
    return outputs.cast(pa.string()).to_pylist()


def _written(document: Any, limit: int | None, invalid: str, target: Target) -> str | None:
    if document is _NO_DOCUMENT:
        return None
    try:
        text = jsondoc.dumps(document)
    except jsondoc.TooDeep:
        raise TerminalError(_too_deep(target)) from None
    if limit is not None and len(text) > limit:
        replaced = _invalid(invalid, target, "gets a scrubbed document longer than its type holds")
        return None if replaced is _NO_DOCUMENT else "{}"
    return text
