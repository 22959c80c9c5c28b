"""Every transformer's SQL form on real PostgreSQL servers (each configured one).

One table of cases drives the common promises (deterministic across tables and sessions, keyed by the salt,
type kept, NULL kept, values changed); each case adds the checks of its own transformer.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from deid.backends.postgresql.forms import form
from deid.backends.postgresql.forms.dictionaries import load_dictionaries, slot
from deid.backends.postgresql.forms.sql import sql_target
from deid.backends.postgresql.forms.support import apply_key, support_sql
from deid.schema import Column, Kind
from deid.transformers import get
from deid.transformers.base import Target
from deid.transformers.common import text_limit
from deid.transformers.dictionaries import NAMES, entries
from deid.transformers.keying import prf_key
from deid.transformers.masking import RESTRICTED_ZIP3

SALT = "deid-test-salt-not-a-secret"
OTHER_SALT = "another-test-salt-not-a-secret"
Check = Callable[[list[str | None], list[str | None]], None]  # (inputs, outputs), both as text


# --- helpers: make a table, apply a transform, fetch the values --------------------------------------------


@pytest.fixture
def db(pg_url: str):
    """A fresh database with the _deid support objects and every dictionary; sessions are never pooled, so
    each `transform` runs in a session of its own."""
    engine = prepared(pg_url)
    yield engine
    engine.dispose()


def prepared(url: str) -> sa.Engine:
    """An engine on `url` (sessions never pooled) whose database has the _deid support objects and every
    dictionary."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        for statement in support_sql():
            c.exec_driver_sql(statement)
        load_dictionaries(c, NAMES)
    return engine


def make_table(
    engine: sa.Engine,
    table: str,
    sql_type: str,
    values: Sequence[str | None],
    *,
    unique: bool = False,
    entities: Sequence[int] | None = None,
) -> None:
    """Table (id, v, entity) with the values in id order; `entity` is an id for `by:` transformers."""
    entities = list(entities) if entities is not None else list(range(len(values)))
    with engine.begin() as c:
        c.exec_driver_sql(
            f"CREATE TABLE {table} (id int PRIMARY KEY, v {sql_type}{' UNIQUE' if unique else ''}, "
            "entity int)"
        )
        c.exec_driver_sql(
            f"INSERT INTO {table} (id, v, entity) SELECT i, v::{sql_type}, e "
            "FROM unnest(%(v)s::text[], %(e)s::int[]) WITH ORDINALITY AS d(v, e, i)",
            {"v": list(values), "e": entities},
        )


def target(sql_type: str, kind: Kind, unique: bool = False, rows: int = 0) -> Target:
    found = re.search(r"\((\d+)\)", sql_type) if "char" in sql_type else None
    column = Column("v", sql_type, kind, max_length=int(found.group(1)) if found else None)
    return Target(
        column=column,
        kind=kind,
        sql_type=sql_type,
        unique=unique,
        columns=("id", "v", "entity"),
        rows=rows,
    )


def transform(
    engine: sa.Engine,
    table: str,
    sql_type: str,
    kind: Kind,
    name: str,
    params: Mapping[str, Any],
    *,
    salt: str = SALT,
    unique: bool = False,
    time_zone: str = "UTC",
    fetch: bool = True,
    rows: int = 0,
) -> list[str | None]:
    """Apply a transformer to column v of `table` in a new session (in `time_zone`); the new values as text
    (read in UTC), in id order, unless `fetch` is false."""
    transformer = get(name)
    parsed = transformer.parse_params(params)
    where = target(sql_type, kind, unique, rows)
    assert transformer.cannot_apply(where, parsed) is None
    sql = form(name)(sql_target(where, '"v"'), parsed)
    with engine.connect() as c:
        apply_key(c, salt)
        c.exec_driver_sql(f"SET TimeZone = '{time_zone}'")
        same_type = c.exec_driver_sql(f"SELECT pg_typeof({sql}) = pg_typeof(v) FROM {table} LIMIT 1").scalar()
        assert same_type, f"{name} changes the type of {sql_type}"
        c.exec_driver_sql(f"UPDATE {table} SET v = {sql}")
        c.commit()
    return values_of(engine, f"SELECT v::text FROM {table} ORDER BY id") if fetch else []


