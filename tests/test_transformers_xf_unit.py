"""Parameters and applicability of the transformers added in issue 12, without a database: noise's clamp,
hash on uuid, json on text; and that `deid transformers NAME` shows them."""

from __future__ import annotations

import pytest

from deid.backends.postgresql.forms import form
from deid.backends.postgresql.forms.sql import sql_target
from deid.cli import main
from deid.schema import Column, Kind
from deid.transformers import get
from deid.transformers.base import ParamError, Target


def target(sql_type: str, kind: Kind, *, nullable: bool = True, unique: bool = False) -> Target:
    column = Column("v", sql_type, kind, nullable=nullable)
    return Target(column=column, kind=kind, sql_type=sql_type, unique=unique, columns=("v",))


def cannot(name: str, sql_type: str, kind: Kind, params: dict, **column) -> str | None:
    transformer = get(name)
    return transformer.cannot_apply(target(sql_type, kind, **column), transformer.parse_params(params))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min": 10, "max": 5}, "min (10) must not be greater than max (5)"),
        ({"min": "6.5"}, "parameter 'min' must be a number, got a string"),
        ({"max": float("inf")}, "parameter 'max' must be a finite number"),
        ({"max": True}, "parameter 'max' must be a number"),
    ],
)
def test_noise_bounds_are_checked_when_parsed(params, message):
    with pytest.raises(ParamError) as caught:
        get("noise").parse_params(params)
    assert message in str(caught.value)


def test_noise_bounds_default_to_absent_and_render_as_written():
    noise = get("noise")
    assert noise.parse_params({})["min"] is None and noise.parse_params({})["max"] is None
    clamped = noise.parse_params({"min": 6.5, "max": 200})
    sql = form("noise")(sql_target(target("numeric(5,2)", Kind.NUMERIC), '"v"'), clamped)
    assert "least(" in sql and ", 200)" in sql and "greatest(" in sql and ", 6.5)" in sql
    unclamped = noise.parse_params({})
    assert "least" not in form("noise")(sql_target(target("numeric", Kind.NUMERIC), '"v"'), unclamped)


@pytest.mark.parametrize(
    ("sql_type", "kind", "params", "problem"),
    [
        ("numeric(5,2)", Kind.NUMERIC, {"min": 6.5, "max": 200.0}, None),
        ("numeric(5,2)", Kind.NUMERIC, {"max": 1000}, "max 1000 does not fit numeric(5,2)"),
        ("numeric(5,2)", Kind.NUMERIC, {"min": 6.505}, "more decimals than numeric(5,2) keeps (2)"),
        ("numeric(5)", Kind.NUMERIC, {"min": 0.5}, "more decimals than numeric(5) keeps (0)"),
        ("integer", Kind.INTEGER, {"min": 1, "max": 40}, None),
        ("integer", Kind.INTEGER, {"min": 1.5}, "min must be a whole number on an integer column"),
        ("smallint", Kind.INTEGER, {"max": 40000}, "max 40000 does not fit smallint"),
        ("double precision", Kind.FLOAT, {"min": -1e300, "max": 0.001}, None),
    ],
)
def test_noise_bounds_must_be_values_of_the_column_type(sql_type, kind, params, problem):
    found = cannot("noise", sql_type, kind, params)
    assert found == problem if problem is None else problem in found


def test_hash_applies_to_uuid_without_format_or_length():
    assert cannot("hash", "uuid", Kind.UUID, {}, unique=True) is None
    for params in ({"format": "digits"}, {"length": 64}):
        assert "always makes a uuid" in cannot("hash", "uuid", Kind.UUID, params)


def test_transformers_command_shows_the_new_parameters(capsys):
    assert main(["transformers", "noise"]) == 0
    out = capsys.readouterr().out
    assert "min (a number, optional)" in out and "max (a number, optional)" in out
    assert main(["transformers", "hash"]) == 0
    assert "uuid" in capsys.readouterr().out.split("applies to:")[1].splitlines()[0]


def test_json_on_text_needs_a_non_null_answer_for_invalid_values_on_not_null_columns():
    paths = {"paths": {"$.a": "fake.email"}}
    assert cannot("json", "text", Kind.TEXT, paths) is None
    assert "set invalid: empty" in cannot("json", "text", Kind.TEXT, paths, nullable=False)
    assert cannot("json", "text", Kind.TEXT, {**paths, "invalid": "fail"}, nullable=False) is None
    with pytest.raises(ParamError, match="must be one of 'null', 'empty', 'fail'"):
        get("json").parse_params({**paths, "invalid": "keep"})
