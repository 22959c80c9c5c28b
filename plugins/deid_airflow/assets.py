"""The Airflow Asset of a staging copy: `deid://<staging name>`, updated each time `publish` swaps a copy in.

Teams schedule their own DAGs on it ("staging refreshed"):

    from airflow.sdk import DAG, Asset

    with DAG("reset_test_accounts", schedule=[Asset("deid://learners_staging")]): ...

or, with this folder on Airflow's path, `schedule=[staging_asset("learners_staging")]`: the same asset.

The URI alone identifies it: its name is left to default to the URI, so a consumer that spells only the URI
declares the very asset the DAG updates (Airflow 3 keys an asset by name and URI both). `deid` is a scheme of
our own: no provider normalises it, so Airflow keeps it as written but for a trailing `/` on an empty path.
The URI names the staging copy only, never its server, user or password (an asset URI is shown to every UI
user, and Airflow drops a password from one anyway).

Only a swap updates it: a run that keeps an older copy for rollback instead (a backfill of a past date) ends
its publish task as skipped, and Airflow records no event for a skipped task. The event's `extra` says which
logical date and run the copy is of, so a consumer can tell a rebuild of tonight's copy from a new night.
"""

from __future__ import annotations

from airflow.sdk import Asset

SCHEME = "deid"


def staging_asset(staging_name: str) -> Asset:
    """The asset of the staging copy `staging_name` (deid.yaml's `staging_name`)."""
    return Asset(f"{SCHEME}://{staging_name}")


def event_extra(record: dict) -> dict[str, str | None]:
    """What the asset event carries: names and dates from the run record, never a value or a URL."""
    return {
        "database": record.get("database"),
        "staging_name": record.get("published"),
        "logical_date": record.get("logical_date"),
        "run_id": record.get("run_id"),
        "rules_digest": record.get("rules_digest"),
    }
