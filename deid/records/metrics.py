"""Per-table metrics of a run as Parquet: one row per table, one file per run, one dataset for the history.

The schema is fixed (SCHEMA) so that files of different runs read as one table. A run that failed before
the scrub has no tables; it still writes one row, with `table` null, so its outcome is in the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

SCHEMA = pa.schema(
    [
        ("database", pa.string()),
        ("logical_date", pa.date32()),
        ("run_id", pa.string()),
        ("via", pa.string()),
        ("started_at", pa.timestamp("ms", tz="UTC")),
        ("outcome", pa.string()),
        ("failed_step", pa.string()),
        ("run_seconds", pa.float64()),
        ("rules_sha256", pa.string()),
        ("schema_hash", pa.string()),
        ("table", pa.string()),
        ("action", pa.string()),  # rebuilt, streamed, rewritten, untouched or emptied
        ("rows_scrubbed", pa.int64()),  # rows the scrub rewrote (0 for untouched tables)
        ("scrub_seconds", pa.float64()),
        ("sessions", pa.int32()),  # sessions that shared the rewrite: a split table's parts
        ("rows", pa.int64()),  # rows in the copy as validated (null when validation did not count them)
        ("expected_rows", pa.int64()),  # production's (0 for a table emptied by the rules or a subset)
    ]
)


def metrics_table(record: Mapping[str, Any]) -> pa.Table:
    tables: Mapping[str, Mapping[str, Any]] = record.get("tables") or {}
    counts: Mapping[str, Mapping[str, Any]] = record.get("row_counts") or {}
    run = {
        "database": record["database"],
        "logical_date": dt.date.fromisoformat(record["logical_date"]),
        "run_id": record.get("run_id"),
        "via": record.get("via"),
        "started_at": _timestamp(record.get("started_at")),
        "outcome": record.get("outcome"),
        "failed_step": record.get("failed_step"),
        "run_seconds": record.get("seconds"),
        "rules_sha256": (record.get("rules") or {}).get("sha256"),
        "schema_hash": record.get("schema_hash"),
    }
    rows = []
    for table in sorted(set(tables) | set(counts)) or [None]:
        scrub, count = tables.get(table, {}), counts.get(table, {})
        rows.append(
            {
                **run,
                "table": table,
                "action": scrub.get("action"),
                "rows_scrubbed": scrub.get("rows"),
                "scrub_seconds": scrub.get("seconds"),
                "sessions": scrub.get("sessions") or scrub.get("parts"),
                "rows": count.get("rows"),
                "expected_rows": count.get("expected"),
            }
        )
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def parquet_bytes(record: Mapping[str, Any]) -> bytes:
    """The run's metrics as the bytes of one Parquet file."""
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(metrics_table(record), sink)
    return sink.getvalue().to_pybytes()


def read_metrics(directory: Path) -> pa.Table:
    """Every run's metrics under `directory` (<records dir>/metrics) as one table, with its `database`
    partition column."""
    import pyarrow.dataset as ds

    # the partition column duplicates the file's own `database`; the schema keeps the file's
    dataset = ds.dataset(directory, format="parquet", partitioning="hive", schema=SCHEMA)
    return dataset.to_table()


def _timestamp(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None
