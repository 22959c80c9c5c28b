"""Keyed digests: how a value is compared across the two databases without leaving either.

Each database computes sha256(key || value) itself; only digests travel, and the key is 32 random bytes
made per run and kept in memory, so a digest of a production value cannot be reversed by hashing a
dictionary of candidates (SSNs, names, emails) afterwards. The key is a bound parameter, never SQL text;
statements that carry it report failures without their parameters (deid.dberrors.retell).
"""

from __future__ import annotations

import secrets

KEY_PARAM = "deid_digest_key"


def new_key() -> bytes:
    return secrets.token_bytes(32)


def keyed(value_sql: str) -> str:
    """SQL for the keyed digest of a value (as text); NULL stays NULL."""
    return f"sha256(CAST(:{KEY_PARAM} AS bytea) || convert_to(({value_sql})::text, 'UTF8'))"
