"""The JSON Schema for editors: generated from the code, committed, and it accepts what deid accepts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from deid.rules import jsonschema as rules_jsonschema

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "rules" / "rules.schema.json"
SHIPPED_RULES = sorted((ROOT / "rules").glob("*.yaml"))


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text()))


def test_committed_schema_is_up_to_date():
    generated = rules_jsonschema.render(ROOT / "rules" / "policies")
    assert COMMITTED.read_text() == generated, "rules/rules.schema.json is stale: run `deid rules-schema`"


def test_committed_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(COMMITTED.read_text()))


@pytest.mark.parametrize("path", SHIPPED_RULES, ids=[p.name for p in SHIPPED_RULES])
def test_shipped_rules_validate_and_name_the_schema(path):
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=rules.schema.json")
    errors = list(validator().iter_errors(yaml.safe_load(text)))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize(
    "column_rule",
    [
        {"transformer": "fake.emial"},
        {"transformer": "hash", "params": {"length": "long"}},
        {"transformer": "hash", "params": {"lenght": 32}},
        {"class": "e-mail"},
        {"tranformer": "keep"},
        "keep_it",
    ],
)
def test_schema_rejects_what_lint_rejects(column_rule):
    doc = {"database": "shop", "tables": {"users": {"columns": {"email": column_rule}}}}
    assert list(validator().iter_errors(doc)), f"{column_rule!r} should not validate"
