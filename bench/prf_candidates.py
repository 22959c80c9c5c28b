"""The keyed PRF's implementation candidates, measured side by side in one run.

    .venv/bin/python -m bench.prf_candidates [--values N] [--repeats R] [--no-save]

deid's PRF is SHA-256(K || m) with K 64 secret bytes (one block: its compression is done once, the midstate)
and m = prefix || 0x1f || value. Over N values like `user12345@example.org` with prefix `hash` (default
1,000,000; every message is one block after the key), from an Arrow string array to an (N, 32) array of
digests, each candidate on one thread where it can be:
  numba        deid's kernel (deid.vector.prf.digests): first call in a fresh process with an empty numba
               cache (compile) and with a filled one (cache load), then warm in this process
  numpy        SHA-256 written here in numpy alone, vectorised across messages: uint32 arrays of shape (n,)
               in chunks that stay in cache, the 64 rounds as in-place ufuncs, the key's midstate, messages
               grouped by their number of blocks
  siphash      SipHash-2-4 written here in numpy alone (uint64 arrays, 8-byte blocks), keyed by K's first 16
               bytes: another output (64 bits; it would change every scrubbed value), measured for speed only
  hashlib      hashlib.sha256 called per value from Python (a copy of the keyed object per value)
  duckdb       DuckDB's vectorised sha256() over the Arrow table (no midstate: it hashes K || m), with
               threads=1, in a side environment (bench/.cache/candidates-venv; DuckDB is no deid dependency)
  openssl      numba calling libcrypto's SHA256_Update/SHA256_Final through ctypes from an njit loop, from a
               context that has absorbed K || prefix || 0x1f; its compile time too (no numba cache: ctypes
               function pointers are dynamic globals)
Every SHA-256 candidate's digests are compared with deid's kernel over all N values, and with
hashlib.sha256(K || m) for a few; SipHash with a scalar reference that reproduces the SipHash paper's test
vector. Seconds are the best of R runs (default 3), scaled to 1M values. Prints a markdown table, writes
bench/results/<date>-prf-candidates.json.

The worker mode (`--worker duckdb`) is what runs in the side environment; it imports nothing from deid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa

from deid.vector.sha256 import INITIAL_STATE, ROUND_CONSTANTS

PREFIX = "hash"
SEPARATOR = b"\x1f"
SALT = "deid-bench-salt"  # the benchmark's fixed salt (bench/run.py); any salt would do
DEFAULT_VALUES = 1_000_000
U32 = np.uint32
U64 = np.uint64
CHUNK = 65536  # messages per chunk of the numpy kernels: ~30 arrays of 256 KB (uint32) stay in L3


def make_values(n: int) -> pa.Array:
    return pa.array([f"user{i}@example.org" for i in range(n)], pa.string())


def layout(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data bytes, starts, lengths) of a string array without nulls, as numpy arrays."""
    _, offsets_buf, data_buf = values.buffers()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offsets_buf, width)[values.offset : values.offset + len(values) + 1]
    data = np.frombuffer(data_buf, np.uint8)
    return data, offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64)


def best_of(fn, repeats: int) -> tuple[float, list[float], object]:
    runs, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return min(runs), [round(r, 4) for r in runs], result


def fingerprint(digests: np.ndarray) -> str:
    """One SHA-256 over all digests, to compare outputs across processes."""
    return hashlib.sha256(np.ascontiguousarray(digests).tobytes()).hexdigest()


def hashlib_reference(key: bytes, values: list[str]) -> list[bytes]:
    return [hashlib.sha256(key + PREFIX.encode() + SEPARATOR + v.encode()).digest() for v in values]


# ---------------------------------------------------------------------------------------------------------
# Message bytes, vectorised: prefix || value, zero-padded, one row per message


_TAIL_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [2**64 - 1], np.uint64)


def padded_window(data: np.ndarray, slack: int) -> np.ndarray:
    """`data` as overlapping little-endian uint64s, one starting at every byte (a strided view over a copy
    with `slack` zero bytes added), so 8 bytes of a value are one gather instead of eight."""
    padded = np.concatenate([data, np.zeros(slack + 8, np.uint8)])
    return np.ndarray((len(padded) - 7,), "<u8", padded, 0, (1,))


