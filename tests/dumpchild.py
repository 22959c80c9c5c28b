"""The snapshot step of a `clone: dump` run in a process of its own, for the tests that kill it mid-clone.

    python -m tests.dumpchild ADMIN_URL PRODUCTION STAGING YYYY-MM-DD [RULES]

RULES: a file of tests/fixtures/rules (default dump_people.yaml), the rules of that production database.

PYTHONPATH must hold the checkout (for `deid` and `tests`); the step runs as in `deid run --only snapshot`.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

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
    admin_url, production, staging, day, *rules_file = argv
    rules = Path(__file__).resolve().parent / "fixtures" / "rules" / (rules_file or ["dump_people.yaml"])[0]
    ctx = runctx.make_ctx(
        Server(admin_url),
        production,
        staging,
        dt.date.fromisoformat(day),
        clone="dump",
        rules=str(rules),
        migrations=None,
    )
    snapshot(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
