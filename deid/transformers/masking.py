"""redact and generalize_zip: keep part of a text value, drop the rest. Not keyed: no salt involved."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from deid.transformers.base import TEXT_KINDS, Batch, Param, Target, Transformer
from deid.transformers.common import too_long
from deid.vector import prf
from deid.vector.textcast import sql_text

# HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(B): 3-digit ZIP areas with 20,000 people or fewer (2000 census)
RESTRICTED_ZIP3 = (
    "036",
    "059",
    "063",
    "102",
    "203",
    "556",
    "692",
    "790",
    "821",
    "823",
    "830",
    "831",
    "878",
    "879",
    "884",
    "890",
    "893",
)
# Blanks around a ZIP code: ASCII whitespace, spelled out. `\s` would differ between forms: RE2's (the vector
# form) is [\t\n\f\r ] (no \v), while an engine's regular expressions may follow the database's locale, which
# adds Unicode blanks.
BLANK = r"[ \t\n\v\f\r]*"
# ZIP5 or ZIP+4 (with or without the dash), surrounding blanks allowed. RE2 has no lookahead: the ZIP3 is
# captured whatever it is and the restricted ones are looked up afterwards
_ZIP3_RE2 = f"^{BLANK}(?P<zip3>[0-9]{{3}})[0-9]{{2}}(?:-?[0-9]{{4}})?{BLANK}$"


def _one_character(value: str) -> str | None:
    return None if len(value) == 1 else f"must be exactly one character, got {len(value)}"


def _redact_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    """As the SQL form: lengths and the kept ends count characters (code points), as SQL's length(), left()
    and right() do."""
    v, start, end = sql_text(batch.values, target.sql_type), params["keep_start"], params["keep_end"]
    length = pc.utf8_length(v)
    whole = pc.less_equal(length, start + end)  # masked entirely, as short as it is
    head = pc.if_else(whole, "", pc.utf8_slice_codeunits(v, 0, start))
    tail = pc.if_else(whole, "", pc.utf8_slice_codeunits(v, -end) if end else "")
    masked = pc.if_else(whole, length, pc.subtract(length, start + end))
    middle = pc.binary_repeat(pa.scalar(params["mask"], pa.string()), masked)
    return pc.binary_join_element_wise(head, middle, tail, "")


def _generalize_zip_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    values = prf.texts(batch.values)  # a char(n) value's padding is blanks the pattern allows: no trim needed
    zip3 = pc.struct_field(pc.extract_regex(values, _ZIP3_RE2), "zip3")
    zip3 = pc.if_else(pc.is_in(zip3, value_set=pa.array(RESTRICTED_ZIP3)), "000", zip3)
    zip3 = pc.coalesce(zip3, "000")
    if params["pad"]:
        zip3 = pc.binary_join_element_wise(zip3, "00", "")
    return pc.if_else(values.is_valid(), zip3, pa.scalar(None, pa.string()))


def _check_zip(target: Target, params: Mapping[str, Any]) -> str | None:
    return too_long(target, 5 if params["pad"] else 3, "generalize_zip")


TRANSFORMERS = (
    Transformer(
        name="redact",
        description="Mask a text value, keeping a few characters at either end. `keep_start` leading and "
        "`keep_end` trailing characters are kept and the output has the input's length; a value no longer "
        "than keep_start + keep_end is masked entirely. Cannot serve a unique column.",
        applies_to=TEXT_KINDS,
        vector=_redact_vector,
        params=(
            Param(
                "keep_start", int, "leading characters kept as they are", default=0, minimum=0, maximum=100
            ),
            Param("keep_end", int, "trailing characters kept as they are", default=4, minimum=0, maximum=100),
            Param("mask", str, "the character written over the others", default="*", validate=_one_character),
        ),
        unique_safe=False,
    ),
    Transformer(
        name="generalize_zip",
        description="Generalise a US ZIP code to its first three digits. ZIP5 or ZIP+4 become their ZIP3, "
        "and the 17 sparsely populated 3-digit areas of HIPAA Safe Harbor become 000. A value that is not a "
        "ZIP code becomes 000 too (it is never kept, and NOT NULL columns still load). `pad: true` appends "
        "00 to keep 5 characters.",
        applies_to=TEXT_KINDS,
        vector=_generalize_zip_vector,
        params=(Param("pad", bool, "append '00' so the result has 5 digits, like a ZIP5", default=False),),
        check=_check_zip,
        unique_safe=False,
    ),
)
