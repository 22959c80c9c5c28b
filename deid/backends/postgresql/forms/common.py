"""Pieces of SQL that several forms share: fitting a fake into a length limit, keyed hex and tags, and the
keyed message of `by:` transformers."""

from __future__ import annotations

from deid.backends.postgresql.forms.sql import keyed
from deid.backends.postgresql.forms.support import prf_hex_sql
from deid.schema import Kind
from deid.transformers.base import Target
from deid.transformers.common import TAG_HEX


def fit(readable: str, suffix: str, suffix_len: int, limit: int | None) -> str:
    """`readable || suffix`, shortening the readable part so the whole fits `limit` and the suffix survives.

    A shortened part loses trailing separators, so a cut never leaves "a..tag" or "Mary -tag".
    """
    if limit is None:
        return f"{readable} || {suffix}" if suffix else readable
    if not suffix:
        return f"left({readable}, {limit})"
    return f"rtrim(left({readable}, {limit - suffix_len}), ' .-_') || {suffix}"


def hex_of(prefix: str, value_sql: str, length: int) -> str:
    """`length` hex characters of the keyed hash of the value (at most 64)."""
    return prf_hex_sql(keyed(prefix, value_sql), length)


def tag(prefix: str, value_sql: str) -> str:
    """A keyed 80-bit tag: appended to fake values that must stay distinct."""
    return hex_of(prefix + ".tag", value_sql, TAG_HEX)


def canonical(target: Target) -> str:
    """The value in a form no session setting changes, for keying: the text of a timestamptz follows TimeZone,
    of a date DateStyle, of a float extra_float_digits; epoch seconds and numeric text follow nothing."""
    if target.kind in (Kind.DATE, Kind.TIMESTAMP):
        return f"extract(epoch from {target.value})"
    if target.kind is Kind.FLOAT:
        return f"({target.value})::numeric"
    return target.value


def by_key(prefix: str, target: Target, by: str) -> str:
    """The keyed message of `by:` transformers: the entity's column; the value when `by` is empty or NULL."""
    own = keyed(prefix, canonical(target))
    if not by:
        return own
    assert target.row is not None, "an SQL form's target names the row's columns (sql.sql_target)"
    return f"coalesce({keyed(prefix + '.by', target.row(by))}, {own})"
