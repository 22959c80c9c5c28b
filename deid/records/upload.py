"""Upload a run's files to S3 with boto3, server-side encrypted; a failure is reported, never raised.

Records and reports describe production databases (names, counts, offsets), so they are encrypted at rest
(SSE-S3 or SSE-KMS, never off). The client gives up quickly (short timeouts, three attempts): the run is
done by the time it uploads, and a slow or unreachable bucket must not hold a worker for long.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deid.records.config import S3Target

CONTENT_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
}


def upload(files: Mapping[str, str], directory: Path, target: S3Target) -> dict[str, Any]:
    """Upload `files` (kind -> path relative to `directory`) under target's prefix.

    Returns {"ok", "where", "keys", "error"}: the keys uploaded, and on failure the reason (the S3 error
    code, or the kind of network failure) with what was uploaded before it.
    """
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError

    done: list[str] = []
    outcome: dict[str, Any] = {"ok": False, "where": target.where(), "keys": done, "error": None}
    extra = {"ServerSideEncryption": target.sse}
    if target.kms_key_id:
        extra["SSEKMSKeyId"] = target.kms_key_id
    try:
        client = boto3.client(
            "s3",
            region_name=target.region,
            endpoint_url=target.endpoint_url,
            config=BotoConfig(
                connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
            ),
        )
        for relative in files.values():
            key = target.key(relative)
            kind = CONTENT_TYPES.get(Path(relative).suffix, "application/octet-stream")
            # put_object, not upload_file: the files are small, and its errors are plain ClientErrors
            body = (directory / relative).read_bytes()
            client.put_object(Bucket=target.bucket, Key=key, Body=body, ContentType=kind, **extra)
            done.append(key)
    except ClientError as error:
        details = error.response.get("Error", {})
        outcome["error"] = f"{details.get('Code', 'error')} ({details.get('Message', '')})".replace(" ()", "")
    except (BotoCoreError, OSError) as error:
        outcome["error"] = f"{type(error).__name__}: {error}"
    else:
        outcome["ok"] = True
    return outcome
