"""The databases deid keeps on a staging server for one staging name, and the facts stored on each.

For a staging name S, deid owns exactly three kinds of database: S itself (the published copy), S__YYYYMMDD
(kept copies, named by the logical date they were built for) and S__work_YYYYMMDD (working copies). Names are
matched in Python with exact patterns, never with LIKE, whose `_` is a wildcard.

The facts live in the copy's own note, as JSON (where the engine keeps it: a database comment, a table), so
they travel with the copy through every rename and need no bookkeeping table that could disagree with the
catalog. What is engine specific (listing, closing, renaming, dropping) is the backend's CopyStore. They are
deid's facts only (dates, digests, the steps that finished, sequence offsets; see steps/state.py):
`set_metadata` refuses anything else, so no production value can end up there.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from deid import rawsql
from deid.backends import CopyStore, backend_for
from deid.db import backend_of, engine
from deid.errors import ConfigError, TerminalError
from deid.steps.context import KEPT_MARK, WORK_MARK, work_name
from deid.steps.state import FORMAT, RUN_ONLY, CopyState, checked, parse_state

# The longest suffix deid adds to a staging name; an engine may silently truncate a longer name.
_LONGEST_SUFFIX = len(work_name("", dt.date(2000, 1, 1)))


@dataclass(frozen=True)
class Copy:
    """One database deid manages. `role` comes from the name; `logical_date` from the name, or for the
    published copy (whose name carries no date) from its metadata; None when it has no deid metadata."""

    name: str
    role: str  # "published" | "kept" | "work"
    logical_date: dt.date | None
    allow_connections: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> CopyState | None:
        """The copy's own state (stamps, holder, ...); None when it has none deid can read."""
        return parse_state(self.metadata)

    def as_dict(self) -> dict[str, Any]:
        # the schema the copy was cloned with is for deid's steps, not for people reading `deid status`
        metadata = {k: v for k, v in self.metadata.items() if k not in RUN_ONLY}
        return {
            "name": self.name,
            "logical_date": self.logical_date.isoformat() if self.logical_date else None,
            "allow_connections": self.allow_connections,
            "metadata": metadata,
        }


def check_staging_name(staging_name: str, server_url: str) -> None:
    """ConfigError when the derived names would exceed the longest name the staging server's engine keeps
    whole (Capabilities.max_identifier_bytes): a cut name would be another copy's, or none."""
    backend = backend_of(server_url)
    most = backend.capabilities.max_identifier_bytes
    longest = len(staging_name.encode()) + _LONGEST_SUFFIX
    if not staging_name or longest > most:
        raise ConfigError(
            f"staging name '{staging_name}' must be 1 to {most - _LONGEST_SUFFIX} bytes long: deid adds up "
            f"to {_LONGEST_SUFFIX} characters (e.g. {work_name('', dt.date(2026, 1, 1))}) and {backend.name} "
            f"keeps names of at most {most} bytes"
        )


# --- the staging server's maintenance connection ---------------------------------------------------------


