"""fake.*: realistic-looking replacements picked by keyed hash, from Faker dictionaries or reserved ranges.

Output depends only on the value, the salt and the parameters, never on the column, so a value and the
columns that reference it (foreign keys, copies in other tables) get the same fake. That is why uniqueness is
a parameter (`unique: true` appends an 80-bit keyed tag) rather than a property of the column: a unique
column must set it, and its references then set it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from deid.schema import Kind
from deid.transformers.base import TEXT_KINDS, Batch, Param, Target, Transformer
from deid.transformers.common import TAG_HEX, domain_param, text_limit, too_long
from deid.vector import inet, prf, text

if TYPE_CHECKING:  # deid.vector.prf imports this package: its names exist only once both are loaded
    from deid.vector.prf import Key

# (key, values as keyed text, params) -> the readable part, for every value at once
Vector = Callable[["Key", pa.Array, Mapping[str, Any]], pa.Array]


@dataclass(frozen=True)
class Fake:
    """A fake text made of a readable part, an optional unique tag, and a fixed tail (an email's domain). An
    engine's SQL form lays out the same parts (its readable part keyed by the fake's name)."""

    name: str
    description: str
    readable_vector: Vector
    dictionaries: tuple[str, ...] = ()
    separator: str = "-"  # between the readable part and the tag
    tail: Callable[[Mapping[str, Any]], str] = lambda params: ""
    unique_by_default: bool = False
    extra: tuple[Param, ...] = ()

    def vector(self, batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
        values = text.keyed_texts(batch.values, target)
        suffix: list[str | pa.Array] = []
        if params["unique"]:
            suffix += [self.separator, text.tag(batch.key, self.name, values)]
        if self.tail(params):
            suffix.append(self.tail(params))
        readable = self.readable_vector(batch.key, values, params)
        return text.fit(readable, suffix, self.suffix_len(params), text_limit(target))

    def suffix_len(self, params: Mapping[str, Any]) -> int:
        """Characters after the readable part: the tag and its separator, and the tail."""
        return len(self.tail(params)) + (len(self.separator) + TAG_HEX if params["unique"] else 0)

    def check(self, target: Target, params: Mapping[str, Any]) -> str | None:
        if target.unique and not params["unique"]:
            return (
                f"{self.name} on a unique column needs unique: true (it appends an 80-bit keyed tag); give "
                "the columns that reference it the same parameters"
            )
        return too_long(target, self.suffix_len(params) + 1, self.name)

    def transformer(self) -> Transformer:
        unique = Param(
            "unique",
            bool,
            "append a keyed 80-bit tag so that distinct values give distinct outputs "
            "(needed on unique columns)",
            default=self.unique_by_default,
        )
        return Transformer(
            name=self.name,
            description=self.description,
            applies_to=TEXT_KINDS,
            vector=self.vector,
            params=(*self.extra, unique),
            dictionaries=self.dictionaries,
            check=self.check,
        )


def _pick_vector(dictionary: str, prefix: str) -> Vector:
    return lambda key, values, params: text.pick(key, dictionary, prefix, values)


def _full_name_vector(key: Key, values: pa.Array, params: Mapping[str, Any]) -> pa.Array:
    first = text.pick(key, "first_name", "fake.name.first", values)
    return text.join(first, " ", text.pick(key, "last_name", "fake.name.last", values))


def _email_part(entry: str) -> str:
    """An email's local part keeps the lower-case letters, digits and dots of the names: this, applied to
    each dictionary entry once, is the vector form's copy of the SQL form's entry expression. A database's
    lower() of non-ASCII letters may follow its locale, which Python cannot follow: the dictionaries are ASCII
    (a test says so), and a non-ASCII entry fails here rather than pick something else than the SQL."""
    if not entry.isascii():
        raise ValueError(f"fake.email: dictionary entry {entry!r} is not ASCII")
    return re.sub("[^a-z0-9.]", "", entry.lower())


def _email_local_vector(key: Key, values: pa.Array, params: Mapping[str, Any]) -> pa.Array:
    first = text.pick(key, "first_name", "fake.email.first", values, entry=_email_part)
    return text.join(first, ".", text.pick(key, "last_name", "fake.email.last", values, entry=_email_part))


_PHONE = np.frombuffer(b"+1-000-555-0100", np.uint8)
_AREA, _LINE = (3, 4, 5), (13, 14)  # where the digits AAA and YY go in _PHONE


def _phone_vector(key: Key, values: pa.Array, params: Mapping[str, Any]) -> pa.Array:
    n, valid = prf.ints(key, "fake.phone", values)
    # five digits AAAYY, area code AAA in 200..999, laid into +1-AAA-555-01YY: 555-0100..0199 is reserved
    # for fiction in every North American area code
    digits = 20000 + n % 80000
    out = np.tile(_PHONE, (len(n), 1))
    for column, power in zip((*_AREA, *_LINE), (10**4, 10**3, 10**2, 10, 1), strict=True):
        out[:, column] += (digits // power % 10).astype(np.uint8)
    return prf.fixed_strings(out, valid)


FAKES = (
    Fake(
        "fake.first_name",
        "A fake given name (Faker en_US), picked by keyed hash.",
        _pick_vector("first_name", "fake.first_name"),
        ("first_name",),
    ),
    Fake(
        "fake.last_name",
        "A fake family name (Faker en_US), picked by keyed hash.",
        _pick_vector("last_name", "fake.last_name"),
        ("last_name",),
    ),
    Fake(
        "fake.name",
        "A fake full name: a first and a last name picked independently by keyed hash.",
        _full_name_vector,
        ("first_name", "last_name"),
        separator=" ",
    ),
    Fake(
        "fake.email",
        "A fake email address first.last@domain on a reserved domain, picked by keyed hash. unique is true "
        "by default, so the address carries an 80-bit tag (first.last.<tag>@domain) and emails stay "
        "distinct and consistent across tables.",
        _email_local_vector,
        ("first_name", "last_name"),
        separator=".",
        tail=lambda params: "@" + params["domain"],
        unique_by_default=True,
        extra=(domain_param("addresses"),),
    ),
    Fake(
        "fake.phone",
        "A fictional North American phone number, +1-AAA-555-01YY. 555-0100 to 555-0199 are reserved for "
        "fiction in every area code; picked by keyed hash.",
        _phone_vector,
        separator=" x",
    ),
    Fake(
        "fake.street_address",
        "A fake street address (Faker en_US), picked by keyed hash.",
        _pick_vector("street_address", "fake.street_address"),
        ("street_address",),
        separator=" ",
    ),
    Fake(
        "fake.company",
        "A fake company name (Faker en_US), picked by keyed hash.",
        _pick_vector("company", "fake.company"),
        ("company",),
        separator=" ",
    ),
    Fake(
        "fake.user_name",
        "A fake user name (Faker en_US), picked by keyed hash. unique is true by default (user names are "
        "usually unique): the name carries an 80-bit tag, user_<tag>.",
        _pick_vector("user_name", "fake.user_name"),
        ("user_name",),
        separator="_",
        unique_by_default=True,
    ),
)


# the 768 documentation addresses in the order the SQL form draws them: k picks 192.0.2.0/24 + k for k < 256,
# and so on. A host address's inet text and its host() text are both the bare address, no /32.
_DOC_IPV4 = tuple(f"{net}.{k}" for net in ("192.0.2", "198.51.100", "203.0.113") for k in range(256))


def _ipv4_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    n, valid = prf.ints(batch.key, "fake.ipv4", text.keyed_texts(batch.values, target))
    return text.take(text.strings(_DOC_IPV4), n % len(_DOC_IPV4), valid)


_DOC_IPV6 = np.array([0x2001, 0x0DB8], np.uint16)  # 2001:db8::/32 (RFC 3849)


def _ipv6_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    raw, valid = prf.digests(batch.key, "fake.ipv6", text.keyed_texts(batch.values, target))
    groups = np.ascontiguousarray(raw[:, :12]).view(">u2").reshape(-1, 6)  # as the SQL's 24 hex characters
    words = np.hstack([np.tile(_DOC_IPV6, (len(raw), 1)), groups])
    # an inet column: the server parses any spelling, and the full one is the cheapest to write; a text
    # column holds host(), so the server's own spelling
    return inet.full_texts(words, valid) if target.kind is Kind.INET else inet.ipv6_texts(words, valid)


def _url_vector(batch: Batch, target: Target, params: Mapping[str, Any]) -> pa.Array:
    hexed = prf.hexes(batch.key, "fake.url", text.keyed_texts(batch.values, target), 32)
    return text.join("https://" + params["domain"] + "/", hexed)


def _fits(length: int, what: str) -> Callable[[Target, Mapping[str, Any]], str | None]:
    return lambda target, params: too_long(target, length, what)


ADDRESS_KINDS = frozenset({Kind.TEXT, Kind.INET})

TRANSFORMERS = (
    *(f.transformer() for f in FAKES),
    Transformer(
        name="fake.ipv4",
        description="A fake IPv4 address from the reserved documentation ranges. 192.0.2.0/24, "
        "198.51.100.0/24 and 203.0.113.0/24 (RFC 5737), picked by keyed hash. 768 addresses only, so it "
        "cannot serve a unique column (use fake.ipv6).",
        applies_to=ADDRESS_KINDS,
        vector=_ipv4_vector,
        check=_fits(15, "fake.ipv4"),
        unique_safe=False,
    ),
    Transformer(
        name="fake.ipv6",
        description="A fake IPv6 address in the documentation prefix 2001:db8::/32. 96 keyed bits (RFC "
        "3849), so distinct values stay distinct.",
        applies_to=ADDRESS_KINDS,
        vector=_ipv6_vector,
        check=_fits(39, "fake.ipv6"),
    ),
    Transformer(
        name="fake.url",
        description="A fake URL on a reserved domain. https://<domain>/<32 hex>: 128 keyed bits, so "
        "distinct values stay distinct.",
        applies_to=TEXT_KINDS,
        vector=_url_vector,
        params=(domain_param("URLs"),),
        check=lambda target, params: too_long(target, len(params["domain"]) + 41, "fake.url"),
    ),
)