def message_bytes(prefix: np.ndarray, window: np.ndarray, starts, lens, width: int) -> np.ndarray:
    """(m, width) uint8: prefix || value, then zeros."""
    m, plen = len(starts), len(prefix)
    out = np.zeros((m, width), np.uint8)
    out[:, :plen] = prefix
    longest = int(lens.max()) if m else 0
    for k in range(0, longest, 8):
        q = window[starts + k]  # bytes start+k .. start+k+7
        q &= _TAIL_MASKS[np.clip(lens - k, 0, 8)]  # only the value's own bytes
        w = min(8, width - plen - k)
        out[:, plen + k : plen + k + w] = q.view(np.uint8).reshape(m, 8)[:, :w]
    return out


# ---------------------------------------------------------------------------------------------------------
# numpy SHA-256, vectorised across messages

_K, _H0 = ROUND_CONSTANTS, INITIAL_STATE  # FIPS 180-4's, as deid's kernel has them
_SHIFTS = {n: (U32(n), U32(32 - n)) for n in range(1, 32)}


def np_midstate(key: bytes) -> np.ndarray:
    state = [np.full(1, h, U32) for h in _H0]
    w = [np.array([x], U32) for x in np.frombuffer(key, ">u4")]
    return np.array([int(x[0]) for x in _NumpySha256(1).compress(state, w)], U32)


class _NumpySha256:
    """The compression function over m messages at once; scratch arrays are allocated once per size."""

    def __init__(self, m: int):
        self.m = m
        self.t = [np.empty(m, U32) for _ in range(4)]

    def _sigma(self, x, a, b, c, out):
        """rotr(x, a) ^ rotr(x, b) ^ rotr(x, c) into `out` (three rotations: 6 shifts, 5 xors)."""
        return self._rotations(x, (a, b, c), out)

    def _small_sigma(self, x, a, b, shift, out):
        """rotr(x, a) ^ rotr(x, b) ^ (x >> shift) into `out`."""
        t = self.t[3]
        self._sigma2(x, a, b, out)
        np.right_shift(x, U32(shift), out=t)
        np.bitwise_xor(out, t, out=out)
        return out

    def _sigma2(self, x, a, b, out):
        return self._rotations(x, (a, b), out)

    def _rotations(self, x, amounts, out):
        """The xor of x rotated right by each of `amounts`, into `out`."""
        t = self.t[3]
        for i, n in enumerate(amounts):
            right, left = _SHIFTS[n]
            if i == 0:
                np.right_shift(x, right, out=out)
            else:
                np.right_shift(x, right, out=t)
                np.bitwise_xor(out, t, out=out)
            np.left_shift(x, left, out=t)
            np.bitwise_xor(out, t, out=out)
        return out

    def compress(self, state: list[np.ndarray], w: list[np.ndarray]) -> list[np.ndarray]:
        """One block per message: `state` (8 arrays, updated in place and returned), `w` its 16 words (the
        message schedule overwrites them)."""
        s, t1, t2 = self.t[0], self.t[1], self.t[2]
        a, b, c, d, e, f, g, h = (x.copy() for x in state)
        bc = np.bitwise_xor(b, c)  # Maj(a, b, c) = b ^ ((a ^ b) & (b ^ c)); a ^ b is the next round's b ^ c
        ab = np.empty_like(bc)
        for r in range(64):
            wr = w[r & 15]
            if r >= 16:
                np.add(wr, self._small_sigma(w[(r - 15) & 15], 7, 18, 3, s), out=wr)
                np.add(wr, self._small_sigma(w[(r - 2) & 15], 17, 19, 10, s), out=wr)
                np.add(wr, w[(r - 7) & 15], out=wr)
            # T1 = h + Σ1(e) + Ch(e, f, g) + K[r] + W[r], accumulated in h
            np.add(h, self._sigma(e, 6, 11, 25, s), out=h)
            np.bitwise_xor(f, g, out=t1)
            np.bitwise_and(t1, e, out=t1)
            np.bitwise_xor(t1, g, out=t1)  # Ch = g ^ (e & (f ^ g))
            np.add(h, t1, out=h)
            np.add(h, wr, out=h)
            np.add(h, _K[r], out=h)
            np.add(d, h, out=d)  # e' = d + T1
            # T2 = Σ0(a) + Maj(a, b, c)
            np.add(h, self._sigma(a, 2, 13, 22, s), out=h)
            np.bitwise_xor(a, b, out=ab)
            np.bitwise_and(ab, bc, out=t2)
            np.bitwise_xor(t2, b, out=t2)
            np.add(h, t2, out=h)  # a' = T1 + T2
            ab, bc = bc, ab
            a, b, c, d, e, f, g, h = h, a, b, c, d, e, f, g
        for x, y in zip(state, (a, b, c, d, e, f, g, h), strict=True):
            np.add(x, y, out=x)
        return state


