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
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from deid.yamlmodel import STRICT, problem

DEFAULT_DIR = "records"
# Longer than a year, so that last year's run of the same day is there to compare with; records are small
# (tens of KB a run), so the point of pruning is that nothing grows forever, not disk space.
DEFAULT_KEEP_DAYS = 400
DIR_VARIABLE = "DEID_RECORDS_DIR"
Text = Annotated[str, Field(min_length=1)]


class S3Target(BaseModel):
    """records.s3: every run's files are also uploaded to this bucket."""

    model_config = STRICT

    bucket: Text = Field(description="The bucket's name")
    prefix: str = Field("", description="Prepended to every object key, e.g. staging-refresh/")
    region: Text | None = Field(None, description="The bucket's region (default: boto3's own resolution)")
    sse: Literal["AES256", "aws:kms"] = Field(
        "AES256",
        description="Server-side encryption, which cannot be turned off: records describe production "
        "databases",
    )
    kms_key_id: Text | None = Field(None, description="With sse: aws:kms only (default: the AWS-managed key)")
    endpoint_url: Text | None = Field(None, description="An S3-compatible store (MinIO, Ceph); default: AWS")

    @model_validator(mode="after")
    def _kms_key_needs_kms(self) -> S3Target:
        if self.kms_key_id is not None and self.sse != "aws:kms":
            raise problem("kms_key_id needs sse: aws:kms", "add sse: aws:kms", at="kms_key_id")
        return self

    def key(self, relative: str) -> str:
        """The object key of a file at `relative` (a path under the records dir, with '/')."""
        prefix = self.prefix.strip("/")
        return f"{prefix}/{relative}" if prefix else relative

    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}"


class RecordsConfig(BaseModel):
    """deid.yaml's records: section."""

    model_config = STRICT

    dir: Text = Field(
        DEFAULT_DIR,
        description="The folder of run records, reports and metrics, relative to deid.yaml; "
        f"${DIR_VARIABLE} overrides it",
    )
    s3: S3Target | None = Field(None, description="Every run's files are also uploaded here")
    keep_days: Annotated[int, Field(ge=0)] = Field(
        DEFAULT_KEEP_DAYS,
        description=f"Runs started longer ago are deleted, e.g. keep_days: {DEFAULT_KEEP_DAYS}, or 0 to keep "
        "every run's record",
    )

    def directory(self, root: Path) -> Path:
        return Path(os.environ.get(DIR_VARIABLE) or root / self.dir)
