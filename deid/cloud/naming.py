"""Identifiers of deid's clones and the tags that mark them as deid's.

A clone's identifier is readable (the source, the logical date) and unique per run (a short digest of the run
id), so a retried task finds the clone it started and a rerun of a published date gets a new one. Later runs
find their clones by tag, never by the shape of a name: a cluster someone named `x-deid-...` by hand is not
deid's.

RDS identifiers: 1 to 63 letters, digits or hyphens, a letter first, no two hyphens in a row, no hyphen last;
RDS stores them in lower case.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping

from deid.errors import ConfigError

MAX_IDENTIFIER = 63
INSTANCE_SUFFIX = "-1"  # the one instance in an Aurora clone: <clone id>-1
MARK = "deid"

TAG_MANAGED = "deid:managed"
TAG_SOURCE = "deid:source"
TAG_LOGICAL_DATE = "deid:logical-date"
TAG_RUN_ID = "deid:run-id"
TAG_RESTORE_TYPE = "deid:restore-type"
TAG_DATABASE = "deid:database"  # the database of deid.yaml the clone is for (several may share a source)

_VALID = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_TAG_VALUE_UNSAFE = re.compile(r"[^\w .:/=+\-@]", re.ASCII)  # what AWS accepts in a tag value
MAX_TAG_VALUE = 256


def check_identifier(name: str, what: str = "identifier") -> str:
    """`name` if RDS accepts it as an identifier, else a ConfigError saying which rule it breaks."""
    if not 1 <= len(name) <= MAX_IDENTIFIER:
        raise ConfigError(f"{what} '{name}' has {len(name)} characters: RDS allows 1 to {MAX_IDENTIFIER}")
    if not _VALID.fullmatch(name):
        raise ConfigError(
            f"{what} '{name}' is not an RDS identifier: it must start with a letter and hold only lower-case "
            "letters, digits and single hyphens, with no hyphen at the end"
        )
    return name


def clone_identifier(
    source: str, logical_date: dt.date, run_id: str, room: int = 0, database: str | None = None
) -> str:
    """<source>-deid-<YYYYMMDD>-<6 hex of the run id>, the source cut so the whole fits in 63 - `room`
    characters (`room` keeps space for a suffix such as the instance's). With `database` (deid.yaml's name),
    the hex digests it too: the DAGs of two databases on one source share their Airflow run ids."""
    keyed = run_id if database is None else f"{database}\n{run_id}"
    tail = f"-{MARK}-{logical_date:%Y%m%d}-{hashlib.sha256(keyed.encode()).hexdigest()[:6]}"
    head = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")
    head = re.sub(r"^[^a-z]+", "", head) or "db"  # a letter first
    head = head[: MAX_IDENTIFIER - room - len(tail)].rstrip("-")
    return check_identifier(head + tail, "clone identifier")


def instance_identifier(clone_id: str) -> str:
    """The identifier of the one instance deid puts in an Aurora clone."""
    return check_identifier(clone_id + INSTANCE_SUFFIX, "instance identifier")


def tag_value(text: str) -> str:
    """`text` as AWS accepts it in a tag value: unsafe characters as '_', at most 256 characters."""
    return _TAG_VALUE_UNSAFE.sub("_", text)[:MAX_TAG_VALUE]


def clone_tags(
    source: str, logical_date: dt.date, run_id: str, restore_type: str, database: str | None = None
) -> list[dict[str, str]]:
    """The tags that make a clone deid's, in the form the RDS API takes (`database`: deid.yaml's name of
    the database the clone is for, by which later steps find it)."""
    tags = {
        TAG_MANAGED: "true",
        TAG_SOURCE: source,
        TAG_LOGICAL_DATE: logical_date.isoformat(),
        TAG_RUN_ID: tag_value(run_id),
        TAG_RESTORE_TYPE: restore_type,
    }
    if database is not None:
        tags[TAG_DATABASE] = tag_value(database)
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tags_of(described: Mapping) -> dict[str, str]:
    """The tags of a described RDS resource (its TagList) as a dict."""
    return {t["Key"]: t.get("Value", "") for t in described.get("TagList") or ()}


def is_deids(described: Mapping, source: str | None = None) -> bool:
    """Whether a described cluster or instance carries deid's tags (for `source`, when given)."""
    tags = tags_of(described)
    return tags.get(TAG_MANAGED) == "true" and (source is None or tags.get(TAG_SOURCE) == source)


def same_run(
    described: Mapping, source: str, logical_date: dt.date, run_id: str, database: str | None = None
) -> bool:
    """Whether a described clone is the one this run (source, date, run id, database) made."""
    tags = tags_of(described)
    return (
        is_deids(described, source)
        and tags.get(TAG_LOGICAL_DATE) == logical_date.isoformat()
        and tags.get(TAG_RUN_ID) == tag_value(run_id)
        and (database is None or tags.get(TAG_DATABASE) == tag_value(database))
    )


def newest_first(described: Iterable[Mapping], created_key: str) -> list[Mapping]:
    """deid's clones ordered newest first: by logical date, then by creation time (`created_key`)."""
    far_past = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(
        described,
        key=lambda d: (tags_of(d).get(TAG_LOGICAL_DATE, ""), d.get(created_key) or far_past),
        reverse=True,
    )


def end_of_logical_date(logical_date: dt.date) -> dt.datetime:
    """The moment a backfill of `logical_date` restores: midnight UTC after the date, so the whole day is
    in, the same whenever it runs (deid.cloud.points says which runs are backfills, and why this moment)."""
    return dt.datetime.combine(logical_date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def iso_utc(moment: dt.datetime) -> str:
    """`moment` as people read it in messages: UTC, to the second (2026-12-04T00:00:00Z)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