def values_of(engine: sa.Engine, sql: str) -> list[Any]:
    with engine.connect() as c:
        apply_key(c, SALT)
        c.exec_driver_sql("SET TimeZone = 'UTC'")
        return c.exec_driver_sql(sql).scalars().all()


# --- checks of single transformers ---------------------------------------------------------------------


def differing(engine: sa.Engine, rows_sql: str, one: str, other: str) -> int:
    """How many rows of `FROM rows_sql` give different values for the expressions `one` and `other`."""
    where = " AND " if " WHERE " in rows_sql else " WHERE "
    return values_of(engine, f"SELECT count(*) FROM {rows_sql}{where}({one}) IS DISTINCT FROM ({other})")[0]


def each(predicate: Callable[[str, str], bool]) -> Check:
    def check(inputs: list[str | None], outputs: list[str | None]) -> None:
        for i, o in zip(inputs, outputs, strict=True):
            if i is not None:
                assert predicate(i, o), f"{i!r} -> {o!r}"

    return check


def matches(pattern: str) -> Check:
    return each(lambda i, o: re.fullmatch(pattern, o) is not None)


def in_dictionary(name: str) -> Check:
    return each(lambda i, o: o in entries(name))


def in_networks(*networks: str) -> Check:
    nets = [ipaddress.ip_network(n) for n in networks]
    return each(lambda i, o: any(ipaddress.ip_interface(o).ip in n for n in nets))


def redacted(i: str, o: str) -> bool:
    return len(o) == len(i) and (o == "*" * len(i) if len(i) <= 4 else o == "*" * (len(i) - 4) + i[-4:])


def zip_generalised(i: str, o: str) -> bool:
    found = re.fullmatch(r"\s*([0-9]{3})[0-9]{2}(-?[0-9]{4})?\s*", i)
    zip3 = found.group(1) if found and found.group(1) not in RESTRICTED_ZIP3 else "000"
    return o == zip3 + "00"


def within(relative: float) -> Callable[[str, str], bool]:
    return lambda i, o: abs(Decimal(o) - Decimal(i)) <= abs(Decimal(i)) * Decimal(relative) + 1


def shifted(days: int, parse: Callable[[str], Any], unit: float) -> Callable[[str, str], bool]:
    return lambda i, o: (
        1 <= abs((parse(o) - parse(i)).total_seconds() / unit) <= days
        and ((parse(o) - parse(i)).total_seconds() % unit == 0)
    )


def day_of(text: str) -> datetime:
    return datetime.combine(date.fromisoformat(text), datetime.min.time())


def json_paths(expected: Callable[[Any, Any], bool]) -> Check:
    return each(lambda i, o: expected(json.loads(i), json.loads(o)))


def profile_scrubbed(i: Any, o: Any) -> bool:
    """JSON_PATHS applied: the four paths changed where present, everything else as it was."""
    if not isinstance(i, dict) or "contact" not in i:
        return o == i
    assert o["contact"]["email"].endswith("@example.com") and o["contact"]["email"] != i["contact"]["email"]
    if i["contact"]["phone"] is None:
        assert o["contact"]["phone"] is None, "JSON null stays null"
    else:
        assert re.fullmatch(r"\+1-[2-9][0-9]{2}-555-01[0-9]{2}", o["contact"]["phone"])
    assert ("ssn" in o) == ("ssn" in i) and o.get("ssn") is None
    assert o["keep"] == i["keep"] and o["items"][1:] == i["items"][1:]
    assert re.fullmatch(r"[0-9a-f]{32}", o["items"][0]["id"])
    return True


