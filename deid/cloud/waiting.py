"""boto3's waiters with a bound in seconds instead of attempts, and errors that say what to do.

A waiter polls every `poll_seconds`; its attempts are as many as fit in `timeout_seconds`, so a clone that
never becomes available costs the task at most that long. Running out of time is transient (the clone may
still be on its way: the task's retry waits for the same clone again); reaching a failure state (the
cluster went to `failed` or `incompatible-parameters`, or is being deleted) is terminal.
"""

from __future__ import annotations

import math
import time
from typing import Any

from deid.cloud.awserrors import CloudError, CloudUnavailable, translate


def waiter_config(timeout_seconds: float, poll_seconds: float) -> dict[str, float | int]:
    """WaiterConfig for a bound of `timeout_seconds`, polling every `poll_seconds`."""
    if timeout_seconds <= 0 or poll_seconds <= 0:
        raise ValueError("timeout_seconds and poll_seconds must be positive")
    return {"Delay": poll_seconds, "MaxAttempts": max(1, math.floor(timeout_seconds / poll_seconds) + 1)}


def wait_for(
    client: Any,
    waiter: str,
    *,
    what: str,
    timeout_seconds: float,
    poll_seconds: float,
    fix: str,
    **params: Any,
) -> float:
    """Wait with boto3's waiter `waiter` (e.g. "db_cluster_available") for `what` (e.g. "Aurora clone
    'x'"); the seconds it took. `fix` says what a person does when the time runs out."""
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError

    began = time.monotonic()
    try:
        client.get_waiter(waiter).wait(**params, WaiterConfig=waiter_config(timeout_seconds, poll_seconds))
    except WaiterError as error:
        reason = str(error.kwargs.get("reason", ""))
        last = error.last_response or {}
        if "Error" in last:  # the poll itself failed (no permission, no such resource)
            code = last["Error"].get("Code", "Unknown")
            said = last["Error"].get("Message", "")
            raise CloudError(f"waiting for {what}: AWS said {code} ({said}). Fix: {fix}.", code) from error
        if "Max attempts exceeded" in reason:
            raise CloudUnavailable(
                f"{what} was not ready within {timeout_seconds:g} s ({_status(last)}). Fix: {fix}."
            ) from error
        raise CloudError(
            f"{what} reached a failure state ({_status(last)}) while deid waited for it. Fix: look at its "
            "events in the RDS console; delete it (deid's retention does) and run the snapshot again."
        ) from error
    except (ClientError, BotoCoreError) as error:
        raise translate(error, "waiting for", what) from error
    return time.monotonic() - began


def _status(response: dict) -> str:
    for key, status_key in (("DBClusters", "Status"), ("DBInstances", "DBInstanceStatus")):
        items = response.get(key)
        if items:
            return f"status {items[0].get(status_key, 'unknown')}"
    if "ChangeInfo" in response:
        return f"change {response['ChangeInfo'].get('Status', 'unknown')}"
    return "no status read"
