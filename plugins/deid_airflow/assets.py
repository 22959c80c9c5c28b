"""The Airflow Asset of a staging copy: `deid://<staging server>/<staging name>`, updated each time `publish`
swaps a copy in. `<staging server>` is deid.yaml's `staging_server`, the name of the connection (never its
URL); deid.yaml refuses two databases that publish under one staging name on one server, so each copy has an
asset of its own.

Teams schedule their own DAGs on it ("staging refreshed"):

    from airflow.sdk import DAG, Asset

    with DAG("reset_test_accounts", schedule=[Asset("deid://staging/learners_staging")]): ...

or, with this folder on Airflow's path, `schedule=[staging_asset("staging", "learners_staging")]`: the same
asset.

The URI alone identifies it: its name is left to default to the URI, so a consumer that spells only the URI
declares the very asset the DAG updates (Airflow 3 keys an asset by name and URI both). `deid` is a scheme of
our own: no provider normalises it, so Airflow keeps it as written. Both names are percent-encoded where a
URI needs it (a staging name may hold any character its engine allows). The URI names the connection and the
staging copy only, never a host, user or password (an asset URI is shown to every UI user).

Only a swap updates it: a run that keeps an older copy for rollback instead (a backfill of a past date) ends
its publish task as skipped, and Airflow records no event for a skipped task. The event's `extra` says which
logical date and run the copy is of, so a consumer can tell a rebuild of tonight's copy from a new night.
"""

from __future__ import annotations

from urllib.parse import quote

from airflow.sdk import Asset

SCHEME = "deid"


def staging_asset(staging_server: str, staging_name: str) -> Asset:
    """The asset of the staging copy `staging_name` on the connection `staging_server` (deid.yaml's
    `staging_server` and `staging_name`)."""
    return Asset(f"{SCHEME}://{quote(staging_server, safe='')}/{quote(staging_name, safe='')}")


def event_extra(record: dict) -> dict[str, str | None]:
    """What the asset event carries: names and dates from the run record, never a value or a URL."""
    return {
        "database": record.get("database"),
        "staging_name": record.get("published"),
        "logical_date": record.get("logical_date"),
        "run_id": record.get("run_id"),
        "rules_digest": record.get("rules_digest"),
    }
