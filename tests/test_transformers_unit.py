"""The transformer registry without a database: lookup, parameters, applicability, and the SQL text itself."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from pydantic import TypeAdapter

from deid.backends.postgresql.forms import FORMS, form
from deid.backends.postgresql.forms.sql import sql_target
from deid.backends.postgresql.forms.support import support_sql
from deid.errors import TerminalError
from deid.schema import Column, Kind
from deid.transformers import UnknownTransformer, all_transformers, get
from deid.transformers.base import ParamError, Target
from deid.transformers.dictionaries import NAMES, SIZES, entries, generate
from deid.transformers.keying import prf_key
from deid.transformers.structured import parse_path

# --- the registry --------------------------------------------------------------------------------------


def test_unknown_transformer_suggests_the_close_name():
    with pytest.raises(UnknownTransformer) as caught:
        get("fake.emial")
    assert str(caught.value) == "Unknown transformer 'fake.emial'. Did you mean 'fake.email'?"
    assert isinstance(caught.value, TerminalError)


def test_unknown_transformer_without_anything_close():
    assert str(UnknownTransformer("zzzz")) == "Unknown transformer 'zzzz'."


def test_registry_lists_every_transformer_once_sorted():
    names = [t.name for t in all_transformers()]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert set(names) == set(
        [
            "keep",
            "null",
            "constant",
            "redact",
            "hash",
            "shift_date",
            "truncate_date",
            "generalize_zip",
            "noise",
            "json",
            "fake.first_name",
            "fake.last_name",
            "fake.name",
            "fake.email",
            "fake.phone",
            "fake.street_address",
            "fake.company",
            "fake.user_name",
            "fake.ipv4",
            "fake.ipv6",
            "fake.url",
        ]
    )
    assert all(get(n).name == n for n in names)


def test_the_sql_forms_registry_holds_one_form_per_transformer_and_nothing_else():
    """The engine with SQL forms keys them by transformer name: a transformer without one would fail the
    plan of any table using it, a form without a transformer is dead code."""
    assert set(FORMS) == {t.name for t in all_transformers()}


@pytest.mark.parametrize("transformer", all_transformers(), ids=lambda t: t.name)
def test_every_definition_is_readable(transformer):
    assert transformer.description.strip() and transformer.applies_to
    for p in transformer.params:
        assert p.description.strip()
        if not p.required:
            kind, _ = p.field()
            assert TypeAdapter(kind).validate_python(p.default, strict=True) == p.default, (
                "defaults pass checks"
            )
    assert set(transformer.dictionaries) <= set(NAMES)


def test_keep_and_null_apply_to_every_kind_arrays_included():
    for name in ("keep", "null"):
        assert get(name).applies_to == frozenset(Kind)
    assert not get("keep").rewrites and not get("null").keeps_nulls


# --- parameters ----------------------------------------------------------------------------------------

PARAM_ERRORS = [
    ("hash", {"length": "32"}, "parameter 'length' must be an integer, got a string"),
    ("hash", {"length": True}, "parameter 'length' must be an integer, got true or false"),
    (
        "hash",
        {"lenght": 40},
        "unknown parameter 'lenght' for hash (allowed: domain, format, length, pattern). "
        "Did you mean 'length'?",
    ),
    ("hash", {"length": 65}, "parameter 'length' must be at most 64, got 65"),
    (
        "hash",
        {"format": "base64"},
        "parameter 'format' must be one of 'hex', 'digits', 'email', got 'base64'",
    ),
    ("hash", {"pattern": "#" * 19}, "parameter 'pattern' must hold 1 to 18 '#' (one per digit), got 19"),
    ("hash", {"pattern": "#-" * 10}, "parameter 'pattern' may hold at most 9 runs of '#', got 10"),
    ("hash", {"domain": "gmail.com"}, "parameter 'domain' must be a reserved domain"),
    ("fake.email", {"domain": "Example.COM"}, "parameter 'domain' must be a lower-case domain name"),
    ("fake.url", {"domain": "example.net.evil.com"}, "parameter 'domain' must be a reserved domain"),
    ("shift_date", {"days": 0}, "parameter 'days' must be at least 1, got 0"),
    ("shift_date", {"days": 30.5}, "parameter 'days' must be an integer, got a number"),
    ("shift_date", {"bye": "learner_id"}, "Did you mean 'by'?"),
    (
        "truncate_date",
        {"unit": "decade"},
        "parameter 'unit' must be one of 'year', 'quarter', 'month', 'week', 'day', got 'decade'",
    ),
    ("noise", {"relative": 0}, "parameter 'relative' must be greater than 0, got 0"),
    ("noise", {"relative": 1.5}, "parameter 'relative' must be at most 1, got 1.5"),
    ("redact", {"mask": "**"}, "parameter 'mask' must be exactly one character, got 2"),
    ("redact", {"keep_end": -1}, "parameter 'keep_end' must be at least 0, got -1"),
    ("generalize_zip", {"pad": "yes"}, "parameter 'pad' must be true or false, got a string"),
    ("constant", {}, "constant needs parameter 'value'"),
    ("keep", {"reason": "x"}, "unknown parameter 'reason' for keep (allowed: none)."),
    ("fake.first_name", {"unique": 1}, "parameter 'unique' must be true or false, got an integer"),
    ("json", {"paths": {}}, "parameter 'paths' needs at least one path"),
    ("json", {"paths": ["$.a"]}, "parameter 'paths' must be a mapping, got a list"),
    (
        "json",
        {"paths": {"$.email": "fake.emial"}},
        "$.email: Unknown transformer 'fake.emial'. Did you mean 'fake.email'?",
    ),
    ("json", {"paths": {"$.a": "json"}}, "$.a: json cannot be used inside json"),
    ("json", {"paths": {"$.a": "keep"}}, "$.a: keep cannot be used inside json"),
    ("json", {"paths": {"contact.email": "fake.email"}}, "path 'contact.email' must start with '$'"),
    ("json", {"paths": {"$.a..b": "null"}}, "path '$.a..b' is not understood at '..b'"),
    ("json", {"paths": {"$.a": "null", "$.a.b": "null"}}, "paths $.a and $.a.b overlap"),
    ("json", {"paths": {"$.a": {"transformer": "hash", "param": {}}}}, "Did you mean 'params'?"),
    (
        "json",
        {"paths": {"$.a": {"transformer": "hash", "params": {"length": 1}}}},
        "$.a: parameter 'length' must be at least 8, got 1",
    ),
    ("json", {"paths": {"$.a": {"params": {}}}}, "$.a: missing transformer"),
]


@pytest.mark.parametrize(
    ("name", "params", "message"), PARAM_ERRORS, ids=[f"{n}-{p}" for n, p, _ in PARAM_ERRORS]
)
def test_bad_parameters_are_rejected_with_the_reason(name: str, params: dict[str, Any], message: str):
    with pytest.raises(ParamError) as caught:
        get(name).parse_params(params)
    assert message in str(caught.value)


def test_parameters_get_their_defaults_and_ints_pass_as_numbers():
    assert get("hash").parse_params({}) == {
        "format": "hex",
        "length": 32,
        "pattern": "###-##-####",
        "domain": "example.com",
    }
    assert get("noise").parse_params({"relative": 1}) == {"relative": 1.0, "by": "", "min": None, "max": None}
    assert get("fake.email").parse_params({})["unique"] is True
    assert get("fake.first_name").parse_params({})["unique"] is False


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$.contact.email", ("contact", "email")),
        ("$.items[0].id", ("items", "0", "id")),
        ("$.items[-1]", ("items", "-1")),
        ('$["odd key"].x', ("odd key", "x")),
        ("$.snake_case-and-dash", ("snake_case-and-dash",)),
    ],
)
def test_json_paths(path: str, steps: tuple[str, ...]):
    assert parse_path(path) == steps


# --- applicability ---------------------------------------------------------------------------------------


def target(
    kind: Kind,
    sql_type: str = "text",
    *,
    unique: bool = False,
    nullable: bool = True,
    max_length: int | None = None,
) -> Target:
    column = Column("c", sql_type, kind, nullable=nullable, max_length=max_length)
    return Target(
        column=column,
        kind=kind,
        sql_type=sql_type,
        unique=unique,
        columns=("id", "c", "learner_id"),
    )


TEXT = target(Kind.TEXT)
UNIQUE_TEXT = target(Kind.TEXT, unique=True)

CANNOT = [
    ("null", {}, target(Kind.TEXT, nullable=False), "null cannot apply to a NOT NULL column"),
    ("hash", {}, target(Kind.DATE, "date"), "hash applies to integer, text, uuid columns, not date (date)"),
    ("shift_date", {}, TEXT, "shift_date applies to date, timestamp columns, not text (text)"),
    ("fake.ipv4", {}, target(Kind.UUID, "uuid"), "fake.ipv4 applies to inet, text columns, not uuid (uuid)"),
    ("constant", {"value": "x"}, UNIQUE_TEXT, "constant can give equal outputs for distinct inputs"),
    ("redact", {}, UNIQUE_TEXT, "cannot serve a column with a unique constraint"),
    (
        "fake.ipv4",
        {},
        target(Kind.INET, "inet", unique=True),
        "cannot serve a column with a unique constraint",
    ),
    (
        "shift_date",
        {},
        target(Kind.DATE, "date", unique=True),
        "cannot serve a column with a unique constraint",
    ),
    ("fake.first_name", {}, UNIQUE_TEXT, "fake.first_name on a unique column needs unique: true"),
    ("fake.email", {"unique": False}, UNIQUE_TEXT, "fake.email on a unique column needs unique: true"),
    ("hash", {"length": 16}, UNIQUE_TEXT, "hash on a unique column needs length of at least 32 (128 bits)"),
    ("hash", {"format": "email", "length": 24}, UNIQUE_TEXT, "needs length of at least 32"),
    ("hash", {}, target(Kind.INTEGER, "integer"), "hash on an integer column needs format: digits"),
    ("hash", {"format": "digits"}, target(Kind.INTEGER, "integer"), "needs a pattern of '#' only"),
    (
        "hash",
        {"format": "digits", "pattern": "#####"},
        target(Kind.INTEGER, "smallint"),
        "hash: smallint holds 4 digits without overflow",
    ),
    (
        "hash",
        {"length": 64},
        target(Kind.TEXT, "character varying(40)"),
        "hash (format hex) needs 64 characters but character varying(40) holds 40",
    ),
    ("hash", {"format": "digits"}, target(Kind.TEXT, "character(9)"), "needs 11 characters"),
    (
        "fake.email",
        {},
        target(Kind.TEXT, "varchar(30)"),
        "fake.email needs 34 characters but varchar(30) holds",
    ),
    ("fake.ipv6", {}, target(Kind.TEXT, "varchar(20)"), "fake.ipv6 needs 39 characters"),
    ("fake.url", {}, target(Kind.TEXT, "varchar(40)"), "fake.url needs 52 characters"),
    ("generalize_zip", {"pad": True}, target(Kind.TEXT, "varchar(3)"), "generalize_zip needs 5 characters"),
    ("constant", {"value": "unknown"}, target(Kind.TEXT, "varchar(5)"), "the constant needs 7 characters"),
    ("constant", {"value": "abc"}, target(Kind.INTEGER, "integer"), "constant value is not a valid integer"),
    ("constant", {"value": "2024-13-01"}, target(Kind.DATE, "date"), "constant value is not a valid date"),
    ("constant", {"value": "{"}, target(Kind.JSON, "jsonb"), "constant value is not a valid json"),
    (
        "shift_date",
        {"by": "learner"},
        target(Kind.DATE, "date"),
        "by: column 'learner' is not a column of this table. Did you mean 'learner_id'?",
    ),
    ("noise", {"by": "nobody"}, target(Kind.NUMERIC, "numeric"), "by: column 'nobody' is not a column"),
    (
        "json",
        {"paths": {"$.d": "shift_date"}},
        target(Kind.JSON, "jsonb"),
        "at $.d: shift_date applies to date, timestamp columns, not text (text)",
    ),
]


@pytest.mark.parametrize(
    ("name", "params", "where", "message"), CANNOT, ids=[f"{c[0]}-{i}" for i, c in enumerate(CANNOT)]
)
def test_cannot_apply_says_why(name: str, params: dict[str, Any], where: Target, message: str):
    transformer = get(name)
    reason = transformer.cannot_apply(where, transformer.parse_params(params))
    assert reason is not None and message in reason, reason


CAN = [
    ("keep", {}, target(Kind.ARRAY, "text[]", unique=True)),
    ("null", {}, target(Kind.ARRAY, "text[]")),
    ("null", {}, UNIQUE_TEXT),
    ("fake.email", {}, UNIQUE_TEXT),
    ("fake.email", {}, target(Kind.TEXT, "character varying(34)", unique=True)),
    ("fake.user_name", {}, UNIQUE_TEXT),
    ("fake.name", {"unique": True}, UNIQUE_TEXT),
    ("fake.ipv6", {}, target(Kind.INET, "inet", unique=True)),
    ("fake.url", {}, UNIQUE_TEXT),
    ("hash", {"format": "digits"}, target(Kind.TEXT, "varchar(11)", unique=True)),
    ("hash", {"format": "digits", "pattern": "#" * 18}, target(Kind.INTEGER, "bigint", unique=True)),
    ("hash", {"length": 64}, UNIQUE_TEXT),
    ("constant", {"value": "2024-01-31"}, target(Kind.DATE, "date")),
    ("constant", {"value": "t"}, target(Kind.BOOLEAN, "boolean")),
    ("shift_date", {"by": "learner_id"}, target(Kind.TIMESTAMP, "timestamp with time zone")),
    ("json", {"paths": {"$.a.b": "fake.email", "$.n": "null"}}, target(Kind.JSON, "json")),
]


@pytest.mark.parametrize(("name", "params", "where"), CAN, ids=[f"{c[0]}-{i}" for i, c in enumerate(CAN)])
def test_can_apply(name: str, params: dict[str, Any], where: Target):
    transformer = get(name)
    assert transformer.cannot_apply(where, transformer.parse_params(params)) is None


# --- the SQL text ------------------------------------------------------------------------------------------

SAMPLE_TYPES = {
    Kind.TEXT: "text",
    Kind.INTEGER: "integer",
    Kind.NUMERIC: "numeric(10,2)",
    Kind.FLOAT: "float8",
    Kind.DATE: "date",
    Kind.TIMESTAMP: "timestamptz",
    Kind.JSON: "jsonb",
    Kind.INET: "inet",
}
SAMPLE_PARAMS = {"constant": {"value": "1"}, "json": {"paths": {"$.a": "fake.email", "$.b": "redact"}}}


def every_sql() -> list[tuple[str, str]]:
    out = []
    for t in all_transformers():
        for kind in sorted(t.applies_to & set(SAMPLE_TYPES)):
            params = t.parse_params(SAMPLE_PARAMS.get(t.name, {}))
            params = (
                {**params, "format": "digits", "pattern": "#########"} if kind is Kind.INTEGER else params
            )
            sql = form(t.name)(sql_target(target(kind, SAMPLE_TYPES[kind]), '"c"'), params)
            out.append((f"{t.name}:{kind.value}", sql))
    return out


def test_no_sql_text_holds_a_percent_sign():
    """Drivers read % as a placeholder, and the scrub runs these statements as text."""
    offenders = [name for name, sql in every_sql() if "%" in sql]
    assert not offenders and not [s for s in support_sql() if "%" in s]


def test_sql_forms_read_the_target_and_cast_to_its_type():
    for name, sql in every_sql():
        transformer, kind = name.split(":")
        sql_type = SAMPLE_TYPES[Kind(kind)]
        if transformer == "keep":
            assert sql == '"c"'
        elif transformer == "null":
            assert sql == f"NULL::{sql_type}"
        else:
            assert '"c"' in sql and sql.endswith(f")::{sql_type}"), name


def test_the_key_is_one_block_derived_from_the_salt_by_hmac():
    salts = ("short", "x" * 64, "y" * 65, "ünïcode")
    for salt in salts:
        key = prf_key(salt)
        assert len(key) == 64  # exactly one SHA-256 block: the first compression absorbs the key alone
        assert key == b"".join(
            hmac.new(salt.encode(), f"deid.prf.key.{i}".encode(), hashlib.sha256).digest() for i in (0, 1)
        )
    assert len({prf_key(s) for s in salts}) == len(salts)


# --- dictionaries --------------------------------------------------------------------------------------

# A change here means a Faker upgrade changed the fake values: every staging copy will change on the next run.
DICTIONARY_DIGESTS = {
    "company": "d14d4d5e7fb3fe94",
    "first_name": "b175e309da491549",
    "last_name": "b433b1660016cf1b",
    "street_address": "c8a72aa96f055a62",
    "user_name": "40cc761a85d632ad",
}


@pytest.mark.parametrize("name", NAMES)
def test_dictionaries_are_fixed_distinct_and_one_line(name: str):
    values = entries(name)
    assert len(values) == len(set(values)) == SIZES[name]
    assert all(v and v == " ".join(v.split()) for v in values)
    assert hashlib.sha256("\n".join(values).encode()).hexdigest()[:16] == DICTIONARY_DIGESTS[name]


@pytest.mark.parametrize("name", NAMES)
def test_shipped_dictionaries_are_what_the_locked_faker_generates(name: str):
    """The files a run reads (so that it need not import Faker) hold exactly Faker's entries, in order; after
    a Faker upgrade this fails, and write_files() regenerates them (the digests above then say what moved)."""
    assert entries(name) == generate(name)


def test_a_scrub_does_not_import_faker():
    """Faker costs a run about 40 MB; the dictionaries come from the shipped files instead."""
    import subprocess
    import sys

    code = (
        "import sys; from deid.transformers.dictionaries import entries, NAMES; "
        "[entries(n) for n in NAMES]; import deid.steps.scrub; print('faker' in sys.modules)"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )
