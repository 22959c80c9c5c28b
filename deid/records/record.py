"""The run record: one JSON document per run, saying what deid did and what it found.

It holds deid's own facts only: names (database, tables, sequences, copies, migrations), counts, seconds,
digests, offsets, and the outcome with deid's error message (which names places, never values; any other
exception is recorded by its type alone). No row value and no secret (salt, password, URL) goes in: the
record is built from the facts the steps put in `ctx.record`, which carry none, and `check_clean` refuses a
record that holds a secret it was given, as the last guard.

Fields (format 1): record_format, deid_version, run_id, via (cli | airflow), database, logical_date,
started_at, finished_at, seconds, outcome (published | kept: older than the published copy, so kept for
rollback | failed | step: one step run with --only),
failed_step, error, rules {file, sha256, git_commit, git_dirty}, schema_hash, clone_method, clone_seconds,
clone_method_detail, clone_extra_bytes, clone_shared (template clones: docs/records.md), subset,
steps {name: {start, seconds}}, tables {table: {rows, seconds, action, sessions or parts}},
row_counts {table: {rows, expected}}, plan {table: rewritten | emptied | untouched}, offsets, migrations,
checks and expectations (each with `checked`, the rows or values it looked at; with waivers: the checks the
rule file waives, each with table, column, check, reason, line, matched and checked counts), published,
kept, replaced (kept names whose older build of that date was dropped), dropped, files, upload; Airflow:
dag_id, run_type (scheduled | manual | backfill | asset_triggered).

Copies that are servers (docs/records.md, "Server copies"): clone_id (cluster, instance or data directory);
aurora and rds_snapshot: clone_restore_type (copy-on-write | full-copy | snapshot), clone_restore_time (UTC,
the moment the copy holds), clone_backfill (the logical date's end restored, not the latest state),
clone_point_reason, clone_available_seconds, clone_aws_seconds {call: seconds}, clone_resumed, clone_count,
clone_limit and clone_warning (Aurora's clone limit); reflink: clone_copy_seconds, clone_start_seconds,
clone_extra_bytes, clone_shared, clone_source_state; from publish: published_clone, dns_change {previous,
seconds}, retention_seconds, publish_warning.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt

from deid.errors import DeidError

RECORD_FORMAT = 1
# facts more than one step adds to, by name: the rebase's offsets, then the sequences migrations created
# (steps/migrate.py). One process's context merges them; a record assembled from separate processes' facts
# (Airflow's tasks) merges them too.
MERGED_FACTS = ("offsets",)
OUTCOMES = ("published", "kept", "failed", "step")


class _Facts(BaseModel):
    # the steps add facts of their own (the docstring lists them; docs/records.md says what each means): the
    # model types the ones every record has and that readers (history, status, reports) rely on
    model_config = ConfigDict(extra="allow")


class RulesFacts(_Facts):
    file: str = Field(description="The rule file, by its path in the repository when it is in git")
    sha256: str | None = Field(description="The sha256 of its bytes (None: unreadable)")
    git_commit: str | None = Field(description="The commit it was last changed in (None: not in git)")
    git_dirty: bool | None = Field(description="The file differs from that commit")


class StepFacts(_Facts):
    start: NonNegativeFloat = Field(description="Seconds from the run's start")
    seconds: NonNegativeFloat = Field(description="How long the step took")


class TableFacts(_Facts):
    rows: NonNegativeInt | None = Field(None, description="Rows the scrub wrote")
    seconds: NonNegativeFloat | None = Field(None, description="Seconds it took")
    action: str = Field(description="What the scrub did to the table (rewritten, rebuilt, untouched, ...)")


class RunRecord(_Facts):
    """A run record (format 1): what one run of deid did and found, one JSON document per run."""

    model_config = ConfigDict(extra="allow", title="deid run record")

    record_format: Literal[1] = Field(description="The record's format")
    deid_version: str
    run_id: str = Field(min_length=1)
    via: Literal["cli", "airflow"]
    database: str = Field(min_length=1, description="The database's name in deid.yaml")
    logical_date: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    seconds: NonNegativeFloat | None = None
    outcome: Literal[OUTCOMES] | None = Field(  # type: ignore[valid-type]
        None,
        description="published | kept (older than the published copy, so kept for rollback) | failed | "
        "step (one step run with --only); none while the run is under way",
    )
    failed_step: str | None = None
    error: str | None = Field(None, description="deid's message (places, never values), or the error's type")
    rules: RulesFacts
    steps: dict[str, StepFacts] = Field(default_factory=dict)
    tables: dict[str, TableFacts] = Field(default_factory=dict)


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def start_record(
    database: str, logical_date: dt.date, rules_path: Path, via: str, run_id: str | None = None
) -> dict[str, Any]:
    """The facts known before the first step: who runs what, for which date, from which rules."""
    started = now_utc()
    return {
        "record_format": RECORD_FORMAT,
        "deid_version": _version(),
        "run_id": run_id or f"{via}-{started[:19].replace('-', '').replace(':', '')}Z",
        "via": via,
        "database": database,
        "logical_date": logical_date.isoformat(),
        "started_at": started,
        "rules": rules_facts(rules_path),
    }


def finish_record(
    record: dict[str, Any],
    outcome: str,
    failed_step: str | None = None,
    error: BaseException | None = None,
) -> dict[str, Any]:
    """Close the record: outcome, the failed step and why, the finish time and total seconds. A record that
    does not fit RunRecord is deid's own mistake: a ValueError names the field."""
    finished = now_utc()
    record.update(outcome=outcome, failed_step=failed_step, error=error_text(error), finished_at=finished)
    started = record.get("started_at")
    if started:
        record["seconds"] = round((_parse(finished) - _parse(started)).total_seconds(), 3)
    RunRecord.model_validate(record)
    return record


