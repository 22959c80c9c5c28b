"""What every command that touches a staging name's copies goes through first.

    with guarded(server_url, staging_name) as repaired:
        ...  # the steps, a rollback, a cleanup

It holds the run lock for the block (deid.lock: one per staging name and server), then opens again any copy
an interrupted publish left closed (publish.repair), so that staging users are locked out of their copy at
most until the next deid command for the database. `repaired` lists those copies, for the command to say.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from deid.lock import check_holder, run_lock
from deid.steps.copies import admin, copies_on
from deid.steps.state import Holder


@contextmanager
def guarded(staging_server_url: str, staging_name: str, shared: bool = False) -> Iterator[list[str]]:
    from deid.steps.publish import repair

    with run_lock(staging_server_url, staging_name, shared=shared):
        if shared:  # mapped scrub tasks: the run's exclusive tasks (its snapshot first) have repaired
            yield []
            return
        with admin(staging_server_url) as c:
            repaired = repair(c, staging_name)
        yield repaired


def check_no_run_under_way(staging_server_url: str, staging_name: str, mine: Holder) -> None:
    """TerminalError when a working copy of `staging_name` belongs to another run still under way (an
    Airflow run between two tasks): a rollback or a cleanup must not change copies under it."""
    with admin(staging_server_url) as c:
        for copy in copies_on(c, staging_name):
            state = copy.state
            if copy.role == "work" and state is not None:
                check_holder(state.holder, mine, copy.name)
