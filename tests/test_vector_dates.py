"""The vector forms of shift_date, truncate_date and noise against their SQL forms (tests/vector_oracle.py),
on the values CASES of test_transformers_pg does not reach: `by:`, timestamps without time zone, fractional
seconds, infinity, BC and five-digit years, epochs before 1970, numeric scales, bigint, float4, clamps."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlalchemy as sa

from deid.backends.postgresql.forms.common import canonical
from deid.backends.postgresql.forms.sql import sql_target
from deid.errors import TerminalError
from deid.schema import Kind
from deid.transformers import get
from deid.transformers.base import Batch
from deid.vector import keys
from deid.vector.prf import Key
from tests import vector_oracle
from tests.test_transformers_pg import SALT, Case, make_table, target
from tests.vector_oracle import db  # noqa: F401  (a fixture: one database per module)

# the first server only: test_vector_forms compares every transformer's two forms on every server; these
# cases of dates and noise go deeper, and what they prove does not depend on the server's version
pytestmark = pytest.mark.one_server

DATES = (
    "2024-03-10", "1969-12-31", "1970-01-01", "1900-02-28", "2000-02-29", "0044-03-15 BC", "0001-01-01",
    "0001-01-01 BC", "10000-01-01", "9999-12-31", "infinity", "-infinity", None,
)  # fmt: skip
STAMPS = (
    "2024-03-10 01:30:00", "2024-03-10 01:30:00.5", "2024-03-10 01:30:00.123456", "1969-12-31 23:59:59.75",
    "1969-12-31 23:59:59.999999", "1970-01-01 00:00:00.000001", "1901-12-13 20:45:52.25",
    "0044-03-15 12:00:00 BC", "0001-01-01 00:00:00.5 BC", "12345-06-07 08:09:10.01",
    "294250-06-01 00:00:00.00005", "infinity", "-infinity", None,
)  # fmt: skip
# as timestamptz prints in UTC: the zone, then the era
ZONED = tuple(
    v if v is None or "infinity" in v else v.replace(" BC", "") + "+00" + (" BC" if "BC" in v else "")
    for v in STAMPS
)
# without BC and five-digit years: what Arrow reads by itself (the usual, faster path)
COMMON = {
    name: tuple(v for v in values if v is None or not ("BC" in v or v[:5].isdigit()))
    for name, values in (("dates", DATES), ("stamps", STAMPS), ("zoned", ZONED))
}
ENTITIES = [1, 1, 2, None, 3, 2, None, 1, 4, None, 5, 6, 7, 8]

BIGINTS = ("4611686018427387903", "-4611686018427387904", "9007199254740993", "-5", "0", "1", "2", None)
NUMERICS = ("1234.56", "99.99", "-0.01", "0.00", "5000000.00", "6.50", "199.99", None)
PLAIN = (
    "1234.50", "0.001", "-7", "0", "123456789012345678901234.123456789", "0.000000001", "NaN", "Infinity",
    "-Infinity", "1e-20", None,
)  # fmt: skip
FLOATS = (
    "3.5", "1e10", "-2.25", "0.1", "1000000000000005", "0.1000213623046875", "8e307", "1.5e-300",
    "2.2250738585072014e-308", "-0", "0", "Infinity", "-Infinity", "NaN", "123456.789", None,
)  # fmt: skip
FLOAT4S = ("3.1", "1e-38", "-2.5", "0.33333334", "3.4e38", "Infinity", "NaN", "-0", "16777217", None)

ORACLE_CASES = [
    Case("shift-date-any-year", "shift_date", {"days": 400}, "date", Kind.DATE, DATES),
    Case("shift-date-by", "shift_date", {"days": 30, "by": "entity"}, "date", Kind.DATE, DATES),
    Case("shift-timestamp", "shift_date", {"days": 3650}, "timestamp", Kind.TIMESTAMP, STAMPS),
    Case(
        "shift-timestamp-by", "shift_date", {"days": 7, "by": "entity"}, "timestamp", Kind.TIMESTAMP, STAMPS
    ),
    Case("shift-timestamptz", "shift_date", {"days": 100}, "timestamptz", Kind.TIMESTAMP, ZONED),
    Case("shift-timestamptz-by", "shift_date", {"by": "entity"}, "timestamptz", Kind.TIMESTAMP, ZONED),
    Case("shift-timestamp3", "shift_date", {}, "timestamp(3)", Kind.TIMESTAMP, STAMPS[:9] + (None,)),
    Case("shift-date-common", "shift_date", {"days": 10}, "date", Kind.DATE, COMMON["dates"]),
    Case(
        "shift-timestamp-common",
        "shift_date",
        {"by": "entity"},
        "timestamp",
        Kind.TIMESTAMP,
        COMMON["stamps"],
    ),
    Case("shift-timestamptz-common", "shift_date", {}, "timestamptz", Kind.TIMESTAMP, COMMON["zoned"]),
    Case("truncate-date-common", "truncate_date", {"unit": "week"}, "date", Kind.DATE, COMMON["dates"]),
    Case(
        "truncate-tz-common",
        "truncate_date",
        {"unit": "quarter"},
        "timestamptz",
        Kind.TIMESTAMP,
        COMMON["zoned"],
    ),
    *(
        Case(f"truncate-{unit}-{sql_type}", "truncate_date", {"unit": unit}, sql_type, kind, values)
        for unit in ("year", "quarter", "month", "week", "day")
        for sql_type, kind, values in (
            ("date", Kind.DATE, DATES),
            ("timestamp", Kind.TIMESTAMP, STAMPS),
            ("timestamp with time zone", Kind.TIMESTAMP, ZONED),
        )
    ),
    Case("noise-int4-by", "noise", {"by": "entity"}, "int4", Kind.INTEGER, ("100000", "7", "-3", "0", None)),
    Case(
        "noise-int2", "noise", {"relative": 0.5}, "int2", Kind.INTEGER, ("1", "2", "3", "5", "-20000", None)
    ),
    Case("noise-bigint", "noise", {}, "bigint", Kind.INTEGER, BIGINTS),
    Case(
        "noise-bigint-clamped",
        "noise",
        {"relative": 0.5, "min": -4e18, "max": 2.0**62},
        "bigint",
        Kind.INTEGER,
        BIGINTS,
    ),
    Case(
        "noise-bigint-clamped-near-max",
        "noise",
        {"relative": 0.5, "max": 9e18},
        "bigint",
        Kind.INTEGER,
        ("9000000000000000000", "8999999999999999999", "8000000000000000000", "-1", None),
    ),
    Case("noise-numeric-by", "noise", {"by": "entity"}, "numeric(10,2)", Kind.NUMERIC, NUMERICS),
    Case(
        "noise-numeric-clamped",
        "noise",
        {"relative": 0.9, "min": 6.5, "max": 200},
        "numeric(10,2)",
        Kind.NUMERIC,
        NUMERICS,
    ),
    Case("noise-numeric-scale", "noise", {"relative": 1}, "numeric(20,6)", Kind.NUMERIC, NUMERICS),
    Case("noise-plain-numeric", "noise", {"relative": 0.3}, "numeric", Kind.NUMERIC, PLAIN),
    Case("noise-plain-clamped", "noise", {"min": -1e-07, "max": 1e20}, "numeric", Kind.NUMERIC, PLAIN),
    Case("noise-float8", "noise", {}, "float8", Kind.FLOAT, FLOATS),
    Case("noise-float8-by", "noise", {"by": "entity", "relative": 1}, "double precision", Kind.FLOAT, FLOATS),
    Case("noise-float8-clamped", "noise", {"min": -1, "max": 6.5}, "float8", Kind.FLOAT, FLOATS),
    Case("noise-float4", "noise", {"relative": 0.05, "max": 3e38}, "real", Kind.FLOAT, FLOAT4S),
    Case("noise-float4-clamped", "noise", {"min": 0.1, "max": 3.25}, "float4", Kind.FLOAT, FLOAT4S),
]


@pytest.mark.parametrize("case", ORACLE_CASES, ids=[c.id for c in ORACLE_CASES])
def test_vector_form_equals_sql_form(db: sa.Engine, case: Case):  # noqa: F811
    by = "by" in case.params
    entities = (ENTITIES * 2)[: len(case.values)] if by else None
    vector_oracle.check(db, case, entities=entities)


def test_many_random_values_agree(db: sa.Engine):  # noqa: F811
    """A thousand values of each kind, keyed on themselves and on entities, where rare digits would show."""
    import random

    rng = random.Random(7)
    floats = [repr(rng.uniform(-1, 1) * 10.0 ** rng.randint(-30, 30)) for _ in range(1000)] + [None]
    stamps = [
        f"{rng.randint(1, 4713):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        + rng.choice(["", ".5", f".{rng.randint(0, 999999):06d}"])
        + rng.choice(["", " BC"])
        for _ in range(1000)
    ] + [None]
    amounts = [f"{rng.randint(-(10**9), 10**9) / 100:.2f}" for _ in range(1000)] + [None]
    entities = [rng.choice([None, *range(50)]) for _ in range(1001)]
    for case in (
        Case("floats", "noise", {"relative": 1}, "float8", Kind.FLOAT, tuple(floats)),
        Case("floats-by", "noise", {"by": "entity"}, "float8", Kind.FLOAT, tuple(floats)),
        Case("stamps", "shift_date", {"days": 3650}, "timestamp", Kind.TIMESTAMP, tuple(stamps)),
        Case("stamps-week", "truncate_date", {"unit": "week"}, "timestamp", Kind.TIMESTAMP, tuple(stamps)),
        Case("amounts", "noise", {"relative": 0.5}, "numeric(12,2)", Kind.NUMERIC, tuple(amounts)),
        Case("amounts-by", "noise", {"by": "entity"}, "numeric", Kind.NUMERIC, tuple(amounts)),
    ):
        vector_oracle.check(db, case, entities=entities)


CANONICAL = [
    ("date", Kind.DATE, DATES),
    ("timestamp", Kind.TIMESTAMP, STAMPS),
    ("timestamptz", Kind.TIMESTAMP, ZONED),
    ("float8", Kind.FLOAT, FLOATS + ("5e-324", "1.7976931348623157e308", "1e22", "123456789012345678")),
    ("real", Kind.FLOAT, FLOAT4S + ("1e-45", "3.4028235e38")),
    ("numeric", Kind.NUMERIC, PLAIN),
    ("text", Kind.TEXT, ("a", "", None)),
]


@pytest.mark.parametrize(("sql_type", "kind", "values"), CANONICAL, ids=[c[0] for c in CANONICAL])
def test_canonical_is_the_text_of_the_sql_canonical(db: sa.Engine, sql_type, kind, values):  # noqa: F811
    """keys.canonical gives, as text, what the SQL forms' canonical (forms.common) gives: the keyed message's
    value part."""
    name = vector_oracle.table()
    make_table(db, name, sql_type, values)
    value = canonical(sql_target(target(sql_type, kind), '"v"'))
    expected = vector_oracle.read_text(db, f"SELECT ({value})::text FROM {name} ORDER BY id")
    inputs = vector_oracle.read_text(db, f"SELECT v::text FROM {name} ORDER BY id")
    assert keys.canonical(pa.array(inputs, pa.string()), target(sql_type, kind)).to_pylist() == expected


def _run(name: str, params: dict, sql_type: str, kind: Kind, values: list) -> pa.Array:
    transformer = get(name)
    parsed = transformer.parse_params(params)
    batch = Batch(values=pa.array(values, pa.string()), key=Key.for_salt(SALT))
    return transformer.vector(batch, target(sql_type, kind), parsed)


@pytest.mark.parametrize(
    ("name", "sql_type", "kind", "readable", "value"),
    [
        ("shift_date", "date", Kind.DATE, "2024-03-10", "03/10/2024"),
        ("truncate_date", "timestamp", Kind.TIMESTAMP, "2024-03-10 01:02:03", "2024-03-10T01:02:03 secret"),
        ("shift_date", "timestamp", Kind.TIMESTAMP, "2024-03-10 01:02:03", "2024-03-10 01:02:03+05:30"),
        ("shift_date", "timestamptz", Kind.TIMESTAMP, "2024-03-10 01:02:03+00", "2024-03-10 secret+00"),
        ("noise", "float8", Kind.FLOAT, "1", "12.5 secret"),
        ("noise", "numeric", Kind.NUMERIC, "1", "12.5 secret"),
        ("noise", "numeric", Kind.NUMERIC, "1", "1" * 80),
    ],
)
def test_unreadable_text_fails_naming_the_column_never_the_value(name, sql_type, kind, readable, value):
    assert _run(name, {}, sql_type, kind, [readable, None]).null_count == 1
    with pytest.raises(TerminalError) as failed:
        _run(name, {}, sql_type, kind, [readable, value])
    assert "column v" in str(failed.value) and value not in str(failed.value)


def test_out_of_range_results_fail_as_in_sql():
    """Values near the ends of the range, each keyed on itself: some move past them, as the SQL form fails."""
    with pytest.raises(TerminalError, match="out of range"):
        _run("truncate_date", {"unit": "year"}, "timestamp", Kind.TIMESTAMP, ["4714-11-24 00:00:00 BC"])
    last_days = [f"5874897-12-{day:02d}" for day in range(1, 32)]
    with pytest.raises(TerminalError, match="out of range"):
        _run("shift_date", {"days": 3650}, "date", Kind.DATE, last_days)
    largest = [repr(1.79e308 - k * 1e305) for k in range(32)]
    with pytest.raises(TerminalError, match="out of range"):
        _run("noise", {"relative": 1}, "float8", Kind.FLOAT, largest)


def test_a_float_domain_is_refused_rather_than_guessed():
    with pytest.raises(TerminalError, match="real or double precision"):
        _run("noise", {}, "public.amount_d", Kind.FLOAT, ["1.5"])


@pytest.mark.parametrize(
    ("name", "params", "sql_type", "kind"),
    [
        ("shift_date", {}, "date", Kind.DATE),
        ("truncate_date", {"unit": "week"}, "timestamptz", Kind.TIMESTAMP),
        ("noise", {}, "bigint", Kind.INTEGER),
        ("noise", {"max": 5}, "numeric", Kind.NUMERIC),
        ("noise", {"min": 1}, "real", Kind.FLOAT),
    ],
)
def test_empty_and_all_null_batches(name, params, sql_type, kind):
    assert _run(name, params, sql_type, kind, []).to_pylist() == []
    assert _run(name, params, sql_type, kind, [None, None]).to_pylist() == [None, None]
