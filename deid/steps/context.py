"""What every step of one run needs: the database's settings, the logical date, the resolved connections,
the names of the copies, and the run record the steps add their facts to.

Everything date-dependent derives from `logical_date`, never from the clock, so a rerun or a backfill of the
same date gives the same result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from deid.config import Config, DatabaseConfig, Settings
from deid.db import normalise_url
from deid.steps.state import Holder, now

WORK_MARK = "__work_"
KEPT_MARK = "__"


def work_name(staging_name: str, logical_date: dt.date) -> str:
    """The working copy of `logical_date`: recognisable, never the staging name itself."""
    return f"{staging_name}{WORK_MARK}{logical_date:%Y%m%d}"


def kept_name(staging_name: str, logical_date: dt.date) -> str:
    """A previously published copy, kept for rollback under the logical date it was built for."""
    return f"{staging_name}{KEPT_MARK}{logical_date:%Y%m%d}"


@dataclass
class RunContext:
    config: Config
    database: DatabaseConfig
    logical_date: dt.date
    # URLs may carry passwords: kept out of repr, like the salt, so a logged or rendered context shows neither
    production_url: str = field(repr=False)
    # the staging server's maintenance database (CREATE/ALTER/DROP DATABASE run here)
    staging_server_url: str = field(repr=False)
    salt: str = field(repr=False)
    record: dict[str, Any] = field(default_factory=dict)  # facts for the run record: counts, offsets, timings
    # Rows for these tables only (qualified names); every other table is emptied (see deid.subset). None: all.
    # Read by the snapshot, which notes it on the copy: later steps follow the copy, not this field.
    only_tables: frozenset[str] | None = None
    # Who works on the copy (noted on it from the snapshot on; see deid.lock.check_holder): a CLI command by
    # default, an Airflow run when its operators build the context.
    holder: Holder = field(default_factory=lambda: Holder(via="cli", run_id="cli", since=now()))
    # Publish even when the published copy was built for a later logical date (a backfill's older copy is
    # otherwise only kept for rollback).
    publish_older: bool = False
    # clone: aurora / rds_snapshot: maps a clone's endpoint to the one to dial (a tunnel, a private name; the
    # tests' stand-in), see deid.cloud.endpoints. None: dial the endpoint AWS reports.
    clone_resolver: Any = field(default=None, repr=False)
    # where the copies live when each is a server (steps/places.place_of keeps it here, with tonight's
    # server once found); None for copies that are databases, or until first asked
    server_place: Any = field(default=None, repr=False)

    @classmethod
    def resolve(cls, config: Config, name: str, logical_date: dt.date, settings: Settings) -> RunContext:
        db = config.database(name)
        return cls(
            config=config,
            database=db,
            logical_date=logical_date,
            production_url=settings.connection(db.production),
            staging_server_url=settings.connection(db.staging_server),
            salt=settings.secret(db.salt_secret),
            record={"database": name, "logical_date": logical_date.isoformat()},
        )

    @property
    def staging_name(self) -> str:
        return self.database.staging_name

    @property
    def work_name(self) -> str:
        return work_name(self.staging_name, self.logical_date)

    @property
    def production_database(self) -> str:
        return sa.make_url(self.production_url).database or ""

    @property
    def rules_path(self) -> Path:
        return self.config.rules_path(self.database.name)

    def url_for(self, database: str) -> str:
        """A URL for `database` on the staging server."""
        url = normalise_url(self.staging_server_url).set(database=database)
        return url.render_as_string(hide_password=False)

    @property
    def work_url(self) -> str:
        """The URL of tonight's working copy: a database on the staging server, or a server of its own."""
        from deid.steps.places import place_of

        return place_of(self).work_url(self)
