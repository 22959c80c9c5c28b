"""The SQL forms of fake.*: each fake's readable part in SQL, laid out with its tag and tail as the
definition (deid.transformers.fake.Fake) says; the documentation addresses and URLs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deid.backends.postgresql.forms.common import fit, hex_of, tag
from deid.backends.postgresql.forms.dictionaries import pick
from deid.backends.postgresql.forms.sql import SqlForm, cast, keyed
from deid.backends.postgresql.forms.support import doc_ipv4_sql, prf_int_sql
from deid.backends.postgresql.quoting import quote_literal
from deid.schema import Kind
from deid.transformers.base import Target
from deid.transformers.common import text_limit
from deid.transformers.fake import FAKES, Fake

Readable = Callable[[str, Mapping[str, Any]], str]  # (value SQL, params) -> SQL of the readable part


def _pick(dictionary: str, prefix: str) -> Readable:
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


_READABLE: dict[str, Readable] = {
    "fake.first_name": _pick("first_name", "fake.first_name"),
    "fake.last_name": _pick("last_name", "fake.last_name"),
    "fake.name": _full_name,
    "fake.email": _email_local,
    "fake.phone": _phone,
    "fake.street_address": _pick("street_address", "fake.street_address"),
    "fake.company": _pick("company", "fake.company"),
    "fake.user_name": _pick("user_name", "fake.user_name"),
}


def _fake(fake: Fake, readable: Readable) -> SqlForm:
    """The readable part, then the unique tag and the tail, the readable part shortened to fit the type."""

    def sql(target: Target, params: Mapping[str, Any]) -> str:
        suffix_text, suffix_sql = fake.tail(params), []
        if params["unique"]:
            suffix_sql.append(f"{quote_literal(fake.separator)} || {tag(fake.name, target.value)}")
        if suffix_text:
            suffix_sql.append(quote_literal(suffix_text))
        suffix = " || ".join(suffix_sql)
        laid_out = fit(readable(target.value, params), suffix, fake.suffix_len(params), text_limit(target))
        return cast(laid_out, target.sql_type)

    return sql


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


FORMS: dict[str, SqlForm] = {
    **{fake.name: _fake(fake, _READABLE[fake.name]) for fake in FAKES},
    "fake.ipv4": _ipv4,
    "fake.ipv6": _ipv6,
    "fake.url": _url,
}
