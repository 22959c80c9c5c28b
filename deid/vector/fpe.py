"""The keyed permutation of n-digit numbers behind `hash` format digits (support.py's `fpe_digits` and its
round-table twin `fpe_rounds` / `fpe{n}_rounds`), over int64 arrays: the same values bit for bit.

A number x of n digits is split into a = x // 10^v (u = n // 2 digits) and b = x % 10^v (v = n - u digits).
Round i (0..9) computes c = (a + F_i(b)) mod m_i, with m_i = 10^u on even rounds and 10^v on odd ones, then
a, b = b, c; the result is a * 10^v + b. F_i(b) is prf_int(tweak || chr(31) || n || chr(31) || i || chr(31)
|| b), b written in decimal without leading zeros, as the SQL form writes a bigint into text.

SQL computes `mod(a + F, m)`; here it is `(a + F mod m) mod m`, the same number without the int64 overflow
that SQL would report (a + F can pass 2^63 with probability about 2^-33 per value, where SQL raises).

Two ways to get F_i(b), with identical values (as in SQL): ten PRF calls per value, or, for n <= 10, a
round table holding F_i(b) mod m_i for every b, built once per key and n (up to 10^6 PRF calls, 4 MB) and
then read with `take`. The table pays off once a batch has a tenth of its entries, or when it is cached.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.transformers.keying import FEISTEL_ROUNDS, MAX_DIGITS, ROUND_TABLE_MAX_DIGITS, round_table_entries
from deid.vector import prf

Tables = tuple[np.ndarray, ...]  # one int32 array per round: F_i(b) mod m_i at index b

# Round tables by id(key): the Key is a frozen dataclass holding an ndarray, so it cannot be a dict key
# itself. A weak reference guards against a new Key reusing a dead one's id (its tables would be wrong), and
# drops the entry when the key goes away, so no key's tables outlive it.
_TABLES: dict[int, tuple[weakref.ref, dict[tuple[str, int], Tables]]] = {}
_LOCK = threading.RLock()  # re-entrant: a weakref callback may run while it is held


def _halves(n: int) -> tuple[int, int]:
    """(10^u, 10^v): the moduli of the even and odd rounds."""
    u = n // 2
    return 10**u, 10 ** (n - u)


def _round_prefix(tweak: str, n: int, i: int) -> str:
    """The message of round i without its last part (chr(31) || b, added by prf.ints)."""
    return f"{tweak}\x1f{n}\x1f{i}"


def _decimal(numbers: np.ndarray) -> pa.Array:
    """Non-negative int64s as decimal text, as the SQL form writes a bigint into text."""
    return pc.cast(pa.array(numbers, pa.int64()), pa.string())


def _cached(key: prf.Key, tweak: str, n: int) -> Tables | None:
    with _LOCK:
        entry = _TABLES.get(id(key))
    if entry is None or entry[0]() is not key:
        return None
    return entry[1].get((tweak, n))


def _store(key: prf.Key, tweak: str, n: int, tables: Tables) -> None:
    ident = id(key)
    with _LOCK:
        entry = _TABLES.get(ident)
        if entry is None or entry[0]() is not key:
            ref = weakref.ref(key, lambda _, ident=ident: _forget(ident))
            entry = _TABLES[ident] = (ref, {})
        entry[1][(tweak, n)] = tables


def _forget(ident: int) -> None:
    with _LOCK:
        entry = _TABLES.get(ident)
        if entry is not None and entry[0]() is None:
            del _TABLES[ident]


def round_tables(key: prf.Key, tweak: str, n: int) -> Tables:
    """The round table of n-digit numbers (n <= 10), as fpe_rounds builds it: for round i, F_i(b) mod m_i
    for every b of the other half (10^v values on even rounds, 10^u on odd ones). Cached per key."""
    if not 1 <= n <= ROUND_TABLE_MAX_DIGITS:
        raise ValueError(f"round tables are for 1 to {ROUND_TABLE_MAX_DIGITS} digits, not {n}")
    tables = _cached(key, tweak, n)
    if tables is not None:
        return tables
    with _LOCK:  # built once: the stream's other transform thread waits for it instead of building it too
        tables = _cached(key, tweak, n)
        if tables is None:
            tables = _build(key, tweak, n)
            _store(key, tweak, n, tables)
    return tables


def _build(key: prf.Key, tweak: str, n: int) -> Tables:
    mu, mv = _halves(n)
    built = []
    for i in range(FEISTEL_ROUNDS):
        modulus, entries = (mu, mv) if i % 2 == 0 else (mv, mu)
        f, _ = prf.ints(key, _round_prefix(tweak, n, i), _decimal(np.arange(entries, dtype=np.int64)))
        built.append((f % modulus).astype(np.int32))
    return tuple(built)


def permute(
    key: prf.Key, tweak: str, n: int, x: np.ndarray, tables: bool | None = None, rows: int = 0
) -> np.ndarray:
    """fpe_digits(lpad(x, n, '0'), tweak) as int64, for each x in [0, 10^n) (int64 array).

    `tables`: True / False force the round-table / PRF-per-value way (tests compare them); None chooses,
    counting the `rows` of the whole table when x is one batch of it (the table is built once per key).
    """
    if not 1 <= n <= MAX_DIGITS:
        raise ValueError(f"the permutation takes 1 to {MAX_DIGITS} digits, not {n}")
    x = np.asarray(x, np.int64)
    if len(x) and (x.min() < 0 or x.max() >= 10**n):
        raise ValueError(f"the permutation takes numbers of {n} digits")
    mu, mv = _halves(n)
    if tables is None:
        tables = n <= ROUND_TABLE_MAX_DIGITS and (
            _cached(key, tweak, n) is not None or round_table_entries(n) <= FEISTEL_ROUNDS * max(len(x), rows)
        )
    rounds = round_tables(key, tweak, n) if tables else None
    a, b = x // mv, x % mv
    for i in range(FEISTEL_ROUNDS):
        modulus = mu if i % 2 == 0 else mv
        if rounds is not None:
            f = np.take(rounds[i], b).astype(np.int64)
        else:
            f, _ = prf.ints(key, _round_prefix(tweak, n, i), _decimal(b))
            f %= modulus
        a, b = b, (a + f) % modulus
    return a * mv + b