def numpy_sha256(mid: np.ndarray, prefix: bytes, data, starts, lens, chunk: int = CHUNK) -> np.ndarray:
    """SHA-256(key || prefix || value) per value, `mid` the key's midstate: (n, 32) uint8."""
    n, plen = len(starts), len(prefix)
    out = np.empty((n, 8), U32)
    if n == 0:
        return out.view(np.uint8)
    total = plen + lens
    blocks = (total + 9 + 63) // 64
    window = padded_window(data, int(lens.max()))
    pre = np.frombuffer(prefix, np.uint8)
    kernels: dict[int, _NumpySha256] = {}
    for nb in np.unique(blocks):  # one group per number of blocks
        rows = None if (blocks == nb).all() else np.flatnonzero(blocks == nb)
        group = n if rows is None else len(rows)
        for lo in range(0, group, chunk):
            sel = slice(lo, min(group, lo + chunk)) if rows is None else rows[lo : lo + chunk]
            st, ln, tot = starts[sel], lens[sel], total[sel]
            m = len(st)
            msg = message_bytes(pre, window, st, ln, 64 * int(nb))
            msg[np.arange(m), tot] = 0x80
            msg[:, -8:] = ((64 + tot) * 8).astype(">u8").view(np.uint8).reshape(m, 8)  # bits, key included
            words = msg.view(">u4").T.astype(U32, order="C")  # (16 nb, m), native order
            kernel = kernels.get(m) or kernels.setdefault(m, _NumpySha256(m))
            state = [np.full(m, x, U32) for x in mid]
            for block in range(int(nb)):
                kernel.compress(state, list(words[16 * block : 16 * block + 16]))
            out[sel] = np.stack(state, axis=1)
    return out.astype(">u4").view(np.uint8).reshape(n, 32)


# ---------------------------------------------------------------------------------------------------------
# numpy SipHash-2-4, vectorised across messages


def _rotl64(x, n, t):
    np.right_shift(x, U64(64 - n), out=t)
    np.left_shift(x, U64(n), out=x)
    np.bitwise_or(x, t, out=x)


def _sipround(v0, v1, v2, v3, t):
    np.add(v0, v1, out=v0)
    _rotl64(v1, 13, t)
    np.bitwise_xor(v1, v0, out=v1)
    _rotl64(v0, 32, t)
    np.add(v2, v3, out=v2)
    _rotl64(v3, 16, t)
    np.bitwise_xor(v3, v2, out=v3)
    np.add(v0, v3, out=v0)
    _rotl64(v3, 21, t)
    np.bitwise_xor(v3, v0, out=v3)
    np.add(v2, v1, out=v2)
    _rotl64(v1, 17, t)
    np.bitwise_xor(v1, v2, out=v1)
    _rotl64(v2, 32, t)