# --- the cases -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    transformer: str
    params: dict[str, Any]
    sql_type: str
    kind: Kind
    values: tuple[str | None, ...]  # written as text, cast to sql_type; always ends with a NULL
    check: Check | None = None
    keyed: bool = True  # the salt changes the output
    changes: bool = True  # every non-NULL value changes
    unique: bool = False


NAMES_IN = ("Alice Smith", "Bob Jones", "Carol White", "Dan Brown", "Eve Black", "Alice Smith", None)
EMAILS_IN = ("alice@corp.io", "bob@corp.io", "carol@mail.io", "dan@mail.io", None)
ZIPS = ("02139", "03601", "10027-1234", "79012", "893", "abcde", "  94103 ", "123456789", None)
DATES = ("1980-02-29", "2001-07-15", "1999-12-31", "2024-03-10", None)
STAMPS = ("2024-03-10 01:30:00+00", "2024-11-03 08:15:00+00", "1999-12-31 23:59:59+00", None)
DOCS = (
    '{"contact": {"email": "a@corp.io", "phone": "617-555-1234"}, "ssn": "123-45-6789", '
    '"keep": [1, 2], "items": [{"id": "x1"}, {"id": "x2"}]}',
    '{"contact": {"email": "b@corp.io", "phone": null}, "keep": {"a": 1}, "items": [{"id": "y1"}, 5]}',
    '{"other": true}',
    "[1, 2, 3]",
    '"just a string"',
    None,
)
JSON_PATHS = {
    "$.contact.email": "fake.email",
    "$.contact.phone": {"transformer": "fake.phone"},
    "$.ssn": "null",
    "$.items[0].id": {"transformer": "hash", "params": {"format": "hex", "length": 32}},
}


