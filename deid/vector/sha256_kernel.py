"""The SHA-256 kernel of deid.vector.sha256, compiled by numba.

A module of its own so that importing deid (the CLI, the rules, the plan, the DAG files) does not import
numba: its import and its compiler's set-up cost 1.3 s and about 140 MB, which only a process that runs the
kernels pays, on first use (`deid run` loads them on a thread while its snapshot waits on the database).
"""

from __future__ import annotations

import numba
import numpy as np

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
def compiled_digests(mid, prefix, data, offsets, valid, out, k):
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