_SIP_INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def numpy_siphash24(key16: bytes, prefix: bytes, data, starts, lens, chunk: int = CHUNK) -> np.ndarray:
    """SipHash-2-4(key16, prefix || value) per value: (n,) uint64."""
    k0, k1 = (int(x) for x in np.frombuffer(key16, "<u8"))
    n, plen = len(starts), len(prefix)
    out = np.empty(n, U64)
    if n == 0:
        return out
    total = plen + lens
    blocks = total // 8 + 1
    window = padded_window(data, int(lens.max()))
    pre = np.frombuffer(prefix, np.uint8)
    init = [U64(k ^ c) for k, c in zip((k0, k1, k0, k1), _SIP_INIT, strict=True)]
    for nb in np.unique(blocks):
        rows = None if (blocks == nb).all() else np.flatnonzero(blocks == nb)
        group = n if rows is None else len(rows)
        for lo in range(0, group, chunk):
            sel = slice(lo, min(group, lo + chunk)) if rows is None else rows[lo : lo + chunk]
            m = len(starts[sel])
            msg = message_bytes(pre, window, starts[sel], lens[sel], 8 * int(nb))
            msg[:, -1] = (total[sel] & 0xFF).astype(np.uint8)  # the last block's top byte: the length
            words = msg.view("<u8").T.astype(U64, order="C")  # (nb, m)
            v0, v1, v2, v3 = (np.full(m, x, U64) for x in init)
            t = np.empty(m, U64)
            for mi in words:
                np.bitwise_xor(v3, mi, out=v3)
                _sipround(v0, v1, v2, v3, t)
                _sipround(v0, v1, v2, v3, t)
                np.bitwise_xor(v0, mi, out=v0)
            np.bitwise_xor(v2, U64(0xFF), out=v2)
            for _ in range(4):
                _sipround(v0, v1, v2, v3, t)
            np.bitwise_xor(v0, v1, out=v0)
            np.bitwise_xor(v0, v2, out=v0)
            np.bitwise_xor(v0, v3, out=v0)
            out[sel] = v0
    return out


def siphash24_reference(key16: bytes, message: bytes) -> int:
    """SipHash-2-4 of one message in plain Python (Aumasson and Bernstein's reference, as 64-bit ints)."""
    mask = 2**64 - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    k0, k1 = int.from_bytes(key16[:8], "little"), int.from_bytes(key16[8:], "little")
    v = [k0 ^ _SIP_INIT[0], k1 ^ _SIP_INIT[1], k0 ^ _SIP_INIT[2], k1 ^ _SIP_INIT[3]]

    def rounds(count):
        for _ in range(count):
            v[0] = (v[0] + v[1]) & mask
            v[1] = rotl(v[1], 13) ^ v[0]
            v[0] = rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask
            v[3] = rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & mask
            v[3] = rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & mask
            v[1] = rotl(v[1], 17) ^ v[2]
            v[2] = rotl(v[2], 32)

    full = len(message) - len(message) % 8
    for i in range(0, full, 8):
        mi = int.from_bytes(message[i : i + 8], "little")
        v[3] ^= mi
        rounds(2)
        v[0] ^= mi
    last = int.from_bytes(message[full:], "little") | ((len(message) & 0xFF) << 56)
    v[3] ^= last
    rounds(2)
    v[0] ^= last
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


# the SipHash paper's test vector: key 00..0f, message 00..0e
SIPHASH_VECTOR = (bytes(range(16)), bytes(range(15)), 0xA129CA6149BE45E5)


# ---------------------------------------------------------------------------------------------------------
# hashlib per value


def hashlib_copy(key: bytes, values: pa.Array) -> np.ndarray:
    """A keyed hashlib object (K || prefix || 0x1f absorbed) copied for each value: hashlib's midstate."""
    copy = hashlib.sha256(key + PREFIX.encode() + SEPARATOR).copy
    parts = []
    for v in values.to_pylist():
        h = copy()
        h.update(v.encode())
        parts.append(h.digest())
    return np.frombuffer(b"".join(parts), np.uint8).reshape(len(parts), 32)


