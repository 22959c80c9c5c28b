"""The failure alert: one log line naming the database, the step and the reason, and an optional webhook.

The line is the task's last word in its log and what an on-call person reads first, so it is one line:
the first line of the reason, with a pointer to the log when there is more (a rule error lists every
problem). When the Airflow variable `deid_alert_webhook` holds a URL, the same facts are POSTed there as
JSON, with a `text` field that chat tools (Slack, Mattermost, Teams workflows) show as is.

The webhook leaves the production security domain, so it carries deid's own error messages only: those name
files, tables and columns, never values (deid.errors). Any other exception is reported by its type alone.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping
from typing import Any

from deid.errors import DeidError

log = logging.getLogger("deid.airflow.alerts")

WEBHOOK_VARIABLE = "deid_alert_webhook"
WEBHOOK_TIMEOUT = 10  # seconds: an alert must not hold a worker slot for long


class FailureAlert:
    """on_failure_callback of every task of one database's DAG."""

    def __init__(self, database: str):
        self.database = database

    def __call__(self, context: Mapping[str, Any]) -> None:
        alert = failure_facts(self.database, context)
        log.error(alert["text"])
        url = _webhook_url()
        if url:
            post_json(url, alert)


def failure_facts(database: str, context: Mapping[str, Any]) -> dict[str, Any]:
    from deid_airflow.params import run_date

    ti = context["ti"]
    step = ti.task_id
    label = getattr(ti, "rendered_map_index", None)
    if label:
        step += f"[{label}]"
    try:
        day = run_date(context).isoformat()
    except Exception:  # the alert must not fail on a bad date: that may be the very reason
        day = "?"
    reason, more = _reason(context.get("exception"))
    text = f"deid: staging refresh of {database} failed at {step} (logical date {day}): {reason}"
    if more:
        text += " (more in the task log)"
    return {
        "text": text,
        "database": database,
        "step": step,
        "logical_date": day,
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "try_number": ti.try_number,
        "reason": reason,
    }


def _reason(exception: BaseException | None) -> tuple[str, bool]:
    """The first line of deid's message, and whether there is more; for other exceptions, their type."""
    error = exception
    while error is not None and not isinstance(error, DeidError):
        error = error.__cause__
    if error is None:
        while exception is not None and exception.__cause__ is not None:
            exception = exception.__cause__  # the original, not the AirflowFailException around it
        kind = type(exception).__name__ if exception else "no exception recorded"
        return f"unexpected {kind} (a bug in deid or its environment)", True
    lines = [line for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    return lines[0], len(lines) > 1


def _webhook_url() -> str | None:
    from airflow.sdk import Variable

    try:
        return Variable.get(WEBHOOK_VARIABLE, default=None)
    except Exception as error:  # no alert is worth failing the callback over
        log.warning("deid: could not read variable %s (%s)", WEBHOOK_VARIABLE, type(error).__name__)
        return None


def post_json(url: str, payload: Mapping[str, Any]) -> bool:
    """POST `payload` as JSON; False (with a warning naming the reason, not the URL) when it fails."""
    if not url.startswith(("https://", "http://")):
        log.warning("deid: the failure webhook (%s) is not an http(s) URL; nothing sent", WEBHOOK_VARIABLE)
        return False
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            response.read()
        return True
    except Exception as error:  # the URL may hold a token: it is not logged
        log.warning("deid: the failure webhook (%s) failed: %s", WEBHOOK_VARIABLE, type(error).__name__)
        return False
