"""The keyed PRF every keyed transformer draws from, whatever the engine: `prf(m) = SHA-256(K || m)`, with K
64 secret bytes derived from the salt (`prf_key`), that is one whole SHA-256 block; and the constants of the
keyed digit permutation (format-preserving, FF1-like) built on it.

Why this is a PRF. The first compression function call absorbs K alone, so every message starts from a
secret 256-bit chaining value: SHA-256 with a secret IV. The one weakness of a secret-prefix hash is length
extension: from SHA-256(K || m) one can compute SHA-256(K || m || pad || x). That needs the whole digest,
and `pad` always holds a 0x80 byte and a NUL byte, so `m || pad || x` is never a text value deid hashes (no
NUL, valid UTF-8). On such prefix-free inputs the construction is a PRF if SHA-256's compression function is
one (Bellare, Canetti, Krawczyk 1996, the cascade construction), the same assumption HMAC's proof makes. Most
transformers show far fewer bits than the digest (80 for a unique tag); `hash` in hex can show all of it,
which the argument above covers.

The vector forms compute it over Arrow buffers (deid.vector.prf); an engine that runs SQL forms computes the
same bytes in SQL (its backend's support objects).
"""

from __future__ import annotations

import hmac

BLOCK = 64  # SHA-256 block size in bytes: the key fills the first one
MASK63 = 9223372036854775807
FEISTEL_ROUNDS = 10  # as FF1
MAX_DIGITS = 18  # 10^18 < 2^63: every digit domain fits a bigint
# Round tables (fpe_rounds) for up to 10 digits: at most 5 * (10^5 + 10^5) entries, 3 MB, about 1 s to build
ROUND_TABLE_MAX_DIGITS = 10


def round_table_entries(n: int) -> int:
    """Entries of the round table of n-digit values: each round maps every value of one half."""
    return FEISTEL_ROUNDS // 2 * (10 ** (n // 2) + 10 ** (n - n // 2))


def prf_key(salt: str) -> bytes:
    """The PRF's 64-byte key for `salt`: two HMAC-SHA256 of the salt, so the key reveals nothing of it."""
    secret = salt.encode("utf-8")
    return b"".join(hmac.digest(secret, f"deid.prf.key.{i}".encode(), "sha256") for i in (0, 1))


def value_bytes(modulus: int) -> int:
    """Bytes of a round-table entry of a round mod `modulus` (at most 10^5, so at most 3): the fewer, the
    fewer byte reads per round."""
    return 1 if modulus <= 1 << 8 else 2 if modulus <= 1 << 16 else 3
