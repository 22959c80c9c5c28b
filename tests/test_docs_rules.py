"""docs/rules.md against the code, so the reference cannot drift from what deid accepts.

Every transformer of the registry has a section whose kinds, unique-column verdict and parameter table
(name, type, default) match the registry, and whose YAML example loads as a rule for that transformer; every
key the loader accepts and every class of the shipped policy is named; nothing is documented that the code
does not know.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from deid.rules import load as rules_load
from deid.rules.load import load_rules
from deid.transformers import all_transformers
from deid.transformers.base import Param

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "rules.md"
TEXT = DOC.read_text()
TRANSFORMERS = {t.name: t for t in all_transformers()}


def _chapter(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.M | re.S)
    assert match, f"docs/rules.md has no chapter '## {title}'"
    return match.group(1)


def _sections() -> dict[str, str]:
    parts = re.split(r"^### `([^`]+)`\n", _chapter("Transformers"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


SECTIONS = _sections()


def _default_cell(param: Param) -> str:
    if param.required:
        return "required"
    if param.default is None:
        return "optional"
    value = param.default
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"`{value}`" if value != "" else '`""`'


def _type_cell(param: Param) -> str:
    return param.type_name.removeprefix("a ").removeprefix("an ")


def _param_rows(section: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| `([a-z_]+)` \| ([a-z ]+?) \| (.+?) \| .+\|$", section, re.M)
    return {name: (kind, default.split(" (")[0]) for name, kind, default in rows}


def test_every_transformer_has_a_section_and_nothing_else_does():
    missing, unknown = set(TRANSFORMERS) - set(SECTIONS), set(SECTIONS) - set(TRANSFORMERS)
    assert not missing and not unknown, f"missing: {sorted(missing)}; unknown: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_kinds_unique_verdict_and_parameters_match_the_registry(name):
    t, section = TRANSFORMERS[name], SECTIONS.get(name, "")
    kinds = re.search(r"^- Applies to: (.+)$", section, re.M)
    assert kinds, f"{name}: no '- Applies to:' line"
    assert {k.strip() for k in kinds.group(1).split(",")} == {k.value for k in t.applies_to}
    unique = re.search(r"^- Unique columns: (yes|no)\b", section, re.M)
    assert unique and (unique.group(1) == "yes") == t.unique_safe, f"{name}: unique-column verdict"
    expected = {p.name: (_type_cell(p), _default_cell(p)) for p in t.params}
    assert _param_rows(section) == expected
    if not t.params:
        assert "Parameters: none." in section


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_every_example_loads_as_a_rule_for_its_transformer(name, tmp_path):
    examples = re.findall(r"```yaml\n(.*?)```", SECTIONS.get(name, ""), re.S)
    assert examples, f"{name}: no YAML example"
    for example in examples:
        columns = yaml.safe_load(example)
        assert isinstance(columns, dict) and columns
        rules = tmp_path / "example.yaml"
        body = {"version": 1, "database": "example", "tables": {"public.t": {"columns": columns}}}
        rules.write_text(yaml.safe_dump(body))
        loaded = load_rules(rules)
        assert name in {c.transformer for c in loaded.tables[0].columns} | {
            p for c in loaded.tables[0].columns for p in _nested(c.params)
        }


def _nested(params) -> set[str]:
    """Transformer names used inside a json rule's paths."""
    paths = params.get("paths") or {}
    return {v if isinstance(v, str) else v.get("transformer") for v in paths.values()}


@pytest.mark.parametrize(
    "keys",
    [
        rules_load.TOP_KEYS,
        rules_load.TABLE_KEYS,
        rules_load.COLUMN_KEYS,
        rules_load.ROW_LIMIT_KEYS,
        ("recompute", "silent", "drop", "keep"),
    ],
    ids=["top", "table", "column", "row-limit", "trigger-and-large-object-words"],
)
def test_every_key_the_loader_accepts_is_documented(keys):
    chapter = _chapter("Keys")
    missing = [k for k in keys if f"`{k}`" not in chapter]
    assert not missing, f"docs/rules.md, chapter Keys, does not name: {missing}"


def test_every_class_of_the_shipped_policy_is_documented_with_its_transformer():
    policy = rules_load.load_policy("hipaa_limited_data_set", ROOT / "rules" / "policies")
    chapter = _chapter("The policy")
    for cls in policy.classes:
        row = re.search(rf"^\| `{cls.name}` \| `([^`]+)`", chapter, re.M)
        assert row, f"class {cls.name} is not in the policy table"
        assert row.group(1) == cls.transformer, f"class {cls.name}: documented {row.group(1)}"


def test_the_row_condition_grammar_is_the_one_the_parser_enforces():
    from deid.rules.condition import ALLOWED

    assert ALLOWED in _chapter("Row conditions")


def test_every_waivable_check_is_documented_and_no_other():
    from deid.expect.waivable import WAIVABLE

    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \| ", _chapter("Waivers"), re.M))
    assert documented == set(WAIVABLE)
