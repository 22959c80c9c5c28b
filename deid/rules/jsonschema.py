"""The JSON Schemas for editors, generated from the models that validate the files they describe.

rules/rules.schema.json comes from the rule file's model (deid.rules.spec), each column rule narrowed to
the transformers of the registry (with their params models) and the classes of the policies;
rules/schemas/deid.schema.json from deid.yaml's model (deid.config.DeidYaml), rules/schemas/record.schema.json
from the run record's (deid.records.record.RunRecord). Rule files name theirs on their first line
(`# yaml-language-server: $schema=rules.schema.json`), deid.yaml too, so editors validate and complete them.
Tests regenerate both and fail when a committed copy is stale: run `deid rules-schema` to refresh them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deid.rules.load import load_policy, policy_dir
from deid.rules.spec import schema_model
from deid.transformers import all_transformers

FILE_NAME = "rules.schema.json"
RECORD_SCHEMA_FILE = "record.schema.json"
# deid.yaml's and the record's schemas, in a folder of their own: rules/<database>.schema.json is a
# database's schema snapshot, and a database may be called deid or record
SCHEMAS = "schemas"


def build(policies_dir: Path) -> dict[str, Any]:
    policies = sorted(p.stem for p in Path(policies_dir).glob("*.yaml"))
    classes = sorted({c.name for name in policies for c in load_policy(name, policies_dir).classes})
    schema = schema_model(all_transformers(), classes, policies).model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render(policies_dir: Path) -> str:
    return _text(build(policies_dir))


def render_config() -> str:
    """deid.yaml's JSON Schema, generated from its model (deid.config.DeidYaml)."""
    from deid.config import json_schema

    return _text(json_schema())


def render_record() -> str:
    """The run record's JSON Schema, generated from its model (deid.records.record.RunRecord): for tools
    that read records (the fields it names are typed; steps add facts of their own, allowed)."""
    from deid.records.record import RunRecord

    schema = RunRecord.model_json_schema()
    return _text({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema})


def write(out: Path) -> list[Path]:
    """Write the rule files' schema to `out`, deid.yaml's and the run record's to schemas/ beside it
    (`deid rules-schema`)."""
    from deid.config import SCHEMA_FILE

    out = Path(out)
    out.write_text(render(policy_dir(out.parent)))  # the policies rule files beside it would use
    folder = out.parent / SCHEMAS
    folder.mkdir(exist_ok=True)
    config = folder / SCHEMA_FILE
    config.write_text(render_config())
    record = folder / RECORD_SCHEMA_FILE
    record.write_text(render_record())
    return [out, config, record]


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
