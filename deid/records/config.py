"""deid.yaml's `records:` section: where run records, reports and metrics go, and the optional S3 copy.

    records:
      dir: records                  # relative to deid.yaml; $DEID_RECORDS_DIR overrides it
      keep_days: 400                # runs started longer ago are deleted (default 400; 0: keep every run)
      s3:                           # optional: every run's files are also uploaded here
        bucket: acme-deid-records
        prefix: staging-refresh/    # default: none
        region: eu-west-1           # default: boto3's own resolution
        sse: aws:kms                # AES256 (default) or aws:kms; server-side encryption is always on
        kms_key_id: alias/deid      # with aws:kms only; default: the bucket's AWS-managed key
        endpoint_url: https://...   # an S3-compatible store (MinIO, Ceph); default: AWS

Credentials never live here: boto3 finds them as usual (environment, profile, instance or pod role).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from deid.errors import Problem

RECORDS_KEYS = ("dir", "keep_days", "s3")
S3_KEYS = ("bucket", "prefix", "region", "sse", "kms_key_id", "endpoint_url")
SSE_MODES = ("AES256", "aws:kms")
DEFAULT_DIR = "records"
# Longer than a year, so that last year's run of the same day is there to compare with; records are small
# (tens of KB a run), so the point of pruning is that nothing grows forever, not disk space.
DEFAULT_KEEP_DAYS = 400
DIR_VARIABLE = "DEID_RECORDS_DIR"


@dataclass(frozen=True)
class S3Target:
    bucket: str
    prefix: str = ""
    region: str | None = None
    sse: str = "AES256"
    kms_key_id: str | None = None
    endpoint_url: str | None = None

    def key(self, relative: str) -> str:
        """The object key of a file at `relative` (a path under the records dir, with '/')."""
        prefix = self.prefix.strip("/")
        return f"{prefix}/{relative}" if prefix else relative

    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}"


@dataclass(frozen=True)
class RecordsConfig:
    dir: str = DEFAULT_DIR  # as written; resolved against deid.yaml's folder by `directory`
    s3: S3Target | None = None
    keep_days: int = DEFAULT_KEEP_DAYS  # 0: never prune

    def directory(self, root: Path) -> Path:
        return Path(os.environ.get(DIR_VARIABLE) or root / self.dir)


def parse_records(source, spec) -> tuple[RecordsConfig, list[Problem]]:
    """The `records:` section of deid.yaml (`source`: its yamlsrc.Source, for line numbers)."""
    path = ("records",)
    if spec is None:
        return RecordsConfig(), []
    if not isinstance(spec, dict):
        return RecordsConfig(), [
            source.problem(path, "records must be a mapping", "for example records: {dir: records}")
        ]
    problems = source.unknown_keys(path, spec, RECORDS_KEYS, where="records")
    folder = spec.get("dir", DEFAULT_DIR)
    if not isinstance(folder, str) or not folder:
        problems.append(
            source.problem((*path, "dir"), "records.dir must be a folder name", "e.g. dir: records")
        )
        folder = DEFAULT_DIR
    keep_days = spec.get("keep_days", DEFAULT_KEEP_DAYS)
    if isinstance(keep_days, bool) or not isinstance(keep_days, int) or keep_days < 0:
        problems.append(
            source.problem(
                (*path, "keep_days"),
                "records.keep_days must be a whole number of days",
                f"e.g. keep_days: {DEFAULT_KEEP_DAYS}, or keep_days: 0 to keep every run's record",
            )
        )
        keep_days = DEFAULT_KEEP_DAYS
    s3 = _s3(source, (*path, "s3"), spec.get("s3"), problems)
    return RecordsConfig(dir=folder, s3=s3, keep_days=keep_days), problems


def _s3(source, path, spec, problems: list[Problem]) -> S3Target | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        problems.append(source.problem(path, "records.s3 must be a mapping", "with at least bucket: NAME"))
        return None
    problems += source.unknown_keys(path, spec, S3_KEYS, where="records.s3")
    texts = {key: spec[key] for key in S3_KEYS if key in spec}
    for key, value in texts.items():
        if not isinstance(value, str) or not value:
            problems.append(source.problem((*path, key), f"records.s3.{key} must be text", ""))
    if not isinstance(spec.get("bucket"), str):
        problems.append(source.problem(path, "records.s3 needs a bucket", "add bucket: <bucket name>"))
    sse = spec.get("sse", "AES256")
    if sse not in SSE_MODES:
        problems.append(
            source.problem(
                (*path, "sse"),
                f"records.s3.sse must be one of {', '.join(SSE_MODES)}",
                "server-side encryption cannot be turned off: records describe production databases",
            )
        )
    if "kms_key_id" in spec and sse != "aws:kms":
        problems.append(
            source.problem((*path, "kms_key_id"), "kms_key_id needs sse: aws:kms", "add sse: aws:kms")
        )
    if problems:
        return None
    return S3Target(
        bucket=spec["bucket"],
        prefix=spec.get("prefix", ""),
        region=spec.get("region"),
        sse=sse,
        kms_key_id=spec.get("kms_key_id"),
        endpoint_url=spec.get("endpoint_url"),
    )
