"""deid.yaml's settings of a copy that is a server of its own: `clone: aurora` or `clone: rds_snapshot`,
each with a section of the same name.

    clone: aurora
    aurora:
      cluster: prod-learners                      # the source (AWS clones it; deid never connects to it)
      region: eu-west-1                           # default: boto3's own (AWS_REGION, the profile)
      hosted_zone_id: Z0123456789ABCDEFGHIJ       # the Route 53 zone of the staging name
      record_name: learners-staging.db.example.internal   # the CNAME staging users connect to
      ttl: 60                                     # of that CNAME, in seconds
      instance_class: db.r6g.large                # default: the source writer's
      security_group_ids: [sg-0123456789abcdef0]  # default: the source's
      timeout_seconds: 3600                       # bound on each wait for AWS
      poll_seconds: 30
      clone_limit: 15                             # copy-on-write clones per source (Aurora's limit)
      warn_at: 13                                 # the run record warns from this many
      backfill_after_hours: 24                    # a past date restores its day's end (deid.cloud.points)

`rds_snapshot:` takes the same keys, `instance:` instead of `cluster:`, and no clone_limit or warn_at (a
restore from a snapshot counts against no clone limit). The staging connection's user, password and options
are dialled at each clone's endpoint (a clone keeps its source's users); `retention` counts kept clones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deid.cloud import aurora, dns, naming, points
from deid.errors import ConfigError, Problem

METHODS = {"aurora": "cluster", "rds_snapshot": "instance"}  # clone method -> the key naming its source
COMMON_KEYS = (
    "region",
    "hosted_zone_id",
    "record_name",
    "ttl",
    "instance_class",
    "security_group_ids",
    "timeout_seconds",
    "poll_seconds",
    "backfill_after_hours",
)
AURORA_KEYS = ("clone_limit", "warn_at")


@dataclass(frozen=True)
class ServerCopies:
    """Where the copies of one database live when each is a server of its own, and how it is published."""

    method: str  # "aurora" | "rds_snapshot"
    source: str  # the cluster (aurora) or instance (rds_snapshot) identifier
    hosted_zone_id: str
    record_name: str
    region: str | None = None
    ttl: int = dns.TTL_SECONDS
    instance_class: str | None = None
    security_group_ids: tuple[str, ...] = ()
    timeout_seconds: float = aurora.TIMEOUT_SECONDS
    poll_seconds: float = aurora.POLL_SECONDS
    clone_limit: int = aurora.CLONE_LIMIT
    warn_at: int = aurora.WARN_AT
    backfill_after_hours: float = points.BACKFILL_AFTER_HOURS

    def keys(self) -> tuple[str, ...]:
        return (METHODS[self.method], *COMMON_KEYS, *(AURORA_KEYS if self.method == "aurora" else ()))


def parse_server_copies(
    source, path: tuple, spec: dict, clone: str
) -> tuple[ServerCopies | None, list[Problem]]:
    """The section of `clone` (a server-copy method) in the database `spec` at `path`; problems name the
    file, the line and the fix. A section for a method the database does not use is an error too: a setting
    that does nothing would be a setting someone believes in."""
    problems = [
        source.problem(
            (*path, other),
            f"'{other}:' is read only with clone: {other}, and this database clones with '{clone}'",
            f"set clone: {other}, or remove the {other} section",
        )
        for other in METHODS
        if other in spec and other != clone
    ]
    if clone not in METHODS:
        return None, problems
    section = spec.get(clone)
    where = (*path, clone)
    key = METHODS[clone]
    example = (
        f"{clone}: {{{key}: prod-learners, hosted_zone_id: Z..., record_name: learners-staging.example}}"
    )
    if not isinstance(section, dict):
        problems.append(
            source.problem(
                where if clone in spec else (*path, "clone"),
                f"clone: {clone} needs a '{clone}:' section (a mapping)",
                example,
            )
        )
        return None, problems
    allowed = (key, *COMMON_KEYS, *(AURORA_KEYS if clone == "aurora" else ()))
    problems += source.unknown_keys(where, section, allowed, where=f"{path[-1]}.{clone}")
    for required in (key, "hosted_zone_id", "record_name"):
        if not (isinstance(section.get(required), str) and section[required]):
            problems.append(
                source.problem(where, f"{path[-1]}.{clone} needs '{required}' (text)", f"add {required}: ...")
            )
    for text in ("region", "instance_class"):
        if text in section and not (isinstance(section[text], str) and section[text]):
            problems.append(source.problem((*where, text), f"{text} must be text", f"e.g. {text}: ..."))
    if isinstance(section.get(key), str) and section[key]:
        try:
            naming.check_identifier(section[key], f"{clone}.{key}")
        except ConfigError as error:
            problems.append(source.problem((*where, key), str(error), "use the identifier AWS shows"))
    groups = section.get("security_group_ids", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        problems.append(
            source.problem(
                (*where, "security_group_ids"), "security_group_ids must be a list", "[sg-0abc...]"
            )
        )
    numbers = {
        "ttl": (1, 86400, int),
        "timeout_seconds": (0.001, None, float),
        "poll_seconds": (0.001, None, float),
        "clone_limit": (1, None, int),
        "warn_at": (1, None, int),
        "backfill_after_hours": (0, None, float),
    }
    for name, (low, high, kind) in numbers.items():
        if name in section and name in allowed:
            problems += _number(source, (*where, name), name, section[name], low, high, kind)
    if problems:
        return None, problems
    defaults = ServerCopies(method=clone, source="", hosted_zone_id="", record_name="")
    given: dict[str, Any] = {k: section[k] for k in allowed if k in section and k != key}
    if "security_group_ids" in given:
        given["security_group_ids"] = tuple(given["security_group_ids"])
    copies = ServerCopies(**{**defaults.__dict__, **given, "source": section[key]})
    if copies.warn_at > copies.clone_limit:
        problems.append(
            source.problem(
                (*where, "warn_at"),
                f"warn_at ({copies.warn_at}) is above clone_limit ({copies.clone_limit}): it never warns",
                "set warn_at to at most clone_limit, e.g. two below it",
            )
        )
        return None, problems
    return copies, []


def _number(
    source, where: tuple, name: str, value: Any, low: float, high: float | None, kind
) -> list[Problem]:
    fits = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        fits = fits and isinstance(value, int)
    if fits and value >= low and (high is None or value <= high):
        return []
    if high is not None:
        bounds = f"from {low:g} to {high:g}"
    else:
        bounds = "of 0 or more" if low == 0 else "above 0" if low < 1 else f"of at least {low:g}"
    unit = "hours" if name.endswith("_hours") else "seconds"
    what = "a whole number" if kind is int else f"a number of {unit}"
    example = getattr(ServerCopies, name, 1)  # the default
    return [source.problem(where, f"{name} must be {what} {bounds}", f"e.g. {name}: {example:g}")]
