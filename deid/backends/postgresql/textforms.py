"""The session settings that fix PostgreSQL's text output, so that a value always reads as the same text.

The streamed scrub reads values as text and vector forms key on that text (deid.transformers.base.Batch):
with these pinned, a timestamptz reads in UTC whatever the server's TimeZone, a float in its shortest exact
form, a date as ISO, a bytea as hex. The values written back are parsed under the same settings.
"""

from __future__ import annotations

SETTINGS = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "client_encoding": "UTF8",
}


def set_statements() -> list[str]:
    """SET LOCAL statements (this transaction only) for a session that reads or writes text forms."""
    return [f"SET LOCAL {name} = '{value}'" for name, value in SETTINGS.items()]
