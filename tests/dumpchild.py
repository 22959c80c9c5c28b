"""The snapshot step of a `clone: dump` run in a process of its own, for the tests that kill it mid-clone.

    python -m tests.dumpchild ADMIN_URL PRODUCTION STAGING YYYY-MM-DD

PYTHONPATH must hold the checkout (for `deid` and `tests`); the step runs as in `deid run --only snapshot`.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass

import sqlalchemy as sa

from deid.steps.snapshot import snapshot
from tests import runctx


@dataclass
class Server:
    """What runctx.make_ctx needs of a test server."""

    admin_url: str

    def url(self, database: str) -> str:
        return sa.make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)


def main(argv: list[str]) -> int:
    admin_url, production, staging, day = argv
    ctx = runctx.make_ctx(Server(admin_url), production, staging, dt.date.fromisoformat(day), clone="dump")
    snapshot(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
