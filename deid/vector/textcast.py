"""What CAST(v AS text) gives in SQL, from the text output a vector form reads (deid.transformers.base.Batch).

They differ for one kind of text column: char(n) (bpchar) outputs its value padded with spaces to n, while
its cast to text, and length(), left() and right() on it, drop trailing spaces. Every other text type
(text, varchar, name, citext) reads as its own text.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from deid.vector import prf

_BPCHAR = re.compile(r"(?:character|char|bpchar)(?:\s*\(\s*\d+\s*\))?")


def is_bpchar(sql_type: str) -> bool:
    return _BPCHAR.fullmatch(sql_type.strip().lower()) is not None


def sql_text(values: pa.Array, sql_type: str) -> pa.Array:
    """`values` (text output of a `sql_type` column) as CAST(v AS text) would give them."""
    values = prf.texts(values)
    return pc.utf8_rtrim(values, characters=" ") if is_bpchar(sql_type) else values
