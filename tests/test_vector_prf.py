"""The PRF over Arrow arrays gives, bit for bit, what the SQL forms give inside PostgreSQL."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pyarrow as pa
import pytest
import sqlalchemy as sa

from deid.backends.postgresql.forms.support import (
    apply_key,
    prf_hex_sql,
    prf_int_sql,
    prf_unit_sql,
    support_sql,
)
from deid.transformers.keying import prf_key
from deid.vector import prf
from tests.conftest import ROOT

SALT = "vector-test-salt-not-a-secret"
# ASCII, multi-byte UTF-8, empty, NULL, and lengths around the 55/56 and 119/120 byte block boundaries
VALUES = ["a", "", None, "Zoë Ñandú 東京", "x" * 49, "x" * 50, "x" * 51, "y" * 113, "y" * 114, "z" * 300]


def test_digests_match_hashlib():
    key = prf_key(SALT)
    raw, valid = prf.digests(prf.Key.for_salt(SALT), "hash", pa.array(VALUES))
    for i, value in enumerate(VALUES):
        assert bool(valid[i]) == (value is not None)
        if value is not None:
            assert raw[i].tobytes() == hashlib.sha256(key + b"hash\x1f" + value.encode()).digest(), value


@pytest.mark.parametrize("offset", [0, 7])
def test_repeated_values_keyed_once_give_every_row_its_own_digest(monkeypatch, offset: int):
    """A batch that repeats a few values (a names column) is keyed once per distinct value: every row still
    gets hashlib's digest of its own value, NULL rows a zero digest, also in a slice of a longer array."""
    key = prf_key(SALT)
    rows = [VALUES[(i * 7) % len(VALUES)] for i in range(3 * prf.PROBE)]
    values = pa.array(["pad"] * offset + rows).slice(offset)
    keyed = []
    kernel = prf.sha256.digests
    monkeypatch.setattr(prf.sha256, "digests", lambda *a: keyed.append(len(a[3]) - 1) or kernel(*a))
    raw, valid = prf.digests(prf.Key.for_salt(SALT), "hash", values)
    assert keyed == [len(VALUES) - 1], "each distinct value keyed once (NULL is not a value)"
    assert len(raw) == len(rows) and valid.sum() == sum(v is not None for v in rows)
    for i, value in enumerate(rows):
        expected = bytes(32) if value is None else hashlib.sha256(key + b"hash\x1f" + value.encode()).digest()
        assert raw[i].tobytes() == expected, i


@pytest.mark.parametrize("nulls", [1.0, 0.9])
def test_a_batch_of_nulls_keys_nothing_and_gives_zero_digests(nulls: float):
    """A nullable column whose batch is all NULL (or nearly) counts as repeats: no distinct value to key,
    or one; NULL rows get zero digests and no validity, the others their own digest."""
    key = prf_key(SALT)
    n = 3 * prf.PROBE
    rows = [None if i < nulls * n else "x" for i in range(n)]
    raw, valid = prf.digests(prf.Key.for_salt(SALT), "hash", pa.array(rows, pa.string()))
    assert raw.shape == (n, 32) and valid.tolist() == [r is not None for r in rows]
    expected = hashlib.sha256(key + b"hash\x1fx").digest()
    assert all(raw[i].tobytes() == (bytes(32) if r is None else expected) for i, r in enumerate(rows))


def test_sliced_and_chunked_arrays_read_their_own_values():
    values = pa.array(VALUES)
    key = prf.Key.for_salt(SALT)
    whole = prf.hexes(key, "p", values).to_pylist()
    assert prf.hexes(key, "p", values.slice(3, 4)).to_pylist() == whole[3:7]
    chunked = pa.chunked_array([values.slice(0, 5), values.slice(5)])
    assert prf.hexes(key, "p", chunked).to_pylist() == whole


