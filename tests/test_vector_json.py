"""The json transformer's vector form (deid.vector.jsonpaths, on deid.vector.jsondoc) against its SQL form on
every configured server: hundreds of documents (tests/json_corpus.py) in jsonb, json, text and varchar(n)
columns give the same text, byte for byte; invalid text becomes what `invalid` says; what fails, fails on
both, naming the column and never the value."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlalchemy as sa

from deid.errors import TerminalError
from deid.schema import Kind
from deid.transformers import get
from deid.transformers.base import Batch
from deid.vector import jsondoc
from deid.vector.jsonpaths import json_vector
from deid.vector.prf import Key
from tests import vector_oracle
from tests.json_corpus import ALIASED, EDGES, INVALID, PATHS, random_documents
from tests.test_transformers_pg import SALT, make_table, target, transform
from tests.vector_oracle import db  # noqa: F401  (a fixture: one database per module)

DOCUMENTS = (*EDGES, *random_documents(300))


def _vector(values, sql_type: str, kind: Kind, params: dict) -> list[str | None]:
    parsed = get("json").parse_params(params)
    batch = Batch(values=pa.array(list(values), pa.string()), key=Key.for_salt(SALT))
    out = json_vector(batch, target(sql_type, kind), parsed)
    assert len(out) == len(values) and pa.types.is_string(out.type)
    return out.to_pylist()


def _compare(db: sa.Engine, sql_type: str, kind: Kind, values, params: dict) -> list[str | None]:
    """The SQL form's outputs and the vector form's, as text, equal; returns them."""
    name = vector_oracle.table()
    make_table(db, name, sql_type, list(values))
    inputs = vector_oracle.read_text(db, f"SELECT v::text FROM {name} ORDER BY id")  # as the stream reads
    expected = transform(db, name, sql_type, kind, "json", params)
    got = _vector(inputs, sql_type, kind, params)
    differ = [(i, inputs[i], expected[i], got[i]) for i in range(len(got)) if got[i] != expected[i]]
    assert not differ, f"{len(differ)} of {len(got)} differ; first: {differ[:3]}"
    return got


def _valid(documents) -> list[str]:
    """The documents the server's document type holds (the others fail its cast)."""
    kept = []
    for d in documents:
        try:
            jsondoc.parse(d)
        except jsondoc.Invalid:
            continue
        kept.append(d)
    return kept


@pytest.mark.parametrize("sql_type", ["jsonb", "json"])
@pytest.mark.parametrize("paths", [PATHS, ALIASED], ids=["paths", "aliased"])
def test_document_columns_give_the_sql_forms_text(db, sql_type, paths):  # noqa: F811
    values = [*_valid(DOCUMENTS), None]
    got = _compare(db, sql_type, Kind.JSON, values, {"paths": paths})
    assert got[-1] is None and len(set(got)) > 100
    assert sum(g != v for g, v in zip(got, values, strict=True)) > 100, "documents were rewritten"


@pytest.mark.parametrize("invalid", ["null", "empty"])
def test_text_columns_give_the_sql_forms_text_and_invalid_values_what_invalid_says(db, invalid):  # noqa: F811
    values = [*DOCUMENTS, *INVALID, None]
    got = _compare(db, "text", Kind.TEXT, values, {"paths": PATHS, "invalid": invalid})
    made = got[len(DOCUMENTS) : -1]
    assert made == [None if invalid == "null" else "{}"] * len(INVALID)


def test_a_varchar_column_keeps_documents_that_fit_and_replaces_those_that_grew(db):  # noqa: F811
    # hashes of 32 hex digits in place of short ids: some documents outgrow varchar(90)
    values = [d for d in DOCUMENTS if len(d) <= 90] + ["bad json", None]
    for invalid in ("null", "empty"):
        got = _compare(db, "varchar(90)", Kind.TEXT, values, {"paths": PATHS, "invalid": invalid})
        grown = [g for g in got if g in (None, "{}")]
        assert len(grown) > 3 and all(g is None or len(g) <= 90 for g in got)


@pytest.mark.parametrize(
    "sql_type, kind, value",
    [
        ("text", Kind.TEXT, "not json p51@prod.org"),
        ("varchar(20)", Kind.TEXT, '{"contact": {"email": "p51@prod.org"}}'),
        ("json", Kind.JSON, '{"k": "\\u0000 p51@prod.org"}'),
        ("json", Kind.JSON, '{"big": 1e131072, "e": "p51@prod.org"}'),
    ],
    ids=["not-json", "outgrown", "nul-escape", "number-range"],
)
def test_what_fails_fails_on_both_naming_the_column_never_the_value(db, sql_type, kind, value):  # noqa: F811
    name = vector_oracle.table()
    make_table(db, name, sql_type, [value])
    params = {"paths": {"$.contact.email": "hash"}, **({"invalid": "fail"} if kind is Kind.TEXT else {})}
    with pytest.raises(sa.exc.DataError):
        transform(db, name, sql_type, kind, "json", params)
    with pytest.raises(TerminalError) as refused:
        _vector([value], sql_type, kind, params)
    message = str(refused.value)
    assert "column v " in message and "p51" not in message and "prod.org" not in message


def test_the_json_transformer_has_this_vector_form():
    assert get("json").vector is json_vector


# --- the document kernel alone -----------------------------------------------------------------------------


def test_numbers_print_as_exact_decimals_and_keys_order_by_byte_length():
    doc = jsondoc.parse('{"zz": 1e2, "é": 1.50e1, "b": -0, "a": -0.0, "a": 0.10, "ab": 1E-3, "c": 10e-1}')
    assert jsondoc.dumps(doc) == '{"a": 0.10, "b": 0, "c": 1.0, "ab": 0.001, "zz": 100, "é": 15.0}'
    assert jsondoc.dumps(jsondoc.parse('["\\u001f\\/\\u00e9", "\x7f"]')) == '["\\u001f/é", "\x7f"]'


def test_array_steps_read_as_strtol_reads_them():
    assert [jsondoc.array_index(s, 3) for s in ("0", " 1", "+2", "-1", "-3", "-4", "3", "1 ", "x", "")] == [
        0, 1, 2, 2, 0, None, None, None, None, None,
    ]  # fmt: skip
    assert jsondoc.array_index("4294967296", 3) is None
    assert jsondoc.locate(jsondoc.parse('{"a": "text"}'), ("a", "0")) is None, "no path through a scalar"


def test_a_document_nested_too_deep_to_read_stops_the_scrub_and_is_never_nulled():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(TerminalError, match="column v holds a document nested deeper"):
        _vector([deep], "text", Kind.TEXT, {"paths": PATHS})


def test_validation_lets_invalid_null_make_nulls_of_text_that_is_not_json():
    """What the stream counted of a json column: a NULL made of a value that is not JSON is what `invalid:
    null` asks for; with invalid: empty or fail, a NULL made is a broken promise."""
    from deid.expect.tallied import _column
    from deid.plan import ColumnAction

    counts = {"rows": 10, "nulls_in": 1, "nulls_made": 3, "nulls_lost": 0, "unchanged": 2, "static": 0}
    for invalid, ok in (("null", True), ("empty", False)):
        action = ColumnAction("doc", "text", "json", {"paths": PATHS, "invalid": invalid}, "rule", None)
        (nulls,) = [o for o in _column("public.t", action, counts) if o.expectation == "nulls_stay_nulls"]
        assert nulls.ok is ok