def error_text(error: BaseException | None) -> str | None:
    """deid's own message (it names places, never values); anything else by its type only, since a driver's
    or library's message may quote a row."""
    if error is None:
        return None
    if isinstance(error.__cause__, DeidError) and not isinstance(error, DeidError):
        error = error.__cause__  # Airflow's AirflowFailException wraps deid's error
    if isinstance(error, DeidError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return f"{type(error).__name__} (details in the log of the run, not in the record)"


def add_table_result(record: dict[str, Any], table: str, fact: Mapping[str, Any]) -> None:
    """Note what the scrub did to one table (rows, seconds, action). The parts of a split table (facts with
    a `part`, from several tasks) add up into one entry: rows and seconds summed, `parts` counted; the
    table is rebuilt from them (the scrub's finish swaps it in)."""
    tables = record.setdefault("tables", {})
    if "part" not in fact:
        tables[table] = dict(fact)
        return
    entry = tables.setdefault(table, {"rows": 0, "seconds": 0.0, "action": "rebuilt", "parts": 0})
    entry["rows"] += fact["rows"]
    entry["seconds"] = round(entry["seconds"] + fact["seconds"], 3)
    entry["parts"] += 1


def rules_facts(path: Path) -> dict[str, Any]:
    """The rule file's name, the sha256 of its bytes, and the git commit it was last changed in.

    git_dirty: the file differs from that commit (a run from an uncommitted rule change). Both git facts are
    None outside a git checkout or without git.
    """
    facts: dict[str, Any] = {"file": path.name, "sha256": None, "git_commit": None, "git_dirty": None}
    try:
        facts["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return facts
    folder = str(path.resolve().parent)
    commit = _git(folder, "log", "-1", "--format=%H", "--", path.name)
    if commit:
        facts["file"] = _git(folder, "ls-files", "--full-name", "--", path.name) or path.name
        facts["git_commit"] = commit
        facts["git_dirty"] = _git(folder, "status", "--porcelain", "--", path.name) != ""
    return facts


def check_clean(record: Mapping[str, Any], secrets: Iterable[str]) -> None:
    """Refuse a record whose text holds one of `secrets` (salt, key, connection URL or password)."""
    import json

    text = json.dumps(record, default=str)
    for secret in secrets:
        if secret and len(secret) >= 8 and secret in text:  # shorter ones would match innocent words
            raise DeidError("refusing to write a run record that holds a secret (salt, key, URL or password)")


def _git(folder: str, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", folder, *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deid")
    except PackageNotFoundError:
        return "unknown"
