"""Checks, parameters and limits that several transformers share."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deid.suggest import did_you_mean
from deid.transformers.base import Param, Target

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


def too_long(target: Target, length: int, what: str) -> str | None:
    limit = text_limit(target)
    if limit is not None and length > limit:
        return f"{what} needs {length} characters but {target.sql_type} holds {limit}"
    return None


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


def check_by(target: Target, params: Mapping[str, Any]) -> str | None:
    by = params.get("by", "")
    if by and target.columns and by not in target.columns:
        return f"by: column '{by}' is not a column of this table.{did_you_mean(by, target.columns)}"
    return None
