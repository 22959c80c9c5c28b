"""The keyed PRF of deid.transformers.keying, over Arrow arrays: `prf(m) = SHA-256(K || m)` with K the
64-byte `prf_key(salt)`, and keyed messages `prefix || chr(31) || text`.

Everything here gives bit for bit what the SQL forms give (`_deid.prf`, `prf_int_sql`, `prf_unit_sql`,
`prf_hex_sql`), so a value keyed here and one keyed inside a database agree; tests/test_vector_prf.py
compares them on a real server. NULL in gives NULL out (a zero digest and a cleared validity bit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.transformers.keying import MASK63, prf_key
from deid.vector import sha256

SEPARATOR = b"\x1f"  # chr(31), between a use's prefix and the value (transformers.base.keyed)
# each byte's two hex characters as one 16-bit item, so a digest's hex is one gather of 2-byte items
_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), np.uint16)


@dataclass(frozen=True)
class Key:
    """The PRF's key, absorbed: the salt never leaves `for_salt`, and repr shows nothing of it."""

    mid: np.ndarray = field(repr=False)

    @classmethod
    def for_salt(cls, salt: str) -> Key:
        return cls(sha256.midstate(prf_key(salt)))


def texts(values: pa.Array) -> pa.Array:
    """`values` as one contiguous string array (chunked arrays combined, other types cast to their text)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_large_string(values.type) or pa.types.is_string(values.type):
        return values
    return pc.cast(values, pa.string())


def _layout(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data bytes, offsets, validity) of a string array, as numpy views over Arrow's buffers."""
    n = len(values)
    _, offsets_buf, data_buf = values.buffers()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offsets_buf, width)[values.offset : values.offset + n + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    return data, offsets, valid


# Columns such as names, cities or states repeat a few values over and over: a batch whose first values
# repeat is keyed once per distinct value and the digests spread back by index (the same digests; hashing a
# value to find its repeats costs a tenth of keying it). Columns of distinct values (emails, SSNs) are
# recognised by their first PROBE values and keyed directly.
PROBE = 1024


def digests(key: Key, prefix: str, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The 32-byte PRF of `prefix || chr(31) || value` for each value: (n, 32) uint8, and the validity."""
    values = texts(values)
    if len(values) > PROBE and pc.count_distinct(values.slice(0, PROBE)).as_py() * 2 <= PROBE:
        return _digests_of_distinct(key, prefix, values)
    data, offsets, valid = _layout(values)
    return sha256.digests(key.mid, prefix.encode() + SEPARATOR, data, offsets, valid), valid


def _digests_of_distinct(key: Key, prefix: str, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """digests(), keying each distinct value once (NULL rows: zero digests, as sha256.digests leaves them)."""
    encoded = pc.dictionary_encode(values)
    distinct = texts(encoded.dictionary)
    data, offsets, valid = _layout(distinct)
    once = sha256.digests(key.mid, prefix.encode() + SEPARATOR, data, offsets, valid)
    valid = _layout(values)[2]
    out = np.zeros((len(values), 32), np.uint8)
    # valid rows only: a batch of NULLs alone has no distinct value to index
    out[valid] = once[encoded.indices.fill_null(0).to_numpy()[valid]]
    return out, valid


def ints(key: Key, prefix: str, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """As prf_int_sql: the digest's first 8 bytes, big-endian, top bit cleared (int64, never negative)."""
    raw, valid = digests(key, prefix, values)
    return first_int(raw), valid


def first_int(raw: np.ndarray) -> np.ndarray:
    """The first 63 bits of each digest, as int64 (prf_int)."""
    high = np.ascontiguousarray(raw[:, :8]).view(">u8").reshape(-1)
    return (high & np.uint64(MASK63)).astype(np.int64)


def units(key: Key, prefix: str, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """As prf_unit_sql: 53 bits of the PRF, uniform in [0, 1)."""
    n, valid = ints(key, prefix, values)
    return (n >> 10).astype(np.float64) / 9007199254740992.0, valid


def hex_matrix(raw: np.ndarray, chars: int) -> np.ndarray:
    """The first `chars` lower-case hex characters of each digest, as an (n, chars) uint8 matrix."""
    nbytes = (chars + 1) // 2
    pairs = np.ascontiguousarray(_HEX[raw[:, :nbytes]]).view(np.uint8).reshape(len(raw), 2 * nbytes)
    return pairs if chars == 2 * nbytes else np.ascontiguousarray(pairs[:, :chars])


def fixed_strings(matrix: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An (n, w) uint8 matrix of UTF-8 bytes as a string array of n values of w bytes each (nulls where not
    `valid`)."""
    n, width = matrix.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64 if n * width >= 2**31 else np.int32)
    string_type = pa.large_string() if offsets.dtype == np.int64 else pa.string()
    mask = None if valid is None or valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(
        string_type,
        n,
        [mask, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(matrix).reshape(-1))],
        null_count=-1 if mask is not None else 0,
    )


def hexes(key: Key, prefix: str, values: pa.Array, chars: int = 64) -> pa.Array:
    """As prf_hex_sql: `chars` hex characters of the PRF (at most 64), NULL for NULL."""
    raw, valid = digests(key, prefix, values)
    return fixed_strings(hex_matrix(raw, chars), valid)
