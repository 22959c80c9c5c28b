"""fake.*: realistic-looking replacements picked by keyed hash, from Faker dictionaries or reserved ranges.

Output depends only on the value, the salt and the parameters, never on the column, so a value and the
columns that reference it (foreign keys, copies in other tables) get the same fake. That is why uniqueness is
a parameter (`unique: true` appends an 80-bit keyed tag) rather than a property of the column: a unique
column must set it, and its references then set it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deid.schema import Kind
from deid.transformers.base import TEXT_KINDS, Param, Target, Transformer, cast, keyed, quote_literal
from deid.transformers.common import TAG_HEX, domain_param, fit, hex_of, tag, text_limit, too_long
from deid.transformers.dictionaries import pick
from deid.transformers.support import doc_ipv4_sql, prf_int_sql

Sql = Callable[[str, Mapping[str, Any]], str]  # (value SQL, params) -> SQL


@dataclass(frozen=True)
class Fake:
    """A fake text made of a readable part, an optional unique tag, and a fixed tail (an email's domain)."""

    name: str
    description: str
    readable: Sql
    dictionaries: tuple[str, ...] = ()
    separator: str = "-"  # between the readable part and the tag
    tail: Callable[[Mapping[str, Any]], str] = lambda params: ""
    unique_by_default: bool = False
    extra: tuple[Param, ...] = ()

    def sql(self, target: Target, params: Mapping[str, Any]) -> str:
        readable = self.readable(target.value, params)
        suffix_text, suffix_sql = self.tail(params), []
        if params["unique"]:
            suffix_sql.append(f"{quote_literal(self.separator)} || {tag(self.name, target.value)}")
        if suffix_text:
            suffix_sql.append(quote_literal(suffix_text))
        suffix = " || ".join(suffix_sql)
        return cast(fit(readable, suffix, self._suffix_len(params), text_limit(target)), target.sql_type)

    def _suffix_len(self, params: Mapping[str, Any]) -> int:
        return len(self.tail(params)) + (len(self.separator) + TAG_HEX if params["unique"] else 0)

    def check(self, target: Target, params: Mapping[str, Any]) -> str | None:
        if target.unique and not params["unique"]:
            return (
                f"{self.name} on a unique column needs unique: true (it appends an 80-bit keyed tag); give "
                "the columns that reference it the same parameters"
            )
        return too_long(target, self._suffix_len(params) + 1, self.name)

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
            sql=self.sql,
            params=(*self.extra, unique),
            dictionaries=self.dictionaries,
            check=self.check,
        )


def _pick(dictionary: str, prefix: str) -> Sql:
    return lambda v, params: pick(dictionary, keyed(prefix, v))


def _full_name(v: str, params: Mapping[str, Any]) -> str:
    first, last = (
        pick("first_name", keyed("fake.name.first", v)),
        pick("last_name", keyed("fake.name.last", v)),
    )
    return f"{first} || ' ' || {last}"


# an email's local part keeps lower-case letters, digits and dots of the names: applied to each dictionary
# entry once per statement, not to every row
_EMAIL_PART = "regexp_replace(lower(value), '[^a-z0-9.]', '', 'g')"


def _email_local(v: str, params: Mapping[str, Any]) -> str:
    first, last = (
        pick("first_name", keyed("fake.email.first", v), entry=_EMAIL_PART),
        pick("last_name", keyed("fake.email.last", v), entry=_EMAIL_PART),
    )
    return f"{first} || '.' || {last}"


def _phone(v: str, params: Mapping[str, Any]) -> str:
    # five digits AAAYY, area code AAA in 200..999, laid into +1-AAA-555-01YY: 555-0100..0199 is reserved
    # for fiction in every North American area code
    digits = f"(20000 + mod({prf_int_sql(keyed('fake.phone', v))}, 80000))"
    return f'to_char({digits}, \'FM"+1-"000"-555-01"00\')'


FAKES = (
    Fake(
        "fake.first_name",
        "A fake given name (Faker en_US), picked by keyed hash.",
        _pick("first_name", "fake.first_name"),
        ("first_name",),
    ),
    Fake(
        "fake.last_name",
        "A fake family name (Faker en_US), picked by keyed hash.",
        _pick("last_name", "fake.last_name"),
        ("last_name",),
    ),
    Fake(
        "fake.name",
        "A fake full name: a first and a last name picked independently by keyed hash.",
        _full_name,
        ("first_name", "last_name"),
        separator=" ",
    ),
    Fake(
        "fake.email",
        "A fake email address first.last@domain on a reserved domain, picked by keyed hash. unique is true "
        "by default, so the address carries an 80-bit tag (first.last.<tag>@domain) and emails stay "
        "distinct and consistent across tables.",
        _email_local,
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
        _phone,
        separator=" x",
    ),
    Fake(
        "fake.street_address",
        "A fake street address (Faker en_US), picked by keyed hash.",
        _pick("street_address", "fake.street_address"),
        ("street_address",),
        separator=" ",
    ),
    Fake(
        "fake.company",
        "A fake company name (Faker en_US), picked by keyed hash.",
        _pick("company", "fake.company"),
        ("company",),
        separator=" ",
    ),
    Fake(
        "fake.user_name",
        "A fake user name (Faker en_US), picked by keyed hash. unique is true by default (user names are "
        "usually unique): the name carries an 80-bit tag, user_<tag>.",
        _pick("user_name", "fake.user_name"),
        ("user_name",),
        separator="_",
        unique_by_default=True,
    ),
)


def _ipv4(target: Target, params: Mapping[str, Any]) -> str:
    address = doc_ipv4_sql(keyed("fake.ipv4", target.value))
    return cast(address if target.kind is Kind.INET else f"host({address})", target.sql_type)


def _ipv6(target: Target, params: Mapping[str, Any]) -> str:
    groups = f"rtrim(regexp_replace({hex_of('fake.ipv6', target.value, 24)}, '(.{{4}})', '\\1:', 'g'), ':')"
    address = f"('2001:db8:' || {groups})::inet"
    return cast(address if target.kind is Kind.INET else f"host({address})", target.sql_type)


def _url(target: Target, params: Mapping[str, Any]) -> str:
    return cast(
        f"{quote_literal('https://' + params['domain'] + '/')} || {hex_of('fake.url', target.value, 32)}",
        target.sql_type,
    )


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
        sql=_ipv4,
        check=_fits(15, "fake.ipv4"),
        unique_safe=False,
    ),
    Transformer(
        name="fake.ipv6",
        description="A fake IPv6 address in the documentation prefix 2001:db8::/32. 96 keyed bits (RFC "
        "3849), so distinct values stay distinct.",
        applies_to=ADDRESS_KINDS,
        sql=_ipv6,
        check=_fits(39, "fake.ipv6"),
    ),
    Transformer(
        name="fake.url",
        description="A fake URL on a reserved domain. https://<domain>/<32 hex>: 128 keyed bits, so "
        "distinct values stay distinct.",
        applies_to=TEXT_KINDS,
        sql=_url,
        params=(domain_param("URLs"),),
        check=lambda target, params: too_long(target, len(params["domain"]) + 41, "fake.url"),
    ),
)