CASES = (
    Case("null", "null", {}, "text", Kind.TEXT, ("a", "b", None), each(lambda i, o: o is None), keyed=False),
    Case(
        "constant-varchar",
        "constant",
        {"value": "n/a"},
        "varchar(5)",
        Kind.TEXT,
        ("alpha", "beta", None),
        each(lambda i, o: o == "n/a"),
        keyed=False,
    ),
    Case(
        "constant-date",
        "constant",
        {"value": "2000-01-01"},
        "date",
        Kind.DATE,
        DATES,
        each(lambda i, o: o == "2000-01-01"),
        keyed=False,
    ),
    Case(
        "redact",
        "redact",
        {},
        "text",
        Kind.TEXT,
        ("4242424242424242", "378282246310005", "1234", "12", None),
        each(redacted),
        keyed=False,
    ),
    Case(
        "redact-char",
        "redact",
        {"keep_start": 1, "keep_end": 1, "mask": "#"},
        "varchar(8)",
        Kind.TEXT,
        ("abcdefgh", "xyz", None),
        each(lambda i, o: o == i[0] + "#" * (len(i) - 2) + i[-1]),
        keyed=False,
    ),
    Case(
        "hash-hex",
        "hash",
        {},
        "text",
        Kind.TEXT,
        ("ab-123", "ab-124", "ab-123", None),
        matches("[0-9a-f]{32}"),
    ),
    Case(
        "hash-hex-64",
        "hash",
        {"length": 64},
        "varchar(64)",
        Kind.TEXT,
        ("secret1", "secret2", None),
        matches("[0-9a-f]{64}"),
        unique=True,
    ),
    Case(
        "hash-ssn",
        "hash",
        {"format": "digits"},
        "varchar(11)",
        Kind.TEXT,
        ("123-45-6789", "123-45-6780", "987654321", "12-34", None),
        matches(r"[0-9]{3}-[0-9]{2}-[0-9]{4}"),
        unique=True,
    ),
    Case(
        "hash-int",
        "hash",
        {"format": "digits", "pattern": "#########"},
        "integer",
        Kind.INTEGER,
        ("12345", "123456789", "-5", "2147483647", None),
        each(lambda i, o: 0 <= int(o) < 10**9),
    ),
    Case(
        "hash-email",
        "hash",
        {"format": "email", "domain": "mail.test"},
        "text",
        Kind.TEXT,
        EMAILS_IN,
        matches(r"[0-9a-f]{32}@mail\.test"),
    ),
    Case("first_name", "fake.first_name", {}, "text", Kind.TEXT, NAMES_IN, in_dictionary("first_name")),
    Case("last_name", "fake.last_name", {}, "varchar(80)", Kind.TEXT, NAMES_IN, in_dictionary("last_name")),
    Case(
        "name",
        "fake.name",
        {},
        "text",
        Kind.TEXT,
        NAMES_IN,
        each(lambda i, o: o.split(" ")[0] in entries("first_name") and " " in o),
    ),
    Case(
        "name-unique",
        "fake.name",
        {"unique": True},
        "varchar(30)",
        Kind.TEXT,
        NAMES_IN[:5] + (None,),
        matches(r".{1,9} [0-9a-f]{20}"),
        unique=True,
    ),
    Case(
        "email",
        "fake.email",
        {},
        "text",
        Kind.TEXT,
        EMAILS_IN,
        matches(r"[a-z0-9.]+\.[0-9a-f]{20}@example\.com"),
        unique=True,
    ),
    Case(
        "email-short",
        "fake.email",
        {"domain": "example.org"},
        "varchar(40)",
        Kind.TEXT,
        EMAILS_IN,
        matches(r"[a-z0-9.]{0,7}\.[0-9a-f]{20}@example\.org"),
        unique=True,
    ),
    Case(
        "email-untagged",
        "fake.email",
        {"unique": False},
        "text",
        Kind.TEXT,
        EMAILS_IN,
        matches(r"[a-z]+\.[a-z]+@example\.com"),
    ),
    Case(
        "phone",
        "fake.phone",
        {},
        "text",
        Kind.TEXT,
        ("617-555-1234", "+44 20 7946 0000", None),
        matches(r"\+1-[2-9][0-9]{2}-555-01[0-9]{2}"),
    ),
    Case(
        "street",
        "fake.street_address",
        {},
        "text",
        Kind.TEXT,
        ("1 Main St", "2 Elm St", None),
        in_dictionary("street_address"),
    ),
    Case(
        "company", "fake.company", {}, "text", Kind.TEXT, ("Acme", "Initech", None), in_dictionary("company")
    ),
    Case(
        "user_name",
        "fake.user_name",
        {},
        "text",
        Kind.TEXT,
        ("alice", "bob", None),
        each(lambda i, o: o[:-21] in entries("user_name") and re.fullmatch(r"_[0-9a-f]{20}", o[-21:])),
    ),
    Case(
        "ipv4-inet",
        "fake.ipv4",
        {},
        "inet",
        Kind.INET,
        ("10.1.2.3", "172.16.0.1", "2001:db8::5", None),
        in_networks("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"),
    ),
    Case(
        "ipv4-text",
        "fake.ipv4",
        {},
        "text",
        Kind.TEXT,
        ("10.1.2.3", "8.8.8.8", None),
        in_networks("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"),
    ),
    Case(
        "ipv6-inet",
        "fake.ipv6",
        {},
        "inet",
        Kind.INET,
        ("10.1.2.3", "fe80::1", None),
        in_networks("2001:db8::/32"),
        unique=True,
    ),
    Case(
        "ipv6-text",
        "fake.ipv6",
        {},
        "varchar(39)",
        Kind.TEXT,
        ("10.1.2.3", "fe80::1", None),
        in_networks("2001:db8::/32"),
    ),
    Case(
        "url",
        "fake.url",
        {},
        "text",
        Kind.TEXT,
        ("https://alice.me/cv", "http://bob.io", None),
        matches(r"https://example\.com/[0-9a-f]{32}"),
        unique=True,
    ),
    Case(
        "shift-date", "shift_date", {"days": 10}, "date", Kind.DATE, DATES, each(shifted(10, day_of, 86400))
    ),
    Case(
        "shift-timestamptz",
        "shift_date",
        {"days": 3650},
        "timestamptz",
        Kind.TIMESTAMP,
        STAMPS,
        each(shifted(3650, datetime.fromisoformat, 86400)),
    ),
    Case(
        "truncate-month",
        "truncate_date",
        {},
        "date",
        Kind.DATE,
        DATES,
        matches(r"[0-9]{4}-[0-9]{2}-01"),
        keyed=False,
    ),
    Case(
        "truncate-year-tz",
        "truncate_date",
        {"unit": "year"},
        "timestamptz",
        Kind.TIMESTAMP,
        STAMPS,
        matches(r"[0-9]{4}-01-01 00:00:00\+00"),
        keyed=False,
    ),
    Case(
        "truncate-week",
        "truncate_date",
        {"unit": "week"},
        "timestamp",
        Kind.TIMESTAMP,
        ("2024-03-13 10:00:00", "2024-03-17 23:00:00", None),
        each(lambda i, o: datetime.fromisoformat(o).isoweekday() == 1),
        keyed=False,
    ),
    Case(
        "zip",
        "generalize_zip",
        {"pad": True},
        "varchar(10)",
        Kind.TEXT,
        ZIPS,
        each(zip_generalised),
        keyed=False,
    ),
    Case(
        "zip3",
        "generalize_zip",
        {},
        "text",
        Kind.TEXT,
        ("02139", "03601", None),
        each(lambda i, o: o == {"02139": "021", "03601": "000"}[i]),
        keyed=False,
    ),
    Case(
        "noise-int",
        "noise",
        {"relative": 0.2},
        "int4",
        Kind.INTEGER,
        ("100000", "250000", "-70000", None),
        each(within(0.2)),
    ),
    Case(
        "noise-numeric",
        "noise",
        {},
        "numeric(10,2)",
        Kind.NUMERIC,
        ("1234.56", "99.99", "5000000.00", None),
        each(within(0.1)),
    ),
    Case(
        "noise-float", "noise", {"relative": 1}, "float8", Kind.FLOAT, ("3.5", "1e10", None), each(within(1))
    ),
    Case(
        "json-jsonb",
        "json",
        {"paths": JSON_PATHS},
        "jsonb",
        Kind.JSON,
        DOCS,
        json_paths(profile_scrubbed),
        changes=False,
    ),
    Case(
        "json-json",
        "json",
        {"paths": {"$.contact.email": "fake.email"}},
        "json",
        Kind.JSON,
        DOCS[:3] + (None,),
        json_paths(lambda i, o: o.get("contact", {}).get("email", "@example.com").endswith("@example.com")),
        changes=False,
    ),
)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_transformer_sql(db: sa.Engine, case: Case):
    make_table(db, "a", case.sql_type, case.values, unique=case.unique)
    make_table(db, "b", case.sql_type, case.values, unique=case.unique)
    make_table(db, "c", case.sql_type, case.values, unique=case.unique)
    inputs = values_of(db, "SELECT v::text FROM a ORDER BY id")
    first = transform(db, "a", case.sql_type, case.kind, case.transformer, case.params, unique=case.unique)
    again = transform(
        db,
        "b",
        case.sql_type,
        case.kind,
        case.transformer,
        case.params,
        unique=case.unique,
        time_zone="America/New_York",
    )
    assert first == again, "same value, salt and parameters: same output in another table and session"
    other = transform(
        db, "c", case.sql_type, case.kind, case.transformer, case.params, salt=OTHER_SALT, unique=case.unique
    )
    if case.keyed:
        assert other != first, "another salt gives other outputs"
    for (i, o), (j, p) in itertools.combinations(zip(inputs, first, strict=True), 2):
        assert i != j or o == p, "equal values give equal outputs"
    for i, o in zip(inputs, first, strict=True):
        if i is None:
            assert o is None, "NULL stays NULL"
        elif case.changes and case.transformer != "null":
            assert o != i, f"{case.transformer} left {i!r} unchanged"
    limit = text_limit(target(case.sql_type, case.kind))
    if limit:
        assert all(o is None or len(o) <= limit for o in first)
    if case.check:
        case.check(inputs, first)