def hashlib_whole(key: bytes, values: pa.Array) -> np.ndarray:
    """hashlib.sha256(K || prefix || 0x1f || value) per value, the key hashed again each time."""
    head, sha = key + PREFIX.encode() + SEPARATOR, hashlib.sha256
    parts = [sha(head + v.encode()).digest() for v in values.to_pylist()]
    return np.frombuffer(b"".join(parts), np.uint8).reshape(len(parts), 32)


# ---------------------------------------------------------------------------------------------------------
# numba calling OpenSSL through ctypes

OPENSSL_CTX = 112  # sizeof(SHA256_CTX): 8 + 2 + 16 words of state and buffer, num, md_len
# libcrypto's functions, set by openssl_kernel before the loop is compiled: numba reads them as globals
# (ctypes function pointers: "dynamic globals", which numba's cache refuses)
_SHA256_UPDATE = _SHA256_FINAL = None


def _openssl_loop(keyed, data, starts, lens, out):
    ctx = np.empty(128, np.uint8)
    pctx, pdata, pout = ctx.ctypes.data, data.ctypes.data, out.ctypes.data
    for i in range(len(starts)):
        ctx[:OPENSSL_CTX] = keyed[:OPENSSL_CTX]  # the context that has absorbed K || prefix || 0x1f
        _SHA256_UPDATE(pctx, pdata + starts[i], lens[i])
        _SHA256_FINAL(pout + 32 * i, pctx)


