"""Large objects (pg_largeobject): data that belongs to no column, so no column rule covers it.

A clone carries them (a template copy has the same files; pg_dump dumps them), and a staging user granted
SELECT on one, or any user with lo_compat_privileges on, reads it with lo_get(). The rule file says what to
do with them (rules `large_objects:`): deid counts them in the copy, and unlinks them all for `drop`.
"""

from __future__ import annotations

import sqlalchemy as sa


def count(connection: sa.Connection) -> int:
    return int(connection.execute(sa.text("SELECT count(*) FROM pg_largeobject_metadata")).scalar_one())


def drop_all(connection: sa.Connection) -> int:
    """Unlink every large object of the database; returns how many (the caller's transaction)."""
    return int(
        connection.execute(sa.text("SELECT count(lo_unlink(oid)) FROM pg_largeobject_metadata")).scalar_one()
    )
