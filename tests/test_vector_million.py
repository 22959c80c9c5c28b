"""Unique columns stay unique at a million rows: hash's keyed digit permutation and fake.email's tag.

Run through the vector forms, in memory: they give exactly the SQL forms' values (test_vector_forms, on
every server), so what holds for a million values here holds for the scrub by either form.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from deid.schema import Kind
from deid.transformers import get
from deid.transformers.base import Batch
from deid.vector.prf import Key
from tests.test_transformers_pg import SALT, target

MILLION = 1_000_000


def vector(transformer: str, values: pa.Array, sql_type: str, params: dict) -> pa.Array:
    form = get(transformer)
    batch = Batch(values=values, key=Key.for_salt(SALT), row=lambda name: values)
    return form.vector(
        batch, target(sql_type, Kind.TEXT, unique=True, rows=len(values)), form.parse_params(params)
    )


def ssns() -> pa.Array:
    """A million distinct SSNs: g -> 7919 g + 12345 (mod 10^9) is one-to-one."""
    numbers = (np.arange(1, MILLION + 1, dtype=np.int64) * 7919 + 12345) % 1_000_000_000
    return pa.array([f"{n // 1000000:03d}-{n // 10000 % 100:02d}-{n % 10000:04d}" for n in numbers.tolist()])


@pytest.mark.slow
def test_hash_digits_keeps_a_million_ssns_unique():
    before = ssns()
    after = vector("hash", before, "varchar(11)", {"format": "digits"})
    assert pc.count_distinct(after).as_py() == MILLION
    assert pc.all(pc.match_substring_regex(after, r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$")).as_py()
    fixed = pc.sum(pc.equal(before, after)).as_py()
    assert fixed <= 3, f"{fixed} fixed points: a keyed permutation has almost none"


@pytest.mark.slow
def test_fake_email_keeps_a_million_emails_unique():
    before = pa.array([f"learner{g}@corp.example" for g in range(1, MILLION + 1)])
    after = vector("fake.email", before, "text", {})
    assert pc.count_distinct(after).as_py() == MILLION
    assert pc.all(pc.match_substring_regex(after, r"^[a-z0-9.]+[.][0-9a-f]{20}@example[.]com$")).as_py()