# --- the keyed hash, the permutation, the key --------------------------------------------------------------

LONG_SALT = "a salt longer than the 64-byte SHA-256 block, which the key derivation takes whole: " * 2


def prf(salt: str, message: str) -> bytes:
    """deid's PRF computed here: SHA-256 of the 64-byte key then the message's UTF-8 bytes."""
    return hashlib.sha256(prf_key(salt) + message.encode()).digest()


@pytest.mark.parametrize("salt", [SALT, LONG_SALT, "é€ unicode salt"], ids=["short", "long", "unicode"])
def test_sql_prf_is_sha256_of_key_then_message(db: sa.Engine, salt: str):
    expected = prf(salt, "abc")
    with db.connect() as c:
        apply_key(c, salt)
        got, as_int, unit, other = c.exec_driver_sql(
            "SELECT _deid.prf('abc'), _deid.prf_int('abc'), _deid.prf_unit('abc'), _deid.prf('é€')"
        ).one()
    assert bytes(got) == expected and bytes(other) == prf(salt, "é€")
    assert as_int == int.from_bytes(expected[:8], "big") & (2**63 - 1)
    assert unit == (as_int >> 10) / 2**53 and 0 <= unit < 1


def test_prf_written_out_in_a_statement_equals_the_functions(db: sa.Engine):
    """The form statements use (the key as a once-per-statement sub-SELECT) gives the functions' exact bytes,
    on many messages in one statement, NULL included."""
    from deid.backends.postgresql.forms.support import prf_hex_sql, prf_int_sql, prf_sql, prf_unit_sql

    messages = "(VALUES ('abc'), (''), ('é€ ünïcode'), (NULL), (repeat('x', 300))) AS m(v)"
    m = "m.v"
    with db.connect() as c:
        apply_key(c, SALT)
        rows = c.exec_driver_sql(
            f"SELECT {prf_sql(m)} IS NOT DISTINCT FROM _deid.prf(m.v), "
            f"{prf_hex_sql(m)} IS NOT DISTINCT FROM _deid.prf_hex(m.v), "
            f"{prf_int_sql(m)} IS NOT DISTINCT FROM _deid.prf_int(m.v), "
            f"{prf_unit_sql(m)} IS NOT DISTINCT FROM _deid.prf_unit(m.v), "
            f"{prf_hex_sql(m, 20)} IS NOT DISTINCT FROM left(_deid.prf_hex(m.v), 20), "
            f"{prf_hex_sql(m, 7)} IS NOT DISTINCT FROM left(_deid.prf_hex(m.v), 7), {prf_int_sql(m)} IS NULL "
            f"FROM {messages} UNION ALL SELECT true, true, true, true, true, true, false "
            f"FROM generate_series(1, 1000) g WHERE {prf_int_sql('g::text')} <> _deid.prf_int(g::text)"
        ).all()
    assert [row[:6] for row in rows] == [(True,) * 6] * 5  # the 1,000 numbers add no row
    assert [row[6] for row in rows] == [False, False, False, True, False]  # NULL in, NULL out


