"""redact and generalize_zip: keep part of a text value, drop the rest. Not keyed: no salt involved."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deid.transformers.base import TEXT_KINDS, Param, Target, Transformer, cast, quote_literal
from deid.transformers.common import too_long

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
# ZIP5 or ZIP+4 (with or without the dash), surrounding blanks allowed; captures the ZIP3 unless restricted
_ZIP3 = r"^\s*((?!" + "|".join(RESTRICTED_ZIP3) + r")[0-9]{3})[0-9]{2}(?:-?[0-9]{4})?\s*$"


def _one_character(value: str) -> str | None:
    return None if len(value) == 1 else f"must be exactly one character, got {len(value)}"


def _redact(target: Target, params: Mapping[str, Any]) -> str:
    v, start, end = target.value, params["keep_start"], params["keep_end"]
    mask = quote_literal(params["mask"])
    # a value no longer than what would be kept is masked whole: redact never reveals an entire value
    expression = (
        f"CASE WHEN length({v}) <= {start + end} THEN repeat({mask}, length({v})) "
        f"ELSE left({v}, {start}) || repeat({mask}, length({v}) - {start + end}) || right({v}, {end}) END"
    )
    return cast(expression, target.sql_type)


def _generalize_zip(target: Target, params: Mapping[str, Any]) -> str:
    v = target.value
    zip3 = f"coalesce(substring({v} from {quote_literal(_ZIP3)}), '000')"
    if params["pad"]:
        zip3 += " || '00'"
    return cast(f"CASE WHEN {v} IS NULL THEN NULL ELSE {zip3} END", target.sql_type)


def _check_zip(target: Target, params: Mapping[str, Any]) -> str | None:
    return too_long(target, 5 if params["pad"] else 3, "generalize_zip")


TRANSFORMERS = (
    Transformer(
        name="redact",
        description="Mask a text value, keeping a few characters at either end. `keep_start` leading and "
        "`keep_end` trailing characters are kept and the output has the input's length; a value no longer "
        "than keep_start + keep_end is masked entirely. Cannot serve a unique column.",
        applies_to=TEXT_KINDS,
        sql=_redact,
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
        sql=_generalize_zip,
        params=(Param("pad", bool, "append '00' so the result has 5 digits, like a ZIP5", default=False),),
        check=_check_zip,
        unique_safe=False,
    ),
)
