"""SHA-256 compiled by numba, over many messages at once (FIPS 180-4).

Why not hashlib: a Python call per value costs about 1 µs, which is the cost the scrub moved out of SQL to
escape. Why numba: it installs from wheels (no compiler on the machine), and the same loop then runs as
native code, about 0.4 µs a value on the CI machine with the key's block absorbed once (see `midstate`).
The kernel is checked against hashlib in tests/test_vector_prf.py.

Every message is `key block || prefix || value`: the key fills exactly one 64-byte block, so its compression
is done once per batch (`midstate`) and each value costs one more block when `prefix || value` is under 56
bytes, two when under 120, and so on.
"""

from __future__ import annotations

import struct

import numpy as np

ROUND_CONSTANTS = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
        0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
        0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
        0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
        0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
        0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
        0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
    ],
    dtype=np.uint32,
)  # fmt: skip
INITIAL_STATE = np.array(
    [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19],
    dtype=np.uint32,
)


def midstate(key: bytes) -> np.ndarray:
    """The chaining value after the 64-byte key block: what every message of the batch starts from.

    One compression per key, in plain Python (about 0.1 ms): through the kernel it would start numba's
    compiler, about 60 MB and a second or more, in every process that makes a key, including those that
    scrub only small tables by the SQL forms and never run a kernel. tests/test_vector_prf.py checks the
    digests that start from it against hashlib."""
    if len(key) != 64:
        raise ValueError("the PRF key is one 64-byte block")
    mask = 0xFFFFFFFF

    def rotr(x: int, n: int) -> int:
        return ((x >> n) | (x << (32 - n))) & mask

    w = list(struct.unpack(">16I", key))
    for t in range(16, 64):
        x, y = w[t - 15], w[t - 2]
        s0, s1 = rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3), rotr(y, 17) ^ rotr(y, 19) ^ (y >> 10)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & mask)
    a, b, c, d, e, f, g, h = (int(v) for v in INITIAL_STATE)
    for t in range(64):
        t1 = (
            h
            + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25))
            + ((e & f) ^ (~e & g))
            + int(ROUND_CONSTANTS[t])
            + w[t]
        )
        t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & mask, c, b, a, (t1 + t2) & mask
    return (INITIAL_STATE + np.array([a, b, c, d, e, f, g, h], np.uint32)).astype(np.uint32)


def digests(
    mid: np.ndarray, prefix: bytes, data: np.ndarray, offsets: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """SHA-256(key || prefix || value) of each value laid out as Arrow lays out strings (`data`, `offsets`),
    for rows where `valid`; an (n, 32) uint8 array, zero rows where not valid."""
    from deid.vector.sha256_kernel import compiled_digests  # numba on first use: see sha256_kernel

    out = np.zeros((len(offsets) - 1, 32), np.uint8)
    compiled_digests(mid, np.frombuffer(prefix, np.uint8), data, offsets, valid, out, ROUND_CONSTANTS)
    return out