def test_keyed_shift_and_documentation_address_are_the_published_formulas(db: sa.Engine):
    """shift_days_sql and doc_ipv4_sql give, for every message, exactly what the formulas of the earlier
    plpgsql functions gave (computed here in Python from the PRF): values do not change with the speed-up."""
    import ipaddress

    from deid.backends.postgresql.forms.support import doc_ipv4_sql, shift_days_sql

    def prf_int(message: str) -> int:
        return int.from_bytes(prf(SALT, message)[:8]) & (2**63 - 1)

    with db.connect() as c:
        apply_key(c, SALT)
        rows = c.exec_driver_sql(
            f"SELECT g::text, {shift_days_sql('g::text', 180)}, {doc_ipv4_sql('g::text')}::text, "
            f"{shift_days_sql('NULL::text', 3)} FROM generate_series(1, 500) g"
        ).all()
    bases = [ipaddress.ip_address(a) for a in ("192.0.2.0", "198.51.100.0", "203.0.113.0")]
    for message, shift, address, of_null in rows:
        k = prf_int(message) % 360
        assert shift == (k - 180 if k < 180 else k - 179)
        k = prf_int(message) % 768
        assert address == f"{bases[k // 256] + k % 256}/32" and of_null is None
    shifts = {shift for _, shift, _, _ in rows}
    assert 0 not in shifts and len(shifts) > 200 and min(shifts) < 0 < max(shifts)  # spread, never still