@pytest.mark.one_server
def test_same_bits_as_the_sql_forms(pg_url):
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        for statement in support_sql():
            c.exec_driver_sql(statement)
        apply_key(c, SALT)
        c.exec_driver_sql("CREATE TEMP TABLE v (i int, t text)")
        c.execute(sa.text("INSERT INTO v VALUES (:i, :t)"), [{"i": i, "t": t} for i, t in enumerate(VALUES)])
        message = "'use' || chr(31) || t"
        rows = c.exec_driver_sql(
            f"SELECT {prf_hex_sql(message)}, {prf_hex_sql(message, 21)}, {prf_int_sql(message)}, "
            f"{prf_unit_sql(message)} FROM v ORDER BY i"
        ).all()
    engine.dispose()
    key, values = prf.Key.for_salt(SALT), pa.array(VALUES)
    ints, _ = prf.ints(key, "use", values)
    units, _ = prf.units(key, "use", values)
    assert [r[0] for r in rows] == prf.hexes(key, "use", values).to_pylist()
    assert [r[1] for r in rows] == prf.hexes(key, "use", values, 21).to_pylist()
    given = [v is not None for v in VALUES]
    assert [r[2] for r in rows] == [int(n) if g else None for n, g in zip(ints, given, strict=True)]
    assert [r[3] for r in rows] == [float(u) if g else None for u, g in zip(units, given, strict=True)]


def test_the_key_is_not_shown():
    assert SALT not in repr(prf.Key.for_salt(SALT))
    assert prf_key(SALT).hex() not in repr(prf.Key.for_salt(SALT))


def test_making_a_key_runs_no_kernel():
    """A key is made by every scrub, also one of small tables only, whose SQL forms need no kernel: making
    it must not start numba's compiler (about 60 MB and a second or more per process). A fresh process."""
    script = (
        "import gc\n"
        "from numba.core.registry import CPUDispatcher\n"
        "from deid.vector import prf\n"
        "prf.Key.for_salt('s')\n"
        "print(sorted(o.py_func.__name__ for o in gc.get_objects()\n"
        "             if isinstance(o, CPUDispatcher) and o.signatures))\n"
    )
    out = in_a_fresh_process(script)
    assert out.strip() == "[]", out


def test_the_vector_forms_run_without_pandas_which_loads_later_as_usual():
    """pyarrow imports pandas (54 MB) at its first `pa.array` unless told there is none: the scrub's process
    runs the vector forms without it, and what needs pandas afterwards (Great Expectations) still gets it.
    A fresh process."""
    script = (
        "import sys\n"
        "import pyarrow as pa\n"
        "from deid.vector import digest64, prf\n"
        "key = prf.Key.for_salt('s')\n"
        "values = pa.array(['a@x.org', None, 'b@y.org'])\n"
        "hexed = prf.hexes(key, 'email', values)\n"
        "digest64.digests(values, 7)\n"
        "print('pandas' in sys.modules, hexed.null_count)\n"
        "import pandas\n"
        "print(len(pa.table({'a': [1, 2]}).to_pandas()), len(pa.array(pandas.Series([1, None]))))\n"
    )
    out = in_a_fresh_process(script)
    assert out.split("\n")[:2] == ["False 1", "2 2"], out


def test_numba_is_imported_by_the_first_kernel_not_by_deid():
    """The CLI, the rules and the steps import no numba (1.3 s and about 140 MB at start-up, for `deid lint`
    on a pull request too); the first kernel call imports it. A fresh process."""
    script = (
        "import sys\n"
        "import deid.cli, deid.run\n"
        "from deid.rules.load import load_rules\n"
        "deid.run.step_functions()\n"
        "load_rules('rules/learners.yaml')\n"
        "from deid.backends.postgresql import parts, scrub, stream\n"
        "print('numba' in sys.modules)\n"
        "import pyarrow as pa\n"
        "from deid.vector import prf\n"
        "prf.hexes(prf.Key.for_salt('s'), 'email', pa.array(['a']))\n"
        "print('numba' in sys.modules)\n"
    )
    assert in_a_fresh_process(script).split() == ["False", "True"]


def in_a_fresh_process(script: str) -> str:
    """What `script` prints, run by a new Python process (nothing imported or compiled yet)."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return done.stdout
