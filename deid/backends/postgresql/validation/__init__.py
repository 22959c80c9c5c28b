"""PostgreSQL's validation dialect (deid.backends.base.ValidationDialect): every SQL text the validate step
sends to a PostgreSQL server. deid.expect says what each check means and what passes; the modules here
spell it: names and the session (names.py), the suite and the quick checks (suites.py), the transformers'
shapes (shapes.py), the PII scan (pii.py), the leak checks (leaks.py), the free-text check (free_text.py).
"""

from __future__ import annotations

from deid.backends.postgresql.validation import shapes
from deid.backends.postgresql.validation.free_text import identifier_sql, identifiers_found, token_digests
from deid.backends.postgresql.validation.gx import gx_regex_as_deid, gx_table
from deid.backends.postgresql.validation.leaks import found_in_production, leak_counts, leak_sample
from deid.backends.postgresql.validation.names import (
    gx_engine_options,
    literal,
    quote_ident,
    quote_table,
    session,
)
from deid.backends.postgresql.validation.pii import kept_text, pii_scan_query
from deid.backends.postgresql.validation.suites import (
    count_rows,
    orphans_query,
    row_count_query,
    sample_digests,
    sequence_high_water,
    sequence_query,
    shapes_query,
    static_rows_bounded_query,
    static_rows_digest_query,
    static_rows_query,
    unique_query,
)

__all__ = [
    "count_rows",
    "found_in_production",
    "gx_engine_options",
    "gx_regex_as_deid",
    "gx_table",
    "identifier_sql",
    "identifiers_found",
    "kept_text",
    "leak_counts",
    "leak_sample",
    "literal",
    "orphans_query",
    "pii_scan_query",
    "quote_ident",
    "quote_table",
    "row_count_query",
    "sample_digests",
    "sequence_high_water",
    "sequence_query",
    "session",
    "shapes",
    "shapes_query",
    "static_rows_bounded_query",
    "static_rows_digest_query",
    "static_rows_query",
    "token_digests",
    "unique_query",
]
