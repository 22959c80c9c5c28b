"""Snapshot strategies whose working copy is a server of its own: `clone: aurora` (an Aurora copy-on-write
clone of the production cluster) and `clone: rds_snapshot` (an RDS instance restored from the production
instance's newest snapshot). AWS makes the copy from its storage: nothing connects to production.

The server is made through the run's ServerPlace (steps/servers.py), which remembers it for the steps after
the snapshot in this process; steps in other processes find it by its tags. The run record gets how it was
made and what it took (steps.servers.record_clone), with the clone count and a warning near Aurora's limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deid.cloners import Cloner
from deid.errors import ConfigError

if TYPE_CHECKING:
    from deid.steps.context import RunContext


class ServerCloner(Cloner):
    def clone(self, ctx: RunContext) -> None:
        from deid.steps.places import place_of
        from deid.steps.servers import ServerPlace, record_clone

        place = place_of(ctx)
        if not isinstance(place, ServerPlace):  # config.py pairs the method with its section
            raise ConfigError(f"clone: {self.name} needs the '{self.name}:' section in deid.yaml")
        record_clone(ctx.record, place.make(ctx))


class AuroraCloner(ServerCloner):
    name = "aurora"


class RdsSnapshotCloner(ServerCloner):
    name = "rds_snapshot"
