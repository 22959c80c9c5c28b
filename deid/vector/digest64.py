"""The tally's 64-bit seeded digest of each value, compiled by numba (a module of its own so that importing
deid does not import numba: see deid.vector.sha256_kernel)."""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from deid.vector import prf

_M = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True)
def _mix(h):
    """splitmix64's finaliser: every input bit reaches every output bit."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def _hashes(seed, data, offsets, out):
    for i in range(len(offsets) - 1):
        start, end = offsets[i], offsets[i + 1]
        h = _mix(seed ^ np.uint64(end - start))
        for j in range(start, end):
            h = _mix(h ^ (np.uint64(data[j]) * _M))
        out[i] = h


def digests(values: pa.Array, seed: int) -> np.ndarray:
    """A 64-bit seeded digest of each non-NULL value (as text), in order (NULLs left out)."""
    values = prf.texts(values)
    values = values.filter(values.is_valid()) if values.null_count else values
    n = len(values)
    _, offsets_buf, data_buf = values.buffers()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offsets_buf, width)[values.offset : values.offset + n + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    out = np.empty(n, np.uint64)
    _hashes(np.uint64(seed), data, offsets, out)
    return out