@contextmanager
def admin(staging_server_url: str) -> Iterator[sa.Connection]:
    """An autocommit connection to the staging server's maintenance database, closed afterwards.

    Autocommit because creating and dropping databases may not run in a transaction block; the one place
    that needs a transaction (the rename swap) spells it with `transaction`. No pool: a leftover pooled
    session on a copy would block its rename or drop.
    """
    eng = engine(staging_server_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as connection:
            yield connection
    finally:
        eng.dispose()


@contextmanager
def transaction(connection: sa.Connection) -> Iterator[None]:
    """One transaction on an autocommit connection, the engine's way: everything in it happens, or nothing
    (where the engine's DDL is transactional; Capabilities.transactional_ddl)."""
    with store(connection).transaction(connection):
        yield


def execute(connection: sa.Connection, statement: str) -> None:
    """Run one statement without parameters (a `%` in a quoted database name stays a `%`)."""
    rawsql.execute(connection, statement)


def store(connection: sa.Connection) -> CopyStore:
    """The copies of the engine `connection` speaks to."""
    return backend_for(connection.dialect.name).copy_store()


def exists(connection: sa.Connection, database: str) -> bool:
    return store(connection).exists(connection, database)


def set_allow_connections(connection: sa.Connection, database: str, allow: bool) -> None:
    store(connection).set_allow_connections(connection, database, allow)


def terminate_sessions(connection: sa.Connection, database: str) -> int:
    """End every other session on `database`; returns how many.

    Block new connections first (set_allow_connections), or clients may reconnect in between.
    """
    return store(connection).terminate_sessions(connection, database)


def drop_database(connection: sa.Connection, database: str) -> bool:
    """Drop `database` after ending its sessions; False when it did not exist."""
    if not exists(connection, database):
        return False
    set_allow_connections(connection, database, False)
    terminate_sessions(connection, database)
    store(connection).drop(connection, database)
    return True


# --- metadata ----------------------------------------------------------------------------------------------


def new_metadata(database: str, logical_date: dt.date, state: str = "work") -> dict[str, Any]:
    return {"deid": FORMAT, "database": database, "logical_date": logical_date.isoformat(), "state": state}


def parse_metadata(comment: str | None) -> dict[str, Any]:
    """The deid facts in a database comment; {} when the comment is absent or not deid's."""
    try:
        data = json.loads(comment or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) and data.get("deid") == FORMAT else {}


def set_metadata(connection: sa.Connection, database: str, metadata: Mapping[str, Any]) -> None:
    """Replace the deid facts stored on `database` (transactional: part of the caller's transaction).

    The facts are checked against deid's state model first (steps/state.py): anything but deid's own facts
    is refused, so no production value can end up there."""
    store(connection).write_note(connection, database, checked(database, metadata).as_json())


def read_metadata(connection: sa.Connection, database: str) -> dict[str, Any]:
    return parse_metadata(store(connection).read_note(connection, database))


def update_metadata(staging_server_url: str, database: str, **facts: Any) -> dict[str, Any]:
    """Merge `facts` (e.g. rules_digest=..., offsets={...}) into a copy's metadata; returns the result.

    For steps that run in another process than publish (Airflow tasks), so their facts reach the record.
    """
    with admin(staging_server_url) as connection:
        merged = {**read_metadata(connection, database), **facts}
        set_metadata(connection, database, merged)
    return merged


# --- listing -----------------------------------------------------------------------------------------------

_ROLE_ORDER = {"work": 2, "published": 1, "kept": 0}  # same date: the newest build first


def list_copies(staging_server_url: str, staging_name: str) -> list[Copy]:
    """Every copy deid manages for `staging_name`, newest logical date first."""
    with admin(staging_server_url) as connection:
        return copies_on(connection, staging_name)


def copies_on(connection: sa.Connection, staging_name: str) -> list[Copy]:
    rows = store(connection).databases(connection, staging_name, staging_name + KEPT_MARK)
    # S__work_YYYYMMDD (group 1 set) or S__YYYYMMDD
    marks = f"(?:({re.escape(WORK_MARK)})|{re.escape(KEPT_MARK)})"
    pattern = re.compile(rf"{re.escape(staging_name)}{marks}(\d{{8}})")
    found = []
    for name, allow, comment in rows:
        metadata = parse_metadata(comment)
        if name == staging_name:
            role, day = "published", _date(metadata.get("logical_date"), "%Y-%m-%d")
        elif match := pattern.fullmatch(name):
            role, day = ("work" if match[1] else "kept"), _date(match[2], "%Y%m%d")
            if day is None:
                continue  # digits that are no date: not a name deid made
        else:
            continue  # another staging name that merely starts like this one
        found.append(Copy(name, role, day, bool(allow), metadata))
    return sorted(found, key=lambda c: (c.logical_date or dt.date.min, _ROLE_ORDER[c.role]), reverse=True)


def check_owned(copies: list[Copy], database: str, staging_name: str) -> None:
    """TerminalError when copies under `staging_name` belong to another database (their metadata says
    which): two databases sharing a staging name on one server, through two connection names or two
    deployments, would replace each other's published copy and prune each other's kept ones. deid.yaml
    refuses the plain case when it is read; this is the check on the server itself."""
    others = sorted(c.name for c in copies if c.metadata.get("database") not in (None, database))
    if others:
        owners = sorted({str(c.metadata["database"]) for c in copies if c.name in others})
        raise TerminalError(
            f"{staging_name} on the staging server holds copies of database {', '.join(owners)} "
            f"({', '.join(others)}), not of {database}: each would replace the other's copies. Give "
            f"databases.{database} a staging_name of its own in deid.yaml; if it is {owners[0]} renamed, "
            "drop or rename those copies first"
        )


def _date(text: Any, form: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(text), form).date()
    except ValueError:
        return None


def status(staging_server_url: str, staging_name: str) -> dict[str, Any]:
    """What `deid status` shows: the published copy and its metadata, kept and leftover working copies."""
    copies = list_copies(staging_server_url, staging_name)
    published = next((c for c in copies if c.role == "published"), None)
    return {
        "staging_name": staging_name,
        "published": published.as_dict() if published else None,
        "kept": [c.as_dict() for c in copies if c.role == "kept"],
        "work": [c.as_dict() for c in copies if c.role == "work"],
    }
