"""The vector forms of hash (digits, uuid), redact and generalize_zip against their SQL forms, on the cases
test_transformers_pg does not have: every digit count's edges, the round-table path, integer columns,
patterns that need regexp_replace, multi-byte text, char(n) padding and blanks beyond ASCII."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlalchemy as sa

from deid.backends.postgresql.forms.support import apply_key
from deid.schema import Kind
from deid.transformers import get
from deid.transformers.base import Batch
from deid.vector import fpe, prf
from tests import vector_oracle
from tests.test_transformers_pg import SALT, Case, make_table, target, transform
from tests.vector_oracle import db  # noqa: F401  (a fixture: one database per module)

# the first server only: test_vector_forms compares every transformer's two forms on every server; these
# cases of hash, redact and zip go deeper, and what they prove does not depend on the server's version
pytestmark = pytest.mark.one_server

KEY = prf.Key.for_salt(SALT)


def digits_case(id: str, pattern: str, values: tuple, sql_type: str = "text", kind: Kind = Kind.TEXT) -> Case:
    return Case(id, "hash", {"format": "digits", "pattern": pattern}, sql_type, kind, (*values, None))


def spread(n: int, count: int = 40) -> tuple[str, ...]:
    """n-digit strings: the edges and values spread over the domain (zero-padded)."""
    numbers = {0, 1, 10**n - 1, 10 ** (n - 1), *((k * 7919 + 12345) * 1000003 % 10**n for k in range(count))}
    return tuple(str(x).zfill(n) for x in sorted(numbers))


# values whose digits do not fill an n-digit pattern: too few, too many, none, other scripts' digits
MISFITS = ("", "n/a", "12-34", "1234567890123456789012", "١٢٣٤٥٦٧٨٩", "٣", "x" * 70 + "12")

DIGIT_CASES = (
    digits_case("text-1", "#", (*spread(1), "12", "-", "a7", "é5")),
    digits_case("text-2", "##", spread(2)),
    digits_case("text-3", "###", spread(3)),
    digits_case("text-9", "#########", (*spread(9), *MISFITS)),
    digits_case("text-10", "(###) ###-####", (*spread(10), "(617) 555-0123", "617.555.0123", *MISFITS)),
    digits_case("text-11", "###########", (*spread(11), *MISFITS)),
    digits_case("text-16", "####-####-####-####", (*spread(16), "4242 4242 4242 4242", *MISFITS)),
    digits_case("text-17", "#################", spread(17)),
    digits_case("text-18", "##################", (*spread(18), "999999999999999999", *MISFITS)),
    digits_case("text-18-grouped", "#########-#########", (*spread(18), *MISFITS)),
    # quotes and backslashes take the regexp_replace layout in SQL, with its own escaping
    digits_case("quotes", "\"##'\\##\\1&#", (*spread(5), *MISFITS)),
    digits_case("backslash-end", "##\\", spread(2)),
    digits_case("multibyte-pattern", "№ ###–####·€", (*spread(7), "№ 123–4567")),
    digits_case("nine-groups", "#.#.#.#.#.#.#.#.#", spread(9)),
    digits_case("literal-ends", "ID-####-X", spread(4)),
    digits_case("varchar", "###-##-####", (*spread(9), *MISFITS[:4]), sql_type="varchar(40)"),
    *(
        digits_case(id, "#" * n, values, sql_type, Kind.INTEGER)
        for id, n, sql_type, values in (
            ("smallint", 4, "smallint", ("0", "5", "9999", "10000", "32767", "-1", "-32768", "-1234")),
            ("integer-1", 1, "integer", ("0", "9", "10", "-3", "-10", "2147483647")),
            ("integer-9", 9, "integer", ("0", "1", "999999999", "1000000000", "-999999999", "-1")),
            ("bigint-11", 11, "bigint", ("0", "42", "99999999999", "100000000000", "-12345678901")),
            ("bigint-16", 16, "bigint", ("7", "1234567890123456", "-1234567890123456", "12345678901234567")),
            # 19 digits fall back on the value's hash; a negative one of 18 digits is permuted, as in SQL
            (
                "bigint-18",
                18,
                "bigint",
                (
                    "0",
                    "999999999999999999",
                    "1000000000000000000",
                    "-123456789012345678",
                    "9223372036854775807",
                    "-9223372036854775808",
                ),
            ),
        )
    ),
)


@pytest.mark.parametrize("case", DIGIT_CASES, ids=[c.id for c in DIGIT_CASES])
def test_hash_digits(db: sa.Engine, case: Case):
    vector_oracle.check(db, case)


@pytest.mark.parametrize(
    "case",
    [c for c in DIGIT_CASES if c.id in ("text-3", "text-9", "text-10", "integer-9", "quotes")],
    ids=lambda c: c.id,
)
def test_hash_digits_against_the_round_table_form(db: sa.Engine, case: Case):
    """The SQL form takes the round table (hash{n}_digits_rounds) for tables this big: same values."""
    vector_oracle.check(db, case, rows=10**7)


@pytest.mark.parametrize("n", [*range(1, 11), 11, 14, 18])
def test_the_permutation_is_fpe_digits(db: sa.Engine, n: int):
    """fpe.permute, both ways (round tables for n <= 10, PRF per value), is _deid.fpe_digits."""
    x = np.array([int(v) for v in spread(n, 400)], np.int64)
    with db.connect() as c:
        apply_key(c, SALT)
        expected = c.exec_driver_sql(
            "SELECT _deid.fpe_digits(lpad(v::text, %(n)s, '0'), 'hash.digits')::bigint "
            "FROM unnest(%(x)s::bigint[]) WITH ORDINALITY AS d(v, i) ORDER BY i",
            {"n": n, "x": x.tolist()},
        ).scalars()
        expected = list(expected)
    assert fpe.permute(KEY, "hash.digits", n, x, tables=False).tolist() == expected
    if n <= 10:
        assert fpe.permute(KEY, "hash.digits", n, x, tables=True).tolist() == expected


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_the_permutation_permutes_every_n_digit_number(n: int):
    everything = np.arange(10**n, dtype=np.int64)
    for tables in (True, False):
        out = fpe.permute(KEY, "t", n, everything, tables=tables)
        assert np.array_equal(np.sort(out), everything)


def test_round_tables_are_kept_per_key_and_only_for_their_key():
    key = prf.Key.for_salt("one")
    first = fpe.round_tables(key, "t", 4)
    assert fpe.round_tables(key, "t", 4) is first
    other = fpe.round_tables(prf.Key.for_salt("two"), "t", 4)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    x = np.arange(10**4, dtype=np.int64)
    assert np.array_equal(fpe.permute(key, "t", 4, x), fpe.permute(key, "t", 4, x, tables=False))


def test_a_batch_of_a_big_table_builds_the_round_table_once():
    """A stream's batches are small, its table is not: the table's rows decide, so the round table is built
    by the first batch (ten PRF calls a value would cost more over the whole table) and read by the rest."""
    key = prf.Key.for_salt("big table")
    batch = np.arange(100, dtype=np.int64) * 9901
    first = fpe.permute(key, "t", 9, batch, rows=10_000_000)
    built = fpe._cached(key, "t", 9)
    assert built is not None
    assert np.array_equal(
        fpe.permute(key, "t", 9, batch + 1, rows=10_000_000),
        fpe.permute(key, "t", 9, batch + 1, tables=False),
    )
    assert fpe._cached(key, "t", 9) is built
    assert np.array_equal(first, fpe.permute(key, "t", 9, batch, tables=False))


def test_a_small_table_keys_each_value_without_a_round_table():
    key = prf.Key.for_salt("small table")
    fpe.permute(key, "t", 9, np.arange(100, dtype=np.int64), rows=5_000)
    assert fpe._cached(key, "t", 9) is None


def test_hash_digits_keeps_200000_distinct_values_distinct():
    """The vector form on 200,000 distinct 9-digit values: 200,000 distinct outputs (a permutation)."""
    count = 200_000
    numbers = (np.arange(count, dtype=np.int64) * 7919 + 12345) % 10**9
    values = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), 9, "0")
    transformer = get("hash")
    params = transformer.parse_params({"format": "digits", "pattern": "###-##-####"})
    out = transformer.vector(Batch(values, KEY), target("varchar(11)", Kind.TEXT, unique=True), params)
    assert out.null_count == 0 and len(out) == count
    assert pc.count_distinct(out).as_py() == count
    assert pc.all(pc.match_substring_regex(out, r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$")).as_py()
    assert pc.sum(pc.equal(pc.replace_substring(out, "-", ""), values)).as_py() <= 3  # hardly a fixed point


UUIDS = (
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12",  # read back lower-case, as the server writes it
    "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13}",
)


def test_hash_uuid(db: sa.Engine):
    out = vector_oracle.check(db, Case("uuid", "hash", {}, "uuid", Kind.UUID, (*UUIDS, None)))
    assert all(o[14] == "8" and o[19] in "89ab" for o in out[:-1])  # version 8, RFC 9562 variant


REDACT_VALUES = (
    "4242424242424242",
    "",
    "a",
    "abcd",
    "abcde",
    "Zoë Ñandú",
    "東京都千代田区千代田1-1",
    "emoji 😀😃😄 end😀",
    "e\u0301e\u0301e\u0301e\u0301e\u0301",  # combining accents: each a character of its own, in both forms
    "tab\there\nnewline",
    "  padded  ",
)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"keep_start": 0, "keep_end": 0},
        {"keep_start": 3, "keep_end": 0},
        {"keep_start": 2, "keep_end": 5, "mask": "•"},
        {"keep_start": 100, "keep_end": 100, "mask": "😀"},
        {"keep_start": 1, "keep_end": 1, "mask": "'"},
    ],
    ids=str,
)
def test_redact(db: sa.Engine, params: dict):
    vector_oracle.check(db, Case("redact", "redact", params, "text", Kind.TEXT, (*REDACT_VALUES, None)))


ZIPS = (
    "02139",
    "021394321",
    "02139-4321",
    "03601",
    "893",
    "89301",
    "89301-1234",
    "8930",
    "021390",
    "02139-",
    "02139--4321",
    "abcde",
    "",
    "१२३४५",  # other scripts' digits are not [0-9]
    " \t\n\r\f\v02139 \t\n\r\f\v",  # ASCII blanks, vertical tab included, are allowed on either side
    "02139\n",
    "\n02139",
    "02139\u00a0",  # no-break space
    "\u300002139",  # ideographic space: a blank to PostgreSQL's \s in most locales, not to RE2's
    "\u200002139\u2028",
    "\x8502139",
    "02139\x1c",
)


@pytest.mark.parametrize("pad", [False, True])
def test_generalize_zip(db: sa.Engine, pad: bool):
    out = vector_oracle.check(
        db, Case("zip", "generalize_zip", {"pad": pad}, "text", Kind.TEXT, (*ZIPS, None))
    )
    kept, other = ("02100", "00000") if pad else ("021", "000")
    assert out[:3] == [kept] * 3 and out[14:17] == [kept] * 3  # ASCII blanks, a line break on either side
    assert out[17:-1] == [other] * len(ZIPS[17:])  # anything else around a ZIP is not a blank


def test_char_columns_read_padded_give_the_sql_forms_values(db: sa.Engine):
    """A char(n) column's text output is padded with spaces, its `::text` is not: vector forms given the
    padded text (as a stream reads it) key and measure the unpadded one, as the SQL forms do."""
    values = ["ab", "abcdefgh", "a b", "", "123456789", "02139", None]
    cases = [
        ("hash", {}),
        ("hash", {"format": "email", "domain": "example.com"}),
        ("hash", {"format": "digits", "pattern": "#########"}),
        ("hash", {"format": "digits", "pattern": "##"}),
        ("redact", {"keep_start": 1, "keep_end": 1}),
        ("generalize_zip", {"pad": True}),
    ]
    for i, (name, params) in enumerate(cases):
        table = f"padded_{i}"
        make_table(db, table, "char(50)", values)
        padded = vector_oracle.read_text(db, f"SELECT v FROM {table} ORDER BY id")
        assert padded[0] == "ab" + " " * 48
        expected = transform(db, table, "char(50)", Kind.TEXT, name, params)
        case = Case(name, name, params, "char(50)", Kind.TEXT, tuple(values))
        out = vector_oracle.vector_outputs(case, padded, [None] * len(values))
        assert vector_oracle.as_server_reads(db, out, "char(50)") == expected, (name, params)


@pytest.mark.parametrize(
    ("name", "params", "values", "sql_type", "kind"),
    [
        ("hash", {"format": "digits"}, ("123-45-6789", "12", None, "987654321", "x"), "text", Kind.TEXT),
        (
            "hash",
            {"format": "digits", "pattern": "####"},
            ("12", "-5", None, "123456", "9999"),
            "int",
            Kind.INTEGER,
        ),
        ("hash", {}, (*UUIDS[:3], None, UUIDS[2]), "uuid", Kind.UUID),
        ("redact", {"keep_start": 1}, REDACT_VALUES, "text", Kind.TEXT),
        ("generalize_zip", {}, ZIPS, "text", Kind.TEXT),
    ],
)
def test_sliced_and_chunked_batches_give_each_value_its_own_output(name, params, values, sql_type, kind):
    transformer = get(name)
    parsed, where = transformer.parse_params(params), target(sql_type, kind)
    whole = pa.array(values, pa.string())
    expected = transformer.vector(Batch(whole, KEY), where, parsed).to_pylist()
    assert transformer.vector(Batch(whole.slice(1, 3), KEY), where, parsed).to_pylist() == expected[1:4]
    chunked = pa.chunked_array([whole.slice(0, 2), whole.slice(2)])
    assert transformer.vector(Batch(chunked, KEY), where, parsed).to_pylist() == expected
