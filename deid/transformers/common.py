"""Pieces of SQL and checks that several transformers share."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deid.schema import Kind
from deid.suggest import did_you_mean
from deid.transformers.base import Param, Target, keyed
from deid.transformers.support import prf_hex_sql

TAG_HEX = 20  # 80 bits: a million distinct values collide with probability about 4e-13

_LENGTH_TYPE = re.compile(r"(?:character varying|varchar|character|char|bpchar)\((\d+)\)")
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")
RESERVED_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606, with their subdomains
RESERVED_TLDS = ("test", "example", "invalid")


def text_limit(target: Target) -> int | None:
    """The character limit of the target's type (varchar(n), char(n)), or None when it has none we know of."""
    found = _LENGTH_TYPE.fullmatch(target.sql_type.strip().lower())
    if found:
        return int(found.group(1))
    return target.column.max_length if target.sql_type == target.column.data_type else None


def fit(readable: str, suffix: str, suffix_len: int, limit: int | None) -> str:
    """`readable || suffix`, shortening the readable part so the whole fits `limit` and the suffix survives.

    A shortened part loses trailing separators, so a cut never leaves "a..tag" or "Mary -tag".
    """
    if limit is None:
        return f"{readable} || {suffix}" if suffix else readable
    if not suffix:
        return f"left({readable}, {limit})"
    return f"rtrim(left({readable}, {limit - suffix_len}), ' .-_') || {suffix}"


def too_long(target: Target, length: int, what: str) -> str | None:
    limit = text_limit(target)
    if limit is not None and length > limit:
        return f"{what} needs {length} characters but {target.sql_type} holds {limit}"
    return None


def hex_of(prefix: str, value_sql: str, length: int) -> str:
    """`length` hex characters of the keyed hash of the value (at most 64)."""
    return prf_hex_sql(keyed(prefix, value_sql), length)


def tag(prefix: str, value_sql: str) -> str:
    """A keyed 80-bit tag: appended to fake values that must stay distinct."""
    return hex_of(prefix + ".tag", value_sql, TAG_HEX)


def reserved_domain(value: Any) -> str | None:
    """Emails and URLs point only at domains that can never be registered (RFC 2606 / RFC 6761)."""
    if not _DOMAIN.fullmatch(value):
        return f"must be a lower-case domain name such as 'example.com', got {value!r}"
    reserved = any(value == d or value.endswith("." + d) for d in RESERVED_DOMAINS)
    if not reserved and value.rsplit(".", 1)[1] not in RESERVED_TLDS:
        return (
            f"must be a reserved domain (example.com, example.org, example.net, or a name ending in .test, "
            f".example or .invalid), got {value!r}"
        )
    return None


def domain_param(what: str) -> Param:
    return Param(
        "domain",
        str,
        f"domain of the {what}; only reserved domains, so no real address is ever hit",
        default="example.com",
        validate=reserved_domain,
    )


def by_param(what: str) -> Param:
    return Param(
        "by",
        str,
        f"a column of the same row (an entity id) whose keyed hash picks the {what}, so all "
        f"values of one entity move together across tables; empty: key on the value itself",
        default="",
    )


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
    return f"coalesce({keyed(prefix + '.by', target.row(by))}, {own})"


def check_by(target: Target, params: Mapping[str, Any]) -> str | None:
    by = params.get("by", "")
    if by and target.columns and by not in target.columns:
        return f"by: column '{by}' is not a column of this table.{did_you_mean(by, target.columns)}"
    return None
