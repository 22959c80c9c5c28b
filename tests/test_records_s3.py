"""deid.records.upload through save_run, against moto's S3 (and KMS) server on 127.0.0.1.

The server is a real HTTP endpoint, so these tests exercise boto3's whole path: signing, encryption headers,
error responses and connection failures.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deid.records.config import RecordsConfig, S3Target
from deid.records.store import relative_paths, save_run
from tests.moto_server import aws_env, endpoint, free_port  # noqa: F401  (aws_env, endpoint: fixtures)
from tests.test_records_store import TABLES, make_record

PREFIX = "deid/nightly/"
CONTENT_TYPES = {
    "record": "application/json",
    "report": "text/html; charset=utf-8",
    "metrics": "application/vnd.apache.parquet",
}


@pytest.fixture
def s3(endpoint: str, aws_env: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3) -> str:
    """An empty bucket of this test's own."""
    name = f"deid-records-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _target(bucket: str, endpoint: str, **kw) -> RecordsConfig:
    return RecordsConfig(
        s3=S3Target(bucket=bucket, prefix=PREFIX, endpoint_url=endpoint, region="us-east-1", **kw)
    )


def _keys(s3, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_save_run_uploads_the_three_files_encrypted_with_their_content_types(
    s3, bucket: str, endpoint: str, tmp_path: Path
):
    """The record, report and metrics land under the prefix, SSE-S3 encrypted and typed; the uploaded
    record is the local one without its `upload` outcome, and the Parquet holds one row per table."""
    record = make_record()
    warnings = save_run(record, _target(bucket, endpoint), tmp_path)

    assert warnings == []
    paths = relative_paths(record)
    expected = {kind: f"{PREFIX}{relative}" for kind, relative in paths.items()}
    assert expected["metrics"] == (
        "deid/nightly/metrics/database=learners/2026-11-28__20261128030000000.parquet"
    )
    assert _keys(s3, bucket) == set(expected.values())
    assert "uploaded" in (tmp_path / paths["report"]).read_text()  # the local report shows the upload

    for kind, key in expected.items():
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256", key
        assert head["ContentType"] == CONTENT_TYPES[kind], key
        if kind == "metrics":  # the local record and report were rewritten since, with the upload's outcome
            assert (
                s3.get_object(Bucket=bucket, Key=key)["Body"].read() == (tmp_path / paths[kind]).read_bytes()
            )

    local = json.loads((tmp_path / paths["record"]).read_text())
    assert local["upload"]["ok"] is True
    assert local["upload"]["error"] is None
    assert sorted(local["upload"]["keys"]) == sorted(expected.values())
    assert local["upload"]["where"] == f"s3://{bucket}/deid/nightly"
    uploaded = json.loads(s3.get_object(Bucket=bucket, Key=expected["record"])["Body"].read())
    assert "upload" not in uploaded
    assert uploaded == {k: v for k, v in local.items() if k != "upload"}

    body = s3.get_object(Bucket=bucket, Key=expected["metrics"])["Body"].read()
    metrics = pq.read_table(pa.BufferReader(body))
    assert metrics.num_rows == len(TABLES)
    assert dict(zip(metrics["table"].to_pylist(), metrics["rows"].to_pylist(), strict=True)) == {
        table: info["rows"] for table, info in TABLES.items()
    }


def test_sse_kms_uses_the_configured_key(s3, bucket: str, endpoint: str, tmp_path: Path):
    """sse: aws:kms with a kms_key_id: every object is KMS-encrypted with that key."""
    import boto3

    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
    key_id = kms.create_key(Description="deid records")["KeyMetadata"]["KeyId"]
    record = make_record()

    assert save_run(record, _target(bucket, endpoint, sse="aws:kms", kms_key_id=key_id), tmp_path) == []

    keys = _keys(s3, bucket)
    assert len(keys) == 3
    for key in keys:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert key_id in head["SSEKMSKeyId"], key


def test_a_missing_bucket_is_a_warning_and_the_local_files_are_kept(s3, endpoint: str, tmp_path: Path):
    """Uploading to a bucket that does not exist does not raise: save_run warns with the s3:// location
    and NoSuchBucket, writes every local file, and records the failure in the record."""
    missing = f"deid-missing-{uuid.uuid4().hex[:12]}"
    record = make_record()

    warnings = save_run(record, _target(missing, endpoint), tmp_path)

    assert len(warnings) == 1
    assert f"s3://{missing}/deid/nightly" in warnings[0]
    assert "NoSuchBucket" in warnings[0]
    paths = relative_paths(record)
    for relative in paths.values():
        assert (tmp_path / relative).is_file(), relative
    local = json.loads((tmp_path / paths["record"]).read_text())
    assert local["upload"]["ok"] is False
    assert "NoSuchBucket" in local["upload"]["error"]
    assert local["upload"]["keys"] == []


def test_an_unreachable_endpoint_is_a_warning_within_bounded_time(aws_env: str, tmp_path: Path):
    """Nothing listens on the endpoint's port: save_run gives up quickly with a warning naming the
    connection failure, and the local record says the upload failed."""
    closed = f"http://127.0.0.1:{free_port()}"
    record = make_record()

    began = time.monotonic()
    warnings = save_run(record, _target("deid-unreachable", closed), tmp_path)
    took = time.monotonic() - began

    assert took < 60
    assert len(warnings) == 1
    assert "s3://deid-unreachable/deid/nightly" in warnings[0]
    assert "EndpointConnectionError" in warnings[0]
    local = json.loads((tmp_path / relative_paths(record)["record"]).read_text())
    assert local["upload"]["ok"] is False
    assert local["upload"]["error"].startswith("EndpointConnectionError")


def test_no_credential_reaches_the_uploaded_or_local_files(
    s3, bucket: str, endpoint: str, aws_env: str, tmp_path: Path
):
    """The AWS credentials boto3 used appear in none of the uploaded objects nor the local files."""
    record = make_record()
    assert save_run(record, _target(bucket, endpoint), tmp_path) == []

    keys = _keys(s3, bucket)
    assert len(keys) == 3
    blobs = [s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys]
    blobs += [path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()]
    for blob in blobs:
        assert aws_env.encode() not in blob
        assert b"AWS_SECRET" not in blob
        assert b"AWS_ACCESS_KEY" not in blob
