"""deid.yaml's `clone: aurora` and `clone: rds_snapshot` sections: read into ServerCopies, every mistake an
error naming the file, the line and the fix."""

from __future__ import annotations

import pytest

from deid.cloners import cloner_names
from deid.cloud.settings import ServerCopies
from deid.config import load_config
from deid.errors import ConfigError

BASE = "databases:\n  a:\n    production: p\n    staging_server: s\n    salt_secret: k\n"
AURORA = (
    "    clone: aurora\n"
    "    aurora:\n"
    "      cluster: prod-learners\n"
    "      hosted_zone_id: Z0123456789\n"
    "      record_name: learners-staging.db.example.internal\n"
)


def load(tmp_path, text: str):
    path = tmp_path / "deid.yaml"
    path.write_text(BASE + text)
    return load_config(path), path


def problems(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value)


def test_an_aurora_section_is_read_with_its_defaults_and_overrides(tmp_path):
    config, _ = load(
        tmp_path,
        AURORA + "      region: eu-west-1\n      security_group_ids: [sg-1]\n      poll_seconds: 0.5\n"
        "      warn_at: 12\n",
    )
    copies = config.database("a").server_copies
    assert copies == ServerCopies(
        method="aurora",
        source="prod-learners",
        hosted_zone_id="Z0123456789",
        record_name="learners-staging.db.example.internal",
        region="eu-west-1",
        security_group_ids=("sg-1",),
        poll_seconds=0.5,
        warn_at=12,
    )
    assert copies.ttl == 60 and copies.clone_limit == 15 and copies.timeout_seconds == 3600
    assert copies.backfill_after_hours == 24  # a past date restores its day's end (deid.cloud.points)
    assert config.database("a").clone == "aurora"


def test_copies_that_are_databases_have_no_server_settings(tmp_path):
    config, _ = load(tmp_path, "")
    assert config.database("a").server_copies is None
    assert {"aurora", "rds_snapshot"} <= set(cloner_names("postgresql"))


def test_an_rds_snapshot_section_names_an_instance_and_takes_no_clone_limit(tmp_path):
    text = (
        "    clone: rds_snapshot\n    rds_snapshot:\n      instance: prod-billing\n"
        "      hosted_zone_id: Z1\n      record_name: billing-staging.example\n      clone_limit: 15\n"
    )
    found = problems(tmp_path, text)
    assert "deid.yaml:11: unknown key 'clone_limit' in databases.a.rds_snapshot" in found
    config, _ = load(tmp_path, text.replace("      clone_limit: 15\n", ""))
    assert config.database("a").server_copies.source == "prod-billing"


def test_a_missing_section_or_setting_names_the_line_and_the_fix(tmp_path):
    found = problems(tmp_path, "    clone: aurora\n")
    assert (
        "deid.yaml:6: clone: aurora needs a 'aurora:' section" in found and "fix: aurora: {cluster:" in found
    )
    found = problems(tmp_path, "    clone: aurora\n    aurora:\n      cluster: prod\n")
    assert "a.aurora needs 'hosted_zone_id'" in found and "a.aurora needs 'record_name'" in found
    assert "deid.yaml:7:" in found


def test_mistakes_in_the_section_are_each_named(tmp_path):
    found = problems(
        tmp_path,
        AURORA + "      clustr: x\n      ttl: 0\n      timeout_seconds: soon\n"
        "      security_group_ids: sg-1\n      clone_limit: 15\n      warn_at: 16\n",
    )
    assert "deid.yaml:11: unknown key 'clustr' in databases.a.aurora. Did you mean 'cluster'?" in found
    assert "deid.yaml:12: databases.a.aurora.ttl must be a whole number from 1 to 86400" in found
    assert "deid.yaml:13: databases.a.aurora.timeout_seconds must be a number above 0" in found
    assert "deid.yaml:14: databases.a.aurora.security_group_ids must be a list of text" in found
    found = problems(tmp_path, AURORA + "      backfill_after_hours: -1\n")
    assert "deid.yaml:11: databases.a.aurora.backfill_after_hours must be a number ≥ 0" in found
    found = problems(tmp_path, AURORA + "      warn_at: 16\n")
    assert "deid.yaml:11: warn_at (16) is above clone_limit (15)" in found
    found = problems(tmp_path, AURORA.replace("prod-learners", "Prod_Learners"))
    assert "deid.yaml:8: aurora.cluster 'Prod_Learners' is not an RDS identifier" in found


def test_a_section_for_another_method_is_refused(tmp_path):
    found = problems(tmp_path, "    clone: template\n" + AURORA.split("\n", 1)[1])
    assert (
        "deid.yaml:7: 'aurora:' is read only with clone: aurora, and this database clones with 'template'"
        in (found)
    )
    assert "fix: set clone: aurora, or remove the aurora section" in found