def openssl_kernel(cache: bool = False):
    """(kernel, keyed context maker, library path): an njit loop calling SHA256_Update/SHA256_Final."""
    import ctypes
    import ctypes.util

    import numba

    global _SHA256_UPDATE, _SHA256_FINAL
    path = ctypes.util.find_library("crypto")
    if path is None:
        raise OSError("libcrypto not found")
    lib = ctypes.CDLL(path)
    init, update, final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
    init.argtypes, init.restype = [ctypes.c_void_p], ctypes.c_int
    update.argtypes, update.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int
    final.argtypes, final.restype = [ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int
    _SHA256_UPDATE, _SHA256_FINAL = update, final
    kernel = numba.njit(nogil=True, cache=cache)(_openssl_loop)

    def keyed_context(head: bytes) -> np.ndarray:
        ctx = np.zeros(128, np.uint8)
        init(ctx.ctypes.data)
        update(ctx.ctypes.data, head, len(head))
        return ctx

    return kernel, keyed_context, path


def openssl_digests(kernel, keyed: np.ndarray, data, starts, lens) -> np.ndarray:
    out = np.empty((len(starts), 32), np.uint8)
    kernel(keyed, data, starts, lens, out)
    return out


# ---------------------------------------------------------------------------------------------------------
# DuckDB, in the side environment


def duckdb_worker(n: int, repeats: int, key: bytes) -> dict:
    import duckdb

    values = make_values(n)
    con = duckdb.connect()
    con.register("vals", pa.table({"v": values}))
    head = key.hex()
    query = f"SELECT unhex(sha256(from_hex('{head}') || encode('{PREFIX}' || chr(31) || v))) AS d FROM vals"
    result: dict = {"duckdb": duckdb.__version__, "pyarrow": pa.__version__, "query": query}
    for threads in (1, 2):
        con.execute(f"SET threads = {threads}")
        best, runs, out = best_of(lambda: con.sql(query).to_arrow_table(), repeats)
        result[f"threads_{threads}"] = {"seconds": best, "runs": runs}
        if threads == 1:
            column = out.column("d").combine_chunks()
            digests = np.frombuffer(column.buffers()[2], np.uint8)[: 32 * n].reshape(n, 32)
            result["fingerprint"] = fingerprint(digests)
            sample = [0, n // 2, n - 1]
            expected = hashlib_reference(key, [values[i].as_py() for i in sample])
            result["hashlib_agrees"] = all(
                digests[i].tobytes() == e for i, e in zip(sample, expected, strict=True)
            )
    # the hash alone, over messages already laid out as one binary column K || prefix || 0x1f || value
    con.execute("SET threads = 1")
    con.execute(
        f"CREATE TABLE m AS SELECT from_hex('{head}') || encode('{PREFIX}' || chr(31) || v) AS m FROM vals"
    )
    best, runs, _ = best_of(lambda: con.sql("SELECT sha256(m) AS d FROM m").to_arrow_table(), repeats)
    result["hash_only_prebuilt_blobs"] = {"seconds": best, "runs": runs, "output": "hex text"}
    return result


# ---------------------------------------------------------------------------------------------------------
# The run

NUMBA_FIRST_CALL = """
import json, sys, time
started = time.perf_counter()
import pyarrow as pa
from deid.vector import prf
imported = time.perf_counter()
values = pa.array([f"user{i}@example.org" for i in range(int(sys.argv[1]))], pa.string())
key = prf.Key.for_salt(sys.argv[2])
made = time.perf_counter()
prf.digests(key, "hash", values)
first = time.perf_counter() - made
made = time.perf_counter()
prf.digests(key, "hash", values)
second = time.perf_counter() - made
print(json.dumps({"import": imported - started, "first_call": first, "second_call": second}))
"""


def numba_first_calls(n: int, root: Path) -> dict:
    """deid's kernel's first call in fresh processes: numba's cache empty (compile), then filled (load)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="deid-bench-numba-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(root)}
        for label in ("compile", "cache_load"):
            done = subprocess.run(
                [sys.executable, "-c", NUMBA_FIRST_CALL, str(n), SALT],
                env=env,
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            )
            out[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


OPENSSL_FIRST_CALL = """
import json, sys, time
import numpy as np
from bench import prf_candidates as c
started = time.perf_counter()
kernel, keyed_context, _ = c.openssl_kernel()
keyed = keyed_context(bytes(64) + b"hash\\x1f")
c.openssl_digests(kernel, keyed, np.zeros(8, np.uint8), np.zeros(1, np.int64), np.ones(1, np.int64))
print(json.dumps({"first_call": time.perf_counter() - started}))
"""


def openssl_first_call(root: Path) -> float:
    """The OpenSSL loop's compile in a fresh process (numba's own start-up included, as for deid's)."""
    done = subprocess.run(
        [sys.executable, "-c", OPENSSL_FIRST_CALL],
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["first_call"]


def run(n: int, repeats: int, report) -> dict:
    import numba

    from bench import sidevenv
    from bench.servers import ROOT, machine_facts
    from deid.transformers.keying import prf_key
    from deid.vector import prf

    key_bytes = prf_key(SALT)
    values = make_values(n)
    data, starts, lens = layout(values)
    scale = 1_000_000 / n
    sample = [0, 1, n // 3, n // 2, n - 1]
    expected = hashlib_reference(key_bytes, [values[i].as_py() for i in sample])
    rows: list[dict] = []

    def row(name, seconds, wheels, notes, agrees=None, per_1m=None, **detail):
        """`seconds` for the n values; `per_1m` when scaling them is wrong (a first call's fixed cost)."""
        if per_1m is None and seconds is not None:
            per_1m = seconds * scale
        entry = {
            "candidate": name,
            "seconds": None if seconds is None else round(seconds, 4),
            "seconds_per_1m": None if per_1m is None else round(per_1m, 4),
            "us_per_value": None if per_1m is None else round(per_1m, 4),  # s per 1M values = µs per value
            "wheels": wheels,
            "notes": notes,
            "agrees_with_hashlib": agrees,
            **detail,
        }
        rows.append(entry)
        report(f"{name}: " + ("not measured" if per_1m is None else f"{per_1m:.3f} s per 1M"))
        return entry

    def agrees(digests: np.ndarray) -> bool:
        return bool(
            np.array_equal(digests, reference)
            and all(digests[i].tobytes() == e for i, e in zip(sample, expected, strict=True))
        )

    # 1. deid's numba kernel
    report("numba: first calls in fresh processes (empty numba cache, then filled)")
    first = numba_first_calls(n, ROOT)
    key = prf.Key.for_salt(SALT)
    prf.digests(key, PREFIX, values[:10])  # this process's own compile or cache load, not timed
    best, runs, (reference, _) = best_of(lambda: prf.digests(key, PREFIX, values), repeats)
    ok = all(reference[i].tobytes() == e for i, e in zip(sample, expected, strict=True))
    for label, what in (("compile", "empty cache: compile"), ("cache_load", "cache filled: load")):
        f = first[label]
        fixed = max(0.0, f["first_call"] - f["second_call"])  # the compile or cache load
        row(
            f"deid numba kernel, first call ({what})",
            f["first_call"],
            "yes (numba, llvmlite)",
            f"fresh process: first call {f['first_call']:.2f} s, the same call again "
            f"{f['second_call']:.2f} s; "
            f"import of deid.vector.prf {f['import']:.2f} s before it",
            ok,
            per_1m=f["first_call"] + f["second_call"] * (scale - 1),  # the rest of 1M at the warm rate
            fixed_seconds=round(fixed, 3),
            runs=[round(f["first_call"], 4)],
        )
    row("deid numba kernel, warm", best, "yes (numba, llvmlite)", "deid.vector.prf.digests", ok, runs=runs)

    # 2. numpy SHA-256
    mid = prf.Key.for_salt(SALT).mid
    assert np.array_equal(np_midstate(key_bytes), mid)
    head = PREFIX.encode() + SEPARATOR
    best, runs, out = best_of(lambda: numpy_sha256(mid, head, data, starts, lens), repeats)
    row(
        "numpy SHA-256, vectorised across messages",
        best,
        "yes (numpy)",
        f"chunks of {CHUNK} messages, in-place ufuncs, midstate; about 3,300 ufunc calls per chunk and block",
        agrees(out),
        runs=runs,
    )

    # 3. numpy SipHash-2-4
    k16, msg, want = SIPHASH_VECTOR
    reference_ok = siphash24_reference(k16, msg) == want
    best, runs, sip = best_of(lambda: numpy_siphash24(key_bytes[:16], head, data, starts, lens), repeats)
    sip_ok = reference_ok and all(
        int(sip[i]) == siphash24_reference(key_bytes[:16], head + values[i].as_py().encode()) for i in sample
    )
    row(
        "numpy SipHash-2-4 (other output: speed only)",
        best,
        "yes (numpy)",
        "64-bit output, not SHA-256: would change every value; "
        f"checked against a scalar reference{' that reproduces the paper vector' if reference_ok else ''}",
        None,
        siphash_reference_agrees=sip_ok,
        runs=runs,
    )

    # 4. hashlib per value
    best, runs, out = best_of(lambda: hashlib_copy(key_bytes, values), repeats)
    whole, whole_runs, out2 = best_of(lambda: hashlib_whole(key_bytes, values), repeats)
    row(
        "hashlib.sha256 per value (Python loop)",
        best,
        "stdlib",
        f"keyed object copied per value, from Arrow (to_pylist) to digests; hashing K || m each time "
        f"instead: {whole * scale:.3f} s",
        agrees(out) and agrees(out2),
        runs=runs,
        whole_key_runs=whole_runs,
    )

    # 5. DuckDB in its side environment
    try:
        python = sidevenv.ensure("candidates", ["duckdb", "pyarrow", "numpy"], report)
        done = subprocess.run(
            [str(python), str(Path(__file__).resolve()), "--worker", "duckdb", "--values", str(n)]
            + ["--repeats", str(repeats), "--key", key_bytes.hex()],
            capture_output=True,
            text=True,
            check=True,
        )
        d = json.loads(done.stdout.strip().splitlines()[-1])
        row(
            f"DuckDB {d['duckdb']} sha256() over Arrow, threads=1",
            d["threads_1"]["seconds"],
            "yes (duckdb; side venv)",
            f"hashes K || m (no midstate), unhex of its hex result; threads=2: "
            f"{d['threads_2']['seconds'] * scale:.3f} s; sha256() alone over prebuilt K || m blobs: "
            f"{d['hash_only_prebuilt_blobs']['seconds'] * scale:.3f} s",
            d["hashlib_agrees"] and d["fingerprint"] == fingerprint(reference),
            runs=d["threads_1"]["runs"],
            duckdb=d,
        )
    except (subprocess.CalledProcessError, OSError, ValueError) as exc:
        tail = getattr(exc, "stderr", "") or str(exc)
        row("DuckDB sha256() over Arrow", None, "yes (duckdb; side venv)", f"failed: {tail.strip()[-300:]}")

    # 6. numba + OpenSSL through ctypes
    try:
        fresh = openssl_first_call(ROOT)
        kernel, keyed_context, library = openssl_kernel()
        keyed = keyed_context(key_bytes + head)
        started = time.perf_counter()
        openssl_digests(kernel, keyed, data, starts[:10], lens[:10])
        compile_seconds = time.perf_counter() - started
        best, runs, out = best_of(lambda: openssl_digests(kernel, keyed, data, starts, lens), repeats)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cached, _, _ = openssl_kernel(cache=True)
            openssl_digests(cached, keyed, data, starts[:2], lens[:2])
        cache_note = next(
            (str(w.message).split("\n")[0] for w in caught if "cache" in str(w.message).lower()),
            "no warning from numba",
        )
        row(
            "numba njit loop calling OpenSSL SHA256_Update/Final (ctypes), warm",
            best,
            "yes (numba) + the system's libcrypto",
            f"{Path(library).name} (SHA-NI); compile on every start, no cache: {fresh:.2f} s in a fresh "
            f"process ({compile_seconds:.2f} s with numba already warm); cache=True: {cache_note}",
            agrees(out),
            runs=runs,
            compile_seconds_fresh_process=round(fresh, 3),
            compile_seconds_warm_numba=round(compile_seconds, 3),
            cache_warning=cache_note,
        )
    except (OSError, AttributeError, subprocess.CalledProcessError) as exc:
        tail = getattr(exc, "stderr", "") or str(exc)
        row("numba + OpenSSL (ctypes)", None, "yes (numba)", f"not measured: {tail.strip()[-300:]}")

    facts = machine_facts()
    facts["sha_ni"] = "sha_ni" in Path("/proc/cpuinfo").read_text()
    return {
        "values": n,
        "prefix": PREFIX,
        "example": values[12345 % n].as_py(),
        "repeats": repeats,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": facts,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "numba": numba.__version__,
        },
        "candidates": rows,
    }


def markdown(result: dict) -> str:
    machine = result["machine"]
    lines = [
        f"### PRF candidates: {result['values']:,} values like `{result['example']}`, prefix "
        f"`{result['prefix']}`, best of {result['repeats']}",
        "",
        f"{machine.get('nproc')} cores ({machine.get('cpu', '?')}, SHA-NI "
        f"{'yes' if machine['sha_ni'] else 'no'}); "
        f"load average at start {machine['load_average'][0]}",
        "",
        "| candidate | seconds per 1M | µs/value | installs from wheels? | same digests as hashlib | notes |",
        "| --- | ---: | ---: | --- | --- | --- |",
    ]
    for r in result["candidates"]:
        secs = "–" if r["seconds_per_1m"] is None else f"{r['seconds_per_1m']:.3f}"
        us = "–" if r["us_per_value"] is None else f"{r['us_per_value']:.2f}"
        same = {True: "yes", False: "NO", None: "n/a"}[r["agrees_with_hashlib"]]
        lines.append(f"| {r['candidate']} | {secs} | {us} | {r['wheels']} | {same} | {r['notes']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.prf_candidates", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--values", type=int, default=DEFAULT_VALUES, help="values to hash (default 1M)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per candidate; the best is kept")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    parser.add_argument("--worker", choices=["duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "duckdb":
        print(json.dumps(duckdb_worker(args.values, args.repeats, bytes.fromhex(args.key))))
        return 0

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    from bench.servers import save_result

    result = run(args.values, args.repeats, report)
    result["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    table = markdown(result)
    print(table)
    if not args.no_save:
        save_result(f"{result['started'][:10]}-prf-candidates", result, table, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
