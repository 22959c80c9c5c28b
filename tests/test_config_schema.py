"""deid.yaml's JSON Schema: generated from the model that validates deid.yaml, committed beside the rule
files' schema, and it accepts what deid accepts and refuses what deid refuses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from deid.config import load_config
from deid.errors import ConfigError
from deid.rules import jsonschema as schemas

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "rules" / "schemas" / "deid.schema.json"
BASE = "databases:\n  a:\n    production: p\n    staging_server: s\n    salt_secret: k\n"


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text()))


def test_committed_schema_is_up_to_date_and_valid():
    assert COMMITTED.read_text() == schemas.render_config(), (
        "rules/schemas/deid.schema.json is stale: `deid rules-schema`"
    )
    jsonschema.Draft202012Validator.check_schema(json.loads(COMMITTED.read_text()))


def test_the_repository_config_names_the_schema_and_validates():
    text = (ROOT / "deid.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=rules/schemas/deid.schema.json")
    assert not [e.message for e in validator().iter_errors(yaml.safe_load(text))]
    assert load_config(ROOT / "deid.yaml").database("learners").retention >= 0


@pytest.mark.parametrize(
    "extra",
    [
        "    retention: -1\n",
        "    engin: postgresql\n",
        "    engine: postgress\n",
        "    staging_roles: [a, [b]]\n",
        "    validation: {pii_scan_rows: every}\n",
        "    aurora: {cluster: c, hosted_zone_id: z, record_name: r, ttl: 0}\n",
        "records: {s3: {prefix: p}}\n",
        "records: {s3: {bucket: b, sse: none}}\n",
        "preview: {allowed: alice}\n",
        # the section a cloner reads itself is typed by its model (Cloner.section_model) in the schema too
        "    clone: reflink\n    reflink: {data_directory: pgdata, copies: /srv/c, port: 5433}\n",
        "    clone: reflink\n    reflink: {data_directory: /srv/d, copies: /srv/c, port: 5433, prot: 1}\n",
    ],
)
def test_schema_and_deid_both_refuse(tmp_path, extra):
    body = BASE + extra
    assert list(validator().iter_errors(yaml.safe_load(body))), f"the schema accepts {extra!r}"
    path = tmp_path / "deid.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=r"deid\.yaml:\d+: "):
        load_config(path)


def test_schema_and_deid_both_accept_every_setting(tmp_path):
    body = BASE + (
        "    engine: postgresql\n    clone: aurora\n    retention: 0\n    staging_roles: [qa]\n"
        "    migrations: {sql: m}\n    validation: {pii_scan_rows: all, search_production: false}\n"
        "    aurora: {cluster: prod-a, hosted_zone_id: Z1, record_name: a.example, poll_seconds: 0.5}\n"
        "    preview: {allowed: [alice, 'group:dba']}\n"
        "records: {dir: runs, keep_days: 0, s3: {bucket: b, sse: 'aws:kms', kms_key_id: k}}\n"
    )
    assert not [e.message for e in validator().iter_errors(yaml.safe_load(body))]
    path = tmp_path / "deid.yaml"
    path.write_text(body)
    config = load_config(path)
    database = config.database("a")
    assert database.validation.pii_scan_rows is None and database.server_copies.poll_seconds == 0.5
    assert database.preview.admits("bob", ["dba"]) and not config.preview.admits("alice", [])
    assert config.records.keep_days == 0 and config.records.s3.kms_key_id == "k"


def test_rules_schema_command_writes_both(tmp_path):
    (tmp_path / "policies").symlink_to(ROOT / "rules" / "policies")
    written = schemas.write(tmp_path / "rules.schema.json")
    assert [p.name for p in written] == ["rules.schema.json", "deid.schema.json", "record.schema.json"]
    assert written[1].read_text() == COMMITTED.read_text()
