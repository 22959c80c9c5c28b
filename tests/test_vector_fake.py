"""fake.*'s vector forms against their SQL forms where test_transformers_pg's CASES do not reach: limits
that force the fit (the readable part cut, its trailing separators trimmed), char(n) columns, multibyte and
empty values, inet masks and cidr columns, IPv6 addresses with zero groups, and values read as the stream
reads them (output text, not `::text`)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlalchemy as sa

from deid.backends.postgresql.forms.dictionaries import slot
from deid.backends.postgresql.forms.fake import _EMAIL_PART
from deid.schema import Kind
from deid.transformers.base import Batch
from deid.transformers.dictionaries import SIZES, entries
from deid.transformers.fake import _email_part
from deid.vector import inet, text
from deid.vector.prf import Key
from tests import vector_oracle
from tests.conftest import ROOT
from tests.test_transformers_pg import SALT, Case, make_table, target, transform
from tests.vector_oracle import db  # noqa: F401  (a fixture: one database per module)

# the first server only: test_vector_forms compares every transformer's two forms on every server; these
# cases of the fakes go deeper, and what they prove does not depend on the server's version
pytestmark = pytest.mark.one_server

PEOPLE = (*(f"person {i}" for i in range(80)), None)  # enough values that some cuts land on a separator
MULTIBYTE = ("Zoë Ñandú", "東京都渋谷区", "😀 grin", "é" * 40 + "x", "", "tab\there", None)
TEXTS = (*PEOPLE[:20], *MULTIBYTE)


def case(
    transformer: str, sql_type: str, values: tuple[str | None, ...] = TEXTS, kind: Kind = Kind.TEXT, **params
) -> Case:
    shown = ",".join(f"{k}={v}" for k, v in params.items())
    return Case(f"{transformer}-{sql_type}-{shown}", transformer, params, sql_type, kind, tuple(values))


# Each limit cuts the readable part at another place, so cuts land after letters, spaces, dots and hyphens.
FITS = (
    *(case("fake.name", f"varchar({n})", PEOPLE, unique=True) for n in range(22, 34, 2)),
    *(case("fake.email", f"varchar({n})", PEOPLE) for n in range(34, 46, 2)),
    *(case("fake.email", f"varchar({n})", PEOPLE, unique=False) for n in (13, 16, 19)),
    case("fake.email", "varchar(36)", PEOPLE, domain="x.test"),
    case("fake.first_name", "varchar(22)", PEOPLE, unique=True),
    case("fake.first_name", "varchar(4)", PEOPLE),
    case("fake.last_name", "varchar(25)", PEOPLE, unique=True),
    case("fake.name", "varchar(12)", PEOPLE),  # cut without a suffix: a trailing space stays
    *(case("fake.phone", f"varchar({n})", PEOPLE, unique=True) for n in (23, 25, 28, 30, 36)),
    case("fake.phone", "varchar(10)", PEOPLE),
    *(case("fake.company", f"varchar({n})", PEOPLE, unique=True) for n in (25, 27, 29, 33)),
    case("fake.company", "varchar(12)", PEOPLE),
    case("fake.street_address", "varchar(26)", PEOPLE, unique=True),
    case("fake.street_address", "varchar(10)", PEOPLE),
    case("fake.user_name", "varchar(24)", PEOPLE),
    case("fake.user_name", "varchar(5)", PEOPLE, unique=False),
)
SHORT = ("Alice", "bob", "Ünïcødé", "", "东京", None)  # fits char(8)
CHARS = (
    case("fake.first_name", "char(8)", SHORT),
    case("fake.name", "char(30)", SHORT, unique=True),
    case("fake.name", "character(12)", SHORT),
    case("fake.email", "char(40)", SHORT),
    case("fake.phone", "char(20)", SHORT),
    case("fake.user_name", "character(30)", SHORT),
    case("fake.company", "char(26)", SHORT, unique=True),
    case("fake.url", "char(60)", SHORT),
    case("fake.ipv4", "char(15)", SHORT),
    case("fake.ipv6", "char(39)", SHORT),
)
PLAIN = tuple(
    case(name, "text", **params)
    for name, params in (
        ("fake.first_name", {}),
        ("fake.last_name", {"unique": True}),
        ("fake.name", {}),
        ("fake.email", {}),
        ("fake.email", {"unique": False, "domain": "mail.example"}),
        ("fake.phone", {"unique": True}),
        ("fake.street_address", {}),
        ("fake.company", {}),
        ("fake.user_name", {}),
        ("fake.url", {"domain": "example.org"}),
        ("fake.ipv4", {}),
        ("fake.ipv6", {}),
    )
)
ADDRESSES = ("10.1.2.3", "10.1.2.3/24", "192.168.0.0/16", "::1", "fe80::1/64", "::ffff:1.2.3.4", None)
NETWORKS = ("10.0.0.0/8", "192.168.1.0/24", "10.1.2.3/32", "2001:db8::/32", "::/0", None)
INETS = (
    case("fake.ipv4", "inet", ADDRESSES, Kind.INET),
    case("fake.ipv6", "inet", ADDRESSES, Kind.INET),
    case("fake.ipv4", "cidr", NETWORKS, Kind.INET),
    case("fake.ipv6", "cidr", NETWORKS, Kind.INET),
    case("fake.ipv4", "varchar(15)", ADDRESSES),
    case("fake.ipv6", "varchar(39)", ADDRESSES),
)
ALL = FITS + CHARS + PLAIN + INETS


@pytest.mark.parametrize("c", ALL, ids=[c.id for c in ALL])
def test_vector_form_equals_sql_form(db: sa.Engine, c: Case):  # noqa: F811
    vector_oracle.check(db, c)


def test_the_fits_cut_on_separators():
    """FITS is only worth its time if cuts meet the separators that fit trims: an output shorter than its
    limit, yet cut (not the whole readable part), lost a trailing separator."""
    trimmed = 0
    for c in FITS:
        out = vector_oracle.vector_outputs(c, PEOPLE, PEOPLE).to_pylist()
        whole = vector_oracle.vector_outputs(replace(c, sql_type="text"), PEOPLE, PEOPLE).to_pylist()
        limit = int(c.sql_type[len("varchar(") : -1])
        trimmed += sum(o is not None and len(o) < limit and o != w for o, w in zip(out, whole, strict=True))
    assert trimmed >= 20


OUTPUT_FORMS = CHARS + INETS[:2]  # a cidr prints its mask both ways


@pytest.mark.parametrize("c", OUTPUT_FORMS, ids=[c.id for c in OUTPUT_FORMS])
def test_values_read_as_output_text_key_as_their_cast_to_text(db: sa.Engine, c: Case):  # noqa: F811
    """The stream reads a char(n) with its padding and an inet without a full mask (10.1.2.3, not
    10.1.2.3/32); the SQL forms key on `v::text`, which has neither. The vector forms key alike."""
    table = f"forms_{abs(hash(c.id))}"
    make_table(db, table, c.sql_type, c.values)
    shown = vector_oracle.read_text(
        db, f"SELECT CASE WHEN v IS NOT NULL THEN concat(v) END FROM {table} ORDER BY id"
    )
    cast = vector_oracle.read_text(db, f"SELECT v::text FROM {table} ORDER BY id")
    assert shown != cast  # the two forms differ here, or this test proves nothing
    expected = transform(db, table, c.sql_type, c.kind, c.transformer, c.params)
    got = vector_oracle.as_server_reads(db, vector_oracle.vector_outputs(c, shown, shown), c.sql_type)
    assert got == expected


def _search(c: Case, candidates: pa.Array, found: str, wanted: int = 6) -> tuple[str, ...]:
    """Candidates whose output (as text, through the vector form) matches the regular expression `found`."""
    transformer = vector_oracle.get(c.transformer)
    batch = Batch(values=candidates, key=Key.for_salt(SALT))
    out = transformer.vector(batch, target("text", Kind.TEXT), transformer.parse_params(c.params))
    hits = candidates.filter(pc.match_substring_regex(out, found)).to_pylist()
    assert len(hits) >= wanted, f"only {len(hits)} candidates give {found}"
    return tuple(hits[:wanted])


def _numbered(stem: str, n: int, tail: str = "") -> pa.Array:
    return pc.binary_join_element_wise(stem, pc.cast(pa.array(np.arange(n)), pa.string()), tail, "")


def _addresses(n: int) -> pa.Array:
    """n IPv4 addresses in their ::text form (10.a.b.c/32), which is what an inet value is keyed on."""
    octets = [pc.cast(pa.array(np.arange(n) >> shift & 255), pa.string()) for shift in (16, 8, 0)]
    return pc.binary_join_element_wise(pc.binary_join_element_wise("10", *octets, "."), "/32", "")


def test_ipv6_with_zero_groups(db: sa.Engine):  # noqa: F811
    """A zero group prints as "0" (one value in about 11000 has one: search for them), a group with leading
    zeros without them; in text columns, and keyed on inet values in inet columns."""
    ipv6 = case("fake.ipv6", "text", ())
    zero = ":0(:|$)"
    texts = _search(ipv6, _numbered("user-", 300_000), zero)
    addresses = _search(ipv6, _addresses(300_000), zero)
    short = _search(ipv6, _numbered("user-", 1000), ":[0-9a-f]{1,3}(:|$)", 20)
    for sql_type, kind, values in (
        ("text", Kind.TEXT, texts + short),
        ("varchar(39)", Kind.TEXT, texts),
        ("inet", Kind.INET, addresses),
        ("text", Kind.TEXT, addresses),
    ):
        out = vector_oracle.check(db, Case("ipv6-zero", "fake.ipv6", {}, sql_type, kind, (*values, None)))
        if sql_type != "inet":
            assert sum(":0:" in o or o.endswith(":0") for o in out if o) >= 6


def test_ipv6_spelling_is_the_servers_for_every_run_of_zero_groups(db: sa.Engine):  # noqa: F811
    """Every pattern of zero groups after 2001 (runs of every length and place, ties, trailing runs), with
    groups of one to four digits, spelled as host() spells it."""
    patterns = np.arange(128)
    zero = (patterns[:, None] >> np.arange(7)) & 1 == 1
    rows = []
    for filler in (0x1, 0xAB, 0xF00, 0xFFFF, 0x1234):
        groups = np.where(zero, 0, (filler + np.arange(7) * 0x1111) & 0xFFFF)
        rows.append(np.hstack([np.full((128, 1), 0x2001), groups]))
    words = np.vstack(rows).astype(np.uint16)
    valid = np.ones(len(words), bool)
    valid[3] = False
    spelled = [":".join(f"{w:04x}" for w in row) for row in words]
    full = inet.full_texts(words, valid).to_pylist()  # what an inet column gets: any spelling parses
    with db.connect() as c:
        hosts = c.exec_driver_sql(
            "SELECT host(a::inet), host(f::inet) "
            "FROM unnest(%(a)s::text[], %(f)s::text[]) WITH ORDINALITY AS d(a, f, i) ORDER BY i",
            {"a": spelled, "f": full},
        ).all()
    expected = [None if i == 3 else a for i, (a, _) in enumerate(hosts)]
    assert inet.ipv6_texts(words, valid).to_pylist() == expected
    assert [f for _, f in hosts] == expected
    with pytest.raises(ValueError):
        inet.ipv6_texts(np.zeros((1, 8), np.uint16), np.ones(1, bool))


def test_ipv4_addresses_are_the_servers(db: sa.Engine):  # noqa: F811
    from deid.transformers.fake import _DOC_IPV4

    with db.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT _deid.doc_ipv4_from(k)::text, host(_deid.doc_ipv4_from(k)), "
            "format('%%s', _deid.doc_ipv4_from(k)) FROM generate_series(0, 767) k ORDER BY k"
        ).all()
    assert [r[1] for r in rows] == [r[2] for r in rows] == list(_DOC_IPV4)


@pytest.mark.parametrize("name", ["first_name", "last_name"])
def test_email_dictionaries_are_the_sql_ones(db: sa.Engine, name: str):  # noqa: F811
    """fake.email's cleaned names: the Python cleaning of each entry equals _EMAIL_PART's in the database,
    slot by slot (padding and rtrim included)."""
    with db.connect() as c:
        in_sql = (
            c.exec_driver_sql(
                f"SELECT {slot(name, 'i', entry=_EMAIL_PART)} "
                f"FROM generate_series(0, {SIZES[name] - 1}) i ORDER BY i"
            )
            .scalars()
            .all()
        )
    assert text.dictionary(name, _email_part).to_pylist() == in_sql
    assert all(e.isascii() for e in entries(name))


def test_a_non_ascii_entry_is_refused_rather_than_cleaned_differently():
    with pytest.raises(ValueError):
        _email_part("Zoë")


def test_sliced_and_chunked_batches_give_the_same_values():
    params_by_name = {c.transformer: c for c in PLAIN}
    values = pa.array(TEXTS)
    for c in params_by_name.values():
        whole = vector_oracle.vector_outputs(c, values.to_pylist(), values.to_pylist()).to_pylist()
        transformer = vector_oracle.get(c.transformer)
        where, params = target(c.sql_type, c.kind), transformer.parse_params(c.params)
        key = Key.for_salt(SALT)
        part = transformer.vector(Batch(values=values.slice(5, 9), key=key), where, params).to_pylist()
        chunked = pa.chunked_array([values.slice(0, 7), values.slice(7)])
        assert part == whole[5:14], c.id
        assert transformer.vector(Batch(values=chunked, key=key), where, params).to_pylist() == whole, c.id


@pytest.mark.parametrize("module", ["deid.vector.text", "deid.vector.inet", "deid.vector.prf"])
def test_vector_modules_import_first(module: str):
    """deid.vector.prf imports deid.transformers, whose fake module imports deid.vector: either may load
    first."""
    subprocess.run(
        [sys.executable, "-c", f"import {module}"], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
