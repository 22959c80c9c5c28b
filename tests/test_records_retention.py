"""records.keep_days: local runs pruned after each save, S3 expiring them by a lifecycle rule (moto's S3)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from deid.records.config import RecordsConfig, S3Target
from deid.records.retention import RULE_ID, apply_lifecycle, lifecycle_rule, prune
from deid.records.store import read_records, relative_paths, save_run
from tests.moto_server import aws_env, endpoint, free_port  # noqa: F401  (aws_env, endpoint: fixtures)
from tests.test_records_store import make_record


def _save(directory: Path, keep_days: int, day: str, outcome: str = "published") -> dict:
    record = make_record(started_at=f"{day}T03:00:00.000Z", logical_date=day, outcome=outcome)
    assert save_run(record, RecordsConfig(keep_days=keep_days), directory) == []
    return record


def _files(directory: Path, record: dict) -> list[Path]:
    return [directory / path for path in relative_paths(record).values()]


def test_runs_older_than_keep_days_before_the_newest_go_with_all_their_files(tmp_path: Path):
    old = _save(tmp_path, 30, "2026-01-01")
    extra = tmp_path / "learners" / (Path(relative_paths(old)["record"]).stem + ".gx.json")
    extra.write_text("{}")  # a file beside the record, named after the run, goes with it
    edge = _save(tmp_path, 30, "2026-01-20")
    newest = _save(tmp_path, 30, "2026-02-19")  # 30 days after 01-20: that one stays, 01-01 goes
    assert not any(path.exists() for path in [*_files(tmp_path, old), extra])
    assert all(path.exists() for path in [*_files(tmp_path, edge), *_files(tmp_path, newest)])
    assert [r["logical_date"] for r in read_records(tmp_path, "learners")] == ["2026-02-19", "2026-01-20"]


def test_the_newest_published_run_stays_however_old_and_zero_keeps_every_run(tmp_path: Path):
    published = _save(tmp_path, 10, "2026-01-01")
    failed = [_save(tmp_path, 10, f"2026-03-0{day}", outcome="failed") for day in (1, 2)]
    # staging still serves the copy of 01-01: its record stays for deid status; the failures are recent
    assert all(path.exists() for r in (published, *failed) for path in _files(tmp_path, r))
    older = _save(tmp_path, 0, "2025-01-01")
    assert prune(tmp_path, "learners", 0) == []
    assert len(read_records(tmp_path, "learners")) == 4
    prune(tmp_path, "learners", 10)
    assert not any(path.exists() for path in _files(tmp_path, older))
    assert len(read_records(tmp_path, "learners")) == 3


def test_other_databases_and_unreadable_files_are_left_alone(tmp_path: Path):
    other = make_record(started_at="2020-01-01T03:00:00.000Z", logical_date="2020-01-01", database="billing")
    save_run(other, RecordsConfig(keep_days=0), tmp_path)
    (tmp_path / "learners").mkdir(mode=0o700)
    stray = tmp_path / "learners" / "2019-01-01__notes.json"
    stray.write_text("not a record")
    _save(tmp_path, 1, "2026-01-01")
    _save(tmp_path, 1, "2026-06-01")
    assert stray.exists()
    assert all(path.exists() for path in _files(tmp_path, other))


def test_the_lifecycle_rule_is_scoped_to_the_prefix_and_keeps_the_buckets_other_rules(
    endpoint: str, aws_env: str
):
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = f"deid-records-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    theirs = {"ID": "theirs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 7}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [theirs]})
    target = S3Target(bucket=bucket, prefix="deid/nightly/", endpoint_url=endpoint, region="us-east-1")
    apply_lifecycle(RecordsConfig(s3=target, keep_days=90))
    apply_lifecycle(RecordsConfig(s3=target, keep_days=120))  # again, changed: replaced, not added
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules.keys() == {"theirs", RULE_ID}
    assert rules[RULE_ID]["Filter"] == {"Prefix": "deid/nightly/"}
    assert rules[RULE_ID]["Expiration"]["Days"] == 120
    assert rules["theirs"]["Expiration"]["Days"] == 7


def test_the_cli_prints_the_rule_and_refuses_without_a_bucket(tmp_path: Path):
    config = tmp_path / "deid.yaml"
    body = """
        databases:
          learners: {production: prod, staging_server: staging, salt_secret: deid_salt, rules: r.yaml}
        records: {keep_days: 45, s3: {bucket: acme-records, prefix: nightly}}
    """
    config.write_text(textwrap.dedent(body))
    deid = [sys.executable, "-m", "deid.cli", "--config", str(config), "records-lifecycle"]
    shown = subprocess.run(deid, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert '"Days": 45' in shown.stdout and '"Prefix": "nightly/"' in shown.stdout
    config.write_text(textwrap.dedent(body).replace(", s3: {bucket: acme-records, prefix: nightly}", ""))
    refused = subprocess.run(deid, capture_output=True, text=True)
    assert refused.returncode == 3 and "records.s3" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize("bad", ["-1", "ten", "true"])
def test_a_bad_keep_days_names_the_line_and_the_fix(tmp_path: Path, bad: str):
    from deid.config import load_config
    from deid.errors import ConfigError

    config = tmp_path / "deid.yaml"
    config.write_text(
        "databases:\n  learners: {production: p, staging_server: s, salt_secret: x, rules: r.yaml}\n"
        f"records:\n  keep_days: {bad}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_config(str(config))
    assert "deid.yaml:4" in str(error.value) and "keep_days" in str(error.value)


def test_lifecycle_rule_shape():
    rule = lifecycle_rule(RecordsConfig(s3=S3Target(bucket="b"), keep_days=400))
    assert rule == {"ID": RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 400}}
