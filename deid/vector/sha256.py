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

import numba
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
_U = np.uint32


@numba.njit(cache=True, inline="always")
def _rotr(x, n):
    return _U((x >> _U(n)) | (x << _U(32 - n)))


@numba.njit(cache=True, nogil=True)  # nogil: batches are transformed on several threads
def _compress(state, w, k):
    """One block (its 16 big-endian words in `w`, which the schedule overwrites) into `state`. Every sum is
    cast back to uint32 because numba widens integer arithmetic."""
    a, b, c, d = state[0], state[1], state[2], state[3]
    e, f, g, h = state[4], state[5], state[6], state[7]
    for t in range(64):
        if t >= 16:
            x, y = w[(t - 15) & 15], w[(t - 2) & 15]
            s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> _U(3))
            s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> _U(10))
            w[t & 15] = _U(w[t & 15] + s0 + w[(t - 7) & 15] + s1)
        t1 = _U(h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (_U(~e) & g)) + k[t] + w[t & 15])
        t2 = _U((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c)))
        h, g, f, e, d, c, b, a = g, f, e, _U(d + t1), c, b, a, _U(t1 + t2)
    for j, x in enumerate((a, b, c, d, e, f, g, h)):
        state[j] = _U(state[j] + x)


@numba.njit(cache=True, inline="always")
def _word(b, q):
    """The big-endian 32-bit word at b[q:q + 4]."""
    return (_U(b[q]) << _U(24)) | (_U(b[q + 1]) << _U(16)) | (_U(b[q + 2]) << _U(8)) | _U(b[q + 3])


@numba.njit(cache=True, nogil=True)  # nogil: batches are transformed on several threads
def _digests(mid, prefix, data, offsets, valid, out, k):
    """out[i] = SHA-256(key || prefix || data[offsets[i]:offsets[i + 1]]) for each valid i (others stay 0)."""
    w = np.empty(16, np.uint32)
    state = np.empty(8, np.uint32)
    plen = len(prefix)
    msg = np.zeros(128 + plen, np.uint8)
    msg[:plen] = prefix
    for i in range(len(offsets) - 1):
        if not valid[i]:
            continue
        start, length = offsets[i], offsets[i + 1] - offsets[i]
        total = plen + length
        blocks = (total + 9 + 63) // 64
        if blocks * 64 > len(msg):
            grown = np.zeros(blocks * 128, np.uint8)
            grown[:plen] = prefix
            msg = grown
        msg[plen:total] = data[start : start + length]
        end = blocks * 64
        msg[total] = 0x80
        msg[total + 1 : end - 8] = 0
        bits = (64 + total) * 8  # the key block counts
        for j in range(8):
            msg[end - 1 - j] = (bits >> (8 * j)) & 0xFF
        state[:] = mid
        for block in range(blocks):
            o = block * 64
            for t in range(16):
                w[t] = _word(msg, o + 4 * t)
            _compress(state, w, k)
        for j in range(8):
            s = state[j]
            out[i, 4 * j] = s >> _U(24)
            out[i, 4 * j + 1] = (s >> _U(16)) & _U(0xFF)
            out[i, 4 * j + 2] = (s >> _U(8)) & _U(0xFF)
            out[i, 4 * j + 3] = s & _U(0xFF)


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
    out = np.zeros((len(offsets) - 1, 32), np.uint8)
    _digests(mid, np.frombuffer(prefix, np.uint8), data, offsets, valid, out, ROUND_CONSTANTS)
    return out
