"""How hard validation looks: sample sizes and thresholds, with defaults sized for a nightly run.

A database's `validation:` mapping in deid.yaml sets any of these; unknown keys are errors. Row limits take a
whole number ≥ 1, or `all` (every row: slower, but nothing goes unread), kept here as None.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from deid.yamlmodel import STRICT

# "all" is kept as None (every row), which is not itself a value to write
Rows = Annotated[int, Field(ge=1)] | Literal["all"]
Hits = Annotated[int, Field(ge=0)]


class Settings(BaseModel):
    model_config = STRICT

    sample_rows: Annotated[int, Field(ge=1)] = Field(
        1000,
        description="Leak check: rows per table matched by primary key between production and the "
        "working copy",
    )
    search_production: bool = Field(
        True,
        description="Leak check: look for the sampled scrubbed values in the whole of production's column "
        "(one scan of the production table per table with such columns); false: only the same-row comparison",
    )
    pii_scan_rows: Rows = Field(
        100_000, description="PII scan: rows per table read from the kept text columns (all: every row)"
    )
    pii_max_hits: Hits = Field(
        0, description="PII scan: a kept column fails when more of its rows than this match one pattern"
    )
    free_text_rows: Rows = Field(
        20_000,
        description="Free text: rows per kept text column whose tokens are compared with production's "
        "identifiers (all: every row)",
    )
    free_text_max_hits: Hits = Field(
        0,
        description="Free text: a kept column fails when more distinct production identifiers than this "
        "occur in it",
    )

    @field_validator("pii_scan_rows", "free_text_rows", mode="after")
    @classmethod
    def _all_rows(cls, value: int | str | None) -> int | None:
        return None if value == "all" else value  # None: every row
