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


def test_every_problem_of_a_file_is_told_at_once_with_its_line(tmp_path):
    """The model refuses one table's shape; the loader still resolves the tables (and columns) whose shape
    is right, so one lint run lists both kinds of problem."""
    from deid.errors import RuleProblems
    from deid.rules.load import load_rules

    path = tmp_path / "shop.yaml"
    path.write_text(
        "database: shop\ntables:\n  users:\n    copy: none\n    columns:\n      email: fake.emial\n"
        "  orders:\n    columns:\n      total: {transformer: noise, params: {relative: 2}}\n"
        "      note: {keep: true}\n"
        "  events:\n    keep_rows_at_most: {rows: 5, percent: 1, reason: r}\n    columns: {at: keep}\n"
    )
    with pytest.raises(RuleProblems) as raised:
        load_rules(path)
    told = {(p.line, p.message) for p in raised.value.problems}
    assert (4, "tables.users.copy must be one of full, schema_only, got 'none'") in told
    assert (6, "column email: Unknown transformer 'fake.emial'. Did you mean 'fake.email'?") in told
    assert (9, "column total: parameter 'relative' must be at most 1, got 2") in told
    assert (10, "unknown key 'keep' in tables.orders.columns.note.") in told
    assert any(line == 12 and "takes one of rows" in message for line, message in told)
    assert len(told) == 5, told


def test_the_schema_narrows_each_rule_to_its_transformer_s_parameters():
    schema = json.loads(COMMITTED.read_text())
    hash_rule = schema["$defs"]["rule_hash"]["properties"]
    assert hash_rule["transformer"]["const"] == "hash"
    params = schema["$defs"]["params_hash"]
    assert params["additionalProperties"] is False and params["properties"]["length"]["maximum"] == 64
    assert "waive" not in hash_rule and "waive" in schema["$defs"]["rule_keep"]["properties"]
