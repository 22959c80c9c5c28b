"""hash's SQL form: hex of the keyed hash, digits from the keyed permutation laid into a pattern, an email
address, or a uuid."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deid.backends.postgresql.forms.common import hex_of
from deid.backends.postgresql.forms.sql import cast, keyed
from deid.backends.postgresql.forms.support import SCHEMA, uuid_sql
from deid.backends.postgresql.quoting import quote_literal
from deid.schema import Kind
from deid.transformers.base import Target
from deid.transformers.keying import ROUND_TABLE_MAX_DIGITS, round_table_entries


def _formatted(digits_sql: str, pattern: str) -> str:
    """Digits laid into the pattern: each '#' takes the next digit, other characters are copied."""
    runs = re.findall("#+|[^#]+", pattern)
    if len(runs) == 1:
        return digits_sql
    if not any(c in pattern for c in '"\\'):
        # to_char lays n digits out in one call, about a tenth of regexp_replace with groups; the value is
        # exactly n digits (< 10^18), so zero placeholders give the same text
        layout = "FM" + "".join("0" * len(r) if r[0] == "#" else f'"{r}"' for r in runs)
        return f"to_char(({digits_sql})::bigint, {quote_literal(layout)})"
    regex = "^" + "".join(f"([0-9]{{{len(r)}}})" for r in runs if r[0] == "#") + "$"
    replacement, group = "", 0
    for run in runs:
        if run[0] == "#":
            group += 1
            replacement += f"\\{group}"
        else:
            replacement += run.replace("\\", "\\\\")
    return f"regexp_replace({digits_sql}, {quote_literal(regex)}, {quote_literal(replacement)})"


def _digits_input(target: Target, n: int) -> str:
    """The value as text; integers are zero-padded to n digits so 12345 and '000012345' hash alike."""
    v = target.value
    if target.kind is Kind.INTEGER:
        return f"CASE WHEN {v} >= 0 AND {v} < {10**n} THEN lpad(({v})::text, {n}, '0') ELSE ({v})::text END"
    return f"({v})::text"


def _hash_digits(value_sql: str, n: int, rows: int) -> str:
    """hash_digits, or for a table with more rows than its round table has entries, the same permutation
    from a round table built once per statement (an uncorrelated subquery): ten PRF calls per value become
    ten byte reads. Both give identical values."""
    if n <= ROUND_TABLE_MAX_DIGITS and rows >= round_table_entries(n):
        rounds = f"(SELECT {SCHEMA}.fpe_rounds('hash.digits', {n}))"
        return f"{SCHEMA}.hash{n}_digits_rounds({value_sql}, {rounds})"
    return f"{SCHEMA}.hash_digits({value_sql}, {n})"


def _hash(target: Target, params: Mapping[str, Any]) -> str:
    fmt = params["format"]
    if target.kind is Kind.UUID:
        # keyed on the canonical text (lower-case, hyphenated), so a key and the foreign keys that reference
        # it, in any table, get the same uuid
        return cast(uuid_sql(keyed("hash.uuid", target.value)), target.sql_type)
    if fmt == "digits":
        pattern = params["pattern"]
        n = pattern.count("#")
        digits = _hash_digits(_digits_input(target, n), n, target.rows)
        return cast(_formatted(digits, pattern), target.sql_type)
    hexed = hex_of("hash", target.value, params["length"])
    if fmt == "email":
        hexed += f" || {quote_literal('@' + params['domain'])}"
    return cast(hexed, target.sql_type)


FORMS = {"hash": _hash}