def test_without_a_key_keyed_sql_fails_closed(db: sa.Engine):
    with db.connect() as c, pytest.raises(sa.exc.DBAPIError, match="unrecognized configuration parameter"):
        c.exec_driver_sql("SELECT _deid.prf('abc')")


def test_a_failing_key_handoff_does_not_reveal_the_key(db: sa.Engine):
    from deid.errors import TerminalError

    with db.connect() as c:
        with pytest.raises(sa.exc.DBAPIError):
            c.exec_driver_sql("SELECT 1/0")  # the transaction is now aborted: the next statement fails
        with pytest.raises(TerminalError) as caught:
            apply_key(c, SALT)
    told = repr(caught.value) + repr(caught.value.__cause__) + repr(caught.value.__context__)
    assert "InFailedSqlTransaction" in told
    assert SALT not in told and prf_key(SALT).hex() not in told


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_fpe_digits_permutes_every_n_digit_string(db: sa.Engine, n: int):
    outputs = values_of(
        db, f"SELECT _deid.fpe_digits(lpad(g::text, {n}, '0'), 'test') FROM generate_series(0, {10**n - 1}) g"
    )
    assert sorted(outputs) == [str(i).zfill(n) for i in range(10**n)]


@pytest.mark.parametrize("n", range(1, 11))
def test_fpe_round_table_gives_the_same_permutation(db: sa.Engine, n: int):
    """The round-table form (big tables; its ten rounds written out per length) and the ten-PRF form give
    the same value for every input tried: all n-digit strings up to 4 digits, the edges and 5,000 spread
    values beyond."""
    values = f"lpad(g::text, {n}, '0') FROM generate_series(0, {10**n - 1}) g"
    if n > 4:
        values = (
            f"lpad(mod(g * 7919 + 12345, {10**n})::text, {n}, '0') FROM generate_series(0, 4999) g "
            f"UNION ALL SELECT v FROM unnest(ARRAY['{'0' * n}', '{'9' * n}', '{'0' * (n - 1)}1']) v"
        )
    assert (
        differing(
            db,
            f"(SELECT {values}) d(v)",
            "_deid.fpe_digits(v, 't')",
            f"_deid.fpe{n}_rounds(v, (SELECT _deid.fpe_rounds('t', {n})))",
        )
        == 0
    )


def test_hash_digits_takes_the_round_table_for_big_tables_with_the_same_values(db: sa.Engine):
    values = ["123-45-6789", "000-00-0000", "12-345", "987654321", None, "n/a", "999-99-9999"]
    make_table(db, "small_t", "varchar(11)", values)
    make_table(db, "big_t", "varchar(11)", values)
    sql = transform(db, "small_t", "varchar(11)", Kind.TEXT, "hash", {"format": "digits"})
    big = transform(db, "big_t", "varchar(11)", Kind.TEXT, "hash", {"format": "digits"}, rows=10**6)
    assert big == sql and big[0] != values[0] and big[4] is None
    params = {"format": "digits", "pattern": "###-##-####"}
    small_form = form("hash")(sql_target(target("varchar(11)", Kind.TEXT), '"v"'), params)
    big_form = form("hash")(sql_target(target("varchar(11)", Kind.TEXT, rows=10**6), '"v"'), params)
    assert "fpe_rounds" not in small_form and "fpe_rounds" in big_form


def test_fpe_digits_depends_on_the_key_and_tweak(db: sa.Engine):
    one = values_of(db, "SELECT _deid.fpe_digits('123456789', t) FROM unnest(ARRAY['a', 'b']) t")
    assert one[0] != one[1] and all(re.fullmatch("[0-9]{9}", o) for o in one)


