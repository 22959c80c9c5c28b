"""How long run records live: `records.keep_days` in deid.yaml, applied locally after every saved run and in
S3 by a bucket lifecycle rule (`deid records-lifecycle`).

Locally, every file of a run (its record, report, metrics and any file beside them named after the run)
goes once the run started more than keep_days before the newest run of its database. Counting from the
newest run rather than from the clock means a pipeline that stopped running keeps its history until it runs
again. The newest run that published a copy always stays: `deid status` reads it to describe what staging
serves, however old it is.

In S3, deid does not delete objects itself: the bucket expires them. The rule is scoped to deid's prefix
and named `deid-records`, and applying it keeps every other rule of the bucket, so a bucket shared with
other data keeps its own lifecycle. The S3 rule cannot see which run published the staging copy, so a copy
older than keep_days loses its uploaded record there (the local one stays).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deid.records.config import RecordsConfig, S3Target
from deid.records.store import METRICS, base_name

log = logging.getLogger("deid.records")
RULE_ID = "deid-records"


def prune(directory: Path, database: str, keep_days: int) -> list[Path]:
    """Delete the files of `database`'s runs started more than `keep_days` before its newest run; return
    what was deleted. keep_days 0 keeps everything; the newest published run always stays."""
    if keep_days <= 0:
        return []
    runs = _runs(directory / database, database)
    if not runs:
        return []
    newest = max(runs, key=lambda run: run[0])
    cutoff = newest[0] - timedelta(days=keep_days)
    published = [run for run in runs if run[2] == "published"]
    keep = {newest[1]} | ({max(published, key=lambda run: run[0])[1]} if published else set())
    deleted = []
    for started, name, _outcome in runs:
        if name in keep or started >= cutoff:
            continue
        files = [*(directory / database).glob(f"{name}.*")]
        files.append(directory / METRICS / f"database={database}" / f"{name}.parquet")
        for path in files:
            try:
                path.unlink()
                deleted.append(path)
            except FileNotFoundError:
                pass
    if deleted:
        log.info("deleted %d files of runs of %s started over %d days ago", len(deleted), database, keep_days)
    return deleted


def _runs(folder: Path, database: str) -> list[tuple[datetime, str, str]]:
    """(started, base name, outcome) of each readable record; unreadable ones are never touched."""
    found = []
    for path in folder.glob("*.json"):
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict):
                continue
            started = datetime.fromisoformat(str(record["started_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if record.get("database") != database or base_name(record) != path.stem:
            continue
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        found.append((started, path.stem, str(record.get("outcome"))))
    return found


def lifecycle_rule(records: RecordsConfig) -> dict[str, Any]:
    """The S3 lifecycle rule that expires deid's uploaded files after keep_days."""
    target = _target(records)
    prefix = target.prefix.strip("/")
    return {
        "ID": RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": f"{prefix}/" if prefix else ""},
        "Expiration": {"Days": records.keep_days},
    }


def apply_lifecycle(records: RecordsConfig) -> list[dict[str, Any]]:
    """Put `lifecycle_rule` on the bucket, replacing an earlier deid rule and keeping every other rule.

    Returns the bucket's rules as put. Errors are boto3's own (the caller reports them as transient or as
    configuration, by their code).
    """
    import boto3
    from botocore.exceptions import ClientError

    target = _target(records)
    client = boto3.client("s3", region_name=target.region, endpoint_url=target.endpoint_url)
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=target.bucket)["Rules"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    rules = [rule for rule in rules if rule.get("ID") != RULE_ID] + [lifecycle_rule(records)]
    client.put_bucket_lifecycle_configuration(Bucket=target.bucket, LifecycleConfiguration={"Rules": rules})
    return rules


def _target(records: RecordsConfig) -> S3Target:
    from deid.errors import ConfigError

    if records.s3 is None:
        raise ConfigError("deid.yaml has no records.s3: there is no bucket to set a lifecycle on")
    if records.keep_days <= 0:
        raise ConfigError(
            "records.keep_days is 0 (keep every run): an S3 rule cannot expire nothing; "
            "set keep_days in deid.yaml, or leave the bucket without a deid rule"
        )
    return records.s3
