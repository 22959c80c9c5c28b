"""Publish a clone: point the staging name (a Route 53 CNAME) at the clone's endpoint.

Staging users connect to a name of their own (`learners-staging.db.example.internal`), never to a clone's
endpoint. Publishing UPSERTs that name's CNAME to the new clone in one Route 53 change, with a short TTL, and
waits until Route 53 reports it INSYNC; new connections reach the new clone once resolvers drop the old
answer (the TTL), while open sessions stay on the previous clone, which retention keeps. `point_name`
returns what the name pointed at before, so rollback is the same call with that target.
"""

from __future__ import annotations

import time
from typing import Any

from deid.cloud.awserrors import CloudError, aws
from deid.cloud.results import Pointing
from deid.cloud.waiting import wait_for

TTL_SECONDS = 60
TIMEOUT_SECONDS = 300.0  # Route 53 applies a change to its name servers within about a minute
POLL_SECONDS = 10.0


def _same(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def read_record(route53: Any, zone_id: str, name: str) -> dict | None:
    """The record set called `name` in the zone (any type), or None."""
    with aws("reading record", f"'{name}' in hosted zone '{zone_id}'"):
        found = route53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=name, MaxItems="10")
    # the listing starts at `name` and runs on through the zone in order: keep only `name` itself
    records = [r for r in found["ResourceRecordSets"] if _same(r["Name"], name)]
    return records[0] if records else None


def current_target(route53: Any, zone_id: str, name: str) -> str | None:
    """What the CNAME `name` points at now (no trailing dot), or None when there is no such record.
    A record of another type under the name is an error: deid would not know what publishing replaces."""
    record = read_record(route53, zone_id, name)
    if record is None:
        return None
    values = [v["Value"] for v in record.get("ResourceRecords") or ()]
    if record["Type"] != "CNAME" or "AliasTarget" in record or len(values) != 1:
        raise CloudError(
            f"'{name}' in hosted zone '{zone_id}' is a {record['Type']} record"
            f"{' (an alias)' if 'AliasTarget' in record else ''}, not the CNAME deid publishes with. Fix: "
            "delete it, or configure another name for the staging copy."
        )
    return values[0].rstrip(".")


def point_name(
    route53: Any,
    zone_id: str,
    name: str,
    target: str,
    *,
    ttl: int = TTL_SECONDS,
    timeout_seconds: float = TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> Pointing:
    """Point the CNAME `name` at `target` (a clone's endpoint host) and wait until Route 53 has applied it.

    Returns the previous target too: rollback is `point_name(..., previous)`. Pointing a name at what it
    already points at changes nothing.
    """
    began = time.monotonic()
    previous = current_target(route53, zone_id, name)
    if previous is not None and _same(previous, target):
        return Pointing(zone_id=zone_id, name=name, target=target, previous=previous, ttl=ttl)
    change = {
        "Comment": f"deid: {name} -> {target}",
        "Changes": [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": name,
                    "Type": "CNAME",
                    "TTL": ttl,
                    "ResourceRecords": [{"Value": target}],
                },
            }
        ],
    }
    with aws("pointing", f"'{name}' at '{target}' in hosted zone '{zone_id}'"):
        submitted = route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=change)
    change_id = submitted["ChangeInfo"]["Id"]
    wait_for(
        route53,
        "resource_record_sets_changed",
        what=f"Route 53 change {change_id} ('{name}' -> '{target}')",
        timeout_seconds=timeout_seconds,
        poll_seconds=poll_seconds,
        fix="the change is submitted and Route 53 applies it on its own; see `aws route53 get-change`",
        Id=change_id,
    )
    return Pointing(
        zone_id=zone_id,
        name=name,
        target=target,
        previous=previous,
        ttl=ttl,
        change_id=change_id,
        seconds=round(time.monotonic() - began, 3),
    )