def test_shift_date_by_entity_moves_all_dates_of_one_entity_together(db: sa.Engine):
    """Every date of one entity moves by the same nonzero amount, in every table; a row without an entity is
    keyed on its value."""
    tables = {
        "visits": [
            (1, "2020-01-01"),
            (1, "2021-06-30"),
            (2, "2020-01-01"),
            (3, "2010-10-10"),
            (None, "2000-05-05"),
        ],
        "claims": [(3, "1999-01-01"), (1, "1999-12-31"), (2, "2022-02-02"), (None, "2000-05-05")],
    }
    shifts: dict[Any, int] = {}
    for table, rows in tables.items():
        entities, dates = zip(*rows, strict=True)
        make_table(db, table, "date", dates, entities=entities)
        out = transform(db, table, "date", Kind.DATE, "shift_date", {"days": 365, "by": "entity"})
        for entity, before, after in zip(entities, dates, out, strict=True):
            delta = (date.fromisoformat(after) - date.fromisoformat(before)).days
            assert 1 <= abs(delta) <= 365
            key = entity if entity is not None else before
            assert shifts.setdefault(key, delta) == delta, f"{key} moved by two amounts"
    assert len(set(shifts.values())) > 1, "different entities move differently"


@pytest.mark.parametrize("name", NAMES)
def test_a_dictionary_slot_is_its_entry(db: sa.Engine, name: str):
    """The fixed-width layout that picks read gives back every entry exactly, multi-byte ones included."""
    assert differing(db, f"_deid.dictionary WHERE name = '{name}'", "value", slot(name, "idx")) == 0


def test_dictionaries_load_idempotently(db: sa.Engine):
    with db.begin() as c:
        load_dictionaries(c, ["first_name"])  # again: replaces, never duplicates
    with db.connect() as c:
        counts = dict(c.exec_driver_sql("SELECT name, count(*) FROM _deid.dictionary GROUP BY name").all())
    assert counts == {name: len(entries(name)) for name in NAMES}


# (unique columns stay unique at a million rows: test_vector_million.py, through the vector forms, which give
# the SQL forms' values: test_vector_forms)


def test_dictionary_entries_made_once_per_statement_equal_making_them_every_row(db: sa.Engine):
    """fake.email cleans the names of its local part once per statement, in the dictionary's layout: the
    same text as cleaning every row's pick (street addresses add digits, spaces and dots to clean)."""
    from deid.backends.postgresql.forms.dictionaries import pick
    from deid.backends.postgresql.forms.fake import _EMAIL_PART, _email_local
    from deid.backends.postgresql.forms.sql import keyed

    v = "g::text"
    raw = [
        pick(name, keyed(f"fake.email.{part}", v))
        for name, part in (("first_name", "first"), ("last_name", "last"))
    ]
    per_row = f"regexp_replace(lower({raw[0]} || '.' || {raw[1]}), '[^a-z0-9.]', '', 'g')"
    street = pick("street_address", keyed("t", v))
    street_once = pick("street_address", keyed("t", v), entry=_EMAIL_PART)
    street_per_row = f"regexp_replace(lower({street}), '[^a-z0-9.]', '', 'g')"
    with db.connect() as c:
        apply_key(c, SALT)
        differ, streets_differ, distinct, cleaned = c.exec_driver_sql(
            f"SELECT count(*) FILTER (WHERE {_email_local(v, {})} IS DISTINCT FROM {per_row}), "
            f"count(*) FILTER (WHERE {street_once} IS DISTINCT FROM {street_per_row}), "
            f"count(DISTINCT {_email_local(v, {})}), count(*) FILTER (WHERE {street} <> {street_once}) "
            "FROM generate_series(1, 20000) g"
        ).one()
    assert differ == 0 and streets_differ == 0
    assert distinct > 15000 and cleaned == 20000  # spread picks, and every address had something to clean
