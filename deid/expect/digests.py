"""Keyed digests: how a value is compared across the two databases without leaving either.

Each database computes sha256(key || the value's text) itself (the engine's dialect spells it: keyed()); only
digests travel, and the key is 32 random bytes made per run and kept in memory, so a digest of a production
value cannot be reversed by hashing a dictionary of candidates (SSNs, names, emails) afterwards. The key is a
bound parameter, never SQL text; statements that carry it report failures without their parameters
(deid.dberrors.retell). Both databases are of the same engine, so the same value gives the same text there.
"""

from __future__ import annotations

import secrets

KEY_PARAM = "deid_digest_key"


def new_key() -> bytes:
    return secrets.token_bytes(32)
