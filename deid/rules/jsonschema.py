"""The JSON Schema of rule files, generated from the rule model, the transformer registry and the policies.

It is committed as rules/rules.schema.json and named by each rule file's first line
(`# yaml-language-server: $schema=rules.schema.json`), so editors validate and complete rule files. A test
regenerates it and fails when the committed copy is stale: run `deid rules-schema` to refresh it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deid.rules.condition import MAX_CHARACTERS
from deid.rules.load import COLUMN_KEYS, RULES_VERSION, TABLE_KEYS, load_policy
from deid.rules.model import COPY_MODES
from deid.transformers import all_transformers
from deid.transformers.base import Param

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}
FILE_NAME = "rules.schema.json"


def _param_schema(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _JSON_TYPES[param.type], "description": param.description}
    if param.choices:
        out["enum"] = list(param.choices)
    if param.minimum is not None:
        out["minimum"] = param.minimum
    if param.maximum is not None:
        out["maximum"] = param.maximum
    if not param.required and param.default is not None:  # None: optional, absent by default
        out["default"] = param.default
    return out


def _params_schema(params: tuple[Param, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {p.name: _param_schema(p) for p in params},
        "required": [p.name for p in params if p.required],
    }


def _waive_schema() -> dict[str, Any]:
    from deid.expect.waivable import WAIVABLE

    return {
        "type": "object",
        "description": "Validation checks that do not fail this kept column, each with its reason: "
        + "; ".join(f"{check}: {what}" for check, what in WAIVABLE.items())
        + ". Only for kept columns; every other check, and other columns, still fail.",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {check: {"type": "string", "minLength": 1} for check in WAIVABLE},
    }


def build(policies_dir: Path) -> dict[str, Any]:
    transformers = all_transformers()
    policies = sorted(p.stem for p in Path(policies_dir).glob("*.yaml"))
    classes = sorted({c.name for name in policies for c in load_policy(name, policies_dir).classes})
    defs: dict[str, Any] = {}
    for t in transformers:
        defs[f"rule.{t.name}"] = {
            "type": "object",
            "description": t.description,
            "additionalProperties": False,
            "required": ["transformer"],
            "properties": {
                "transformer": {"const": t.name},
                "params": _params_schema(t.params),
                "reason": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Why this is safe (needed to keep "
                    "a column that looks like an identifier).",
                },
                # only a kept column can waive a check (the loader refuses it on a transformed one)
                **({} if t.rewrites else {"waive": _waive_schema()}),
            },
        }
    defs["rule.class"] = {
        "type": "object",
        "description": "An identifier class of the policy; the policy names its transformer.",
        "additionalProperties": False,
        "required": ["class"],
        "properties": {
            "class": {"enum": classes},
            "params": {"type": "object", "description": "Overrides of the class transformer's parameters."},
            "reason": {"type": "string", "minLength": 1},
            "waive": _waive_schema(),
        },
    }
    defs["column"] = {
        "description": "A transformer name, a transformer with parameters, or an identifier class.",
        "oneOf": [
            {"enum": [t.name for t in transformers], "description": "A transformer without parameters."},
            {"type": "null", "description": "`null`: the null transformer."},
            {"$ref": "#/$defs/rule.class"},
            *({"$ref": f"#/$defs/rule.{t.name}"} for t in transformers),
        ],
    }
    defs["table"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "copy": {
                "enum": list(COPY_MODES),
                "default": "full",
                "description": "full: copy and scrub the rows; schema_only: copy no rows.",
            },
            "keep_rows_where": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_CHARACTERS,
                "description": "Rows matching this condition are static test "
                "data labelled fake: kept unscrubbed. Column names, literals, comparisons, "
                "AND/OR/NOT, IS NULL, IN (literals), column [NOT] LIKE / ILIKE 'pattern' (a quoted "
                "pattern with a literal character) only.",
            },
            "keep_rows_at_most": {
                "type": "object",
                "description": "More static test rows than the default (10 rows or 1% of the table, "
                "and never all of them), with the reason: rows (a count) or percent (of the table).",
                "additionalProperties": False,
                "required": ["reason"],
                "properties": {
                    "rows": {"type": "integer", "minimum": 0},
                    "percent": {"type": "number", "minimum": 0, "maximum": 100},
                    "reason": {"type": "string", "minLength": 1},
                },
                "oneOf": [{"required": ["rows"]}, {"required": ["percent"]}],
            },
            "triggers": {
                "type": "object",
                "description": "What the scrub does with a trigger of this table: recompute (it fires "
                "during the scrub, so a BEFORE ROW trigger derives its columns from scrubbed values), or "
                "silent with the reason its effects hold no identifier.",
                "additionalProperties": {
                    "oneOf": [
                        {"const": "recompute"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["silent"],
                            "properties": {"silent": {"type": "string", "minLength": 1}},
                        },
                    ]
                },
            },
            "columns": {"type": "object", "additionalProperties": {"$ref": "#/$defs/column"}},
            "description": {"type": "string"},
        },
    }
    assert set(defs["table"]["properties"]) == set(TABLE_KEYS)
    assert set(defs["rule.class"]["properties"]) <= set(COLUMN_KEYS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "deid rule file",
        "description": "One file per production database: a rule for every column of every table.",
        "type": "object",
        "additionalProperties": False,
        "required": ["database", "tables"],
        "properties": {
            "$schema": {"type": "string"},
            "version": {"const": RULES_VERSION},
            "database": {"type": "string", "description": "The database's name in deid.yaml."},
            "policy": {"enum": policies, "default": "hipaa_limited_data_set"},
            "large_objects": {
                "description": "The database's large objects (objects outside any table), which belong to "
                "no column: drop (deid unlinks them in the copy), or keep with the reason their contents "
                "hold no identifier. Required when the database holds any.",
                "oneOf": [
                    {"const": "drop"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["keep"],
                        "properties": {"keep": {"type": "string", "minLength": 1}},
                    },
                ],
            },
            "tables": {
                "type": "object",
                "description": "schema.table (or table, meaning public.table); a name holding a dot "
                'or a quote is written in double quotes: "my.schema".table',
                "additionalProperties": {"$ref": "#/$defs/table"},
            },
        },
        "$defs": defs,
    }


def render(policies_dir: Path) -> str:
    return _text(build(policies_dir))


def render_config() -> str:
    """deid.yaml's JSON Schema, generated from its model (deid.config.DeidYaml)."""
    from deid.config import json_schema

    return _text(json_schema())


def write(out: Path) -> list[Path]:
    """Write the rule files' schema to `out` and deid.yaml's beside it (`deid rules-schema`)."""
    from deid.config import SCHEMA_FILE

    out = Path(out)
    out.write_text(render(out.parent / "policies"))
    config = out.parent / SCHEMA_FILE
    config.write_text(render_config())
    return [out, config]


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
