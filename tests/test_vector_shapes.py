"""Each transformer's shape as the stream checks it (deid.vector.shapes, over the text it writes) against the
SQL check of the copy it replaces (deid.expect.shapes, over the stored value): value by value, the same
verdict, for the transformer's own outputs and for values near them that break the shape."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlalchemy as sa

from deid.backends.postgresql.validation.shapes import conforms
from deid.plan import ColumnAction
from deid.transformers import get
from deid.vector.shapes import vector_predicate
from tests.test_transformers_pg import CASES, Case, target
from tests.vector_oracle import db, read_text, vector_outputs  # noqa: F401  (db: a fixture)
from tests.vector_oracle import table as table_name

SHAPED = [
    c
    for c in CASES
    if get(c.transformer).vector is not None
    and vector_predicate(
        c.transformer, get(c.transformer).parse_params(c.params), target(c.sql_type, c.kind).column
    )
]


# a length-limited column's dictionary fake without a unique tag: any value conforms (it may be shortened)
TRIVIAL = {"last_name"}


def near_misses(values: list[str]) -> list[str]:
    """Values that differ from conforming ones by a little: a letter more, fewer, changed, or case."""
    out = []
    for v in values:
        out += [v + "x", "x" + v, v[:-1], v.upper(), v.replace("0", "9", 1), v + " ", "", v + "/24"]
    return out


def stored(engine: sa.Engine, table: str, values: list[str], sql_type: str) -> list[str]:
    """Store each value in `table` as COPY would (an assignment: a value too long for the type is refused,
    not cut, unless only spaces are cut); returns those the column took, in order."""
    kept = []
    with engine.connect() as c:
        with c.begin():
            c.exec_driver_sql(f"CREATE TABLE {table} (i int, v {sql_type})")
        for v in dict.fromkeys(values):
            try:
                with c.begin():
                    c.execute(sa.text(f"INSERT INTO {table} VALUES (:i, :v)"), {"i": len(kept), "v": v})
                kept.append(v)
            except sa.exc.DBAPIError:
                pass
    return kept


@pytest.mark.parametrize("case", SHAPED, ids=[c.id for c in SHAPED])
def test_the_streams_shape_check_agrees_with_the_copys(db: sa.Engine, case: Case):  # noqa: F811
    params = get(case.transformer).parse_params(case.params)
    column = target(case.sql_type, case.kind).column
    inputs = [v for v in case.values]
    outputs = [v for v in vector_outputs(case, inputs, [str(i) for i in range(len(inputs))]).to_pylist() if v]
    table = table_name()
    candidates = stored(
        db, table, [*outputs, *(v for v in inputs if v), *near_misses(outputs)], case.sql_type
    )
    action = ColumnAction("v", case.sql_type, case.transformer, dict(params), "rule", "v")
    sql = read_text(db, f"SELECT ({conforms(action, column, 'v')})::text FROM {table} ORDER BY i")
    vector = vector_predicate(case.transformer, params, column)(pa.array(candidates, pa.string()))
    got = ["true" if v else "false" for v in vector.to_pylist()]
    differ = [(c, s, g) for c, s, g in zip(candidates, sql, got, strict=True) if s != g]
    assert not differ, f"{case.id}: vector and SQL shape checks disagree on {len(differ)} values"
    assert all(g == "true" for c, g in zip(candidates, got, strict=True) if c in outputs), "outputs conform"
    assert "false" in sql or case.id in TRIVIAL, f"{case.id}: no near miss broke the shape"


def test_the_shapes_the_stream_checks_cover_the_benchmarks_columns():
    """What keeps validation from scanning the copy: every class of the benchmark's users has a vector shape
    (its shift_date's promise is relative to production's value, checked on a sample)."""
    from deid.schema import Column, Kind

    text, inet = Column("v", "text", Kind.TEXT), Column("v", "inet", Kind.INET)
    ssn = Column("v", "varchar(11)", Kind.TEXT, max_length=11)
    cases = [
        ("fake.email", {"domain": "example.com", "unique": True}, text),
        ("fake.first_name", {}, text),
        ("fake.last_name", {}, text),
        ("fake.phone", {}, text),
        ("hash", {"format": "digits", "pattern": "###-##-####"}, ssn),
        ("fake.street_address", {}, text),
        ("fake.ipv6", {}, inet),
        ("redact", {"keep_start": 0, "keep_end": 4}, text),
    ]
    for name, given, column in cases:
        assert vector_predicate(name, get(name).parse_params(given), column) is not None, name
