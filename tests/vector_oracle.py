"""The oracle of the vector forms: on a real server, a vector form must give exactly what the transformer's
SQL form (deid.backends.postgresql.forms) gives for the same values, salt and parameters: both forms, one
output.

`check(db, case)` makes a table of the case's values, runs the SQL form (test_transformers_pg.transform),
runs the vector form over the values read as text under the stream's pinned settings, lets the server cast
the vector output to the column's type (as the stream's COPY does), and compares the two as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from deid.backends.postgresql.textforms import set_statements
from deid.transformers import get
from deid.transformers.base import Batch
from deid.vector.prf import Key
from tests.test_transformers_pg import SALT, Case, make_table, prepared, target, transform

_counter = iter(range(10**9))


@pytest.fixture(scope="module")
def db(postgres):
    """One database per test module and server, with the _deid support objects and every dictionary: the
    oracle's tables have names of their own (table()), so the module's cases share it instead of paying for
    a database each."""
    name = postgres.create_database("deid_oracle")
    engine = prepared(postgres.url(name))
    yield engine
    engine.dispose()
    postgres.drop_database(name)


def table() -> str:
    """A table name no other case of the module uses."""
    return f"oracle_{next(_counter)}"


def read_text(engine: sa.Engine, sql: str) -> list[Any]:
    with engine.connect() as c:
        for statement in set_statements():
            c.exec_driver_sql(statement)
        return c.exec_driver_sql(sql).scalars().all()


def vector_outputs(
    case: Case, inputs: Sequence[str | None], entities: Sequence[str | None], salt: str = SALT, rows: int = 0
) -> pa.Array:
    transformer = get(case.transformer)
    assert transformer.vector is not None, f"{case.transformer} has no vector form"
    params = transformer.parse_params(case.params)
    columns = {"v": pa.array(inputs, pa.string()), "entity": pa.array(entities, pa.string())}
    batch = Batch(values=columns["v"], key=Key.for_salt(salt), row=lambda name: columns[name])
    out = transformer.vector(batch, target(case.sql_type, case.kind, case.unique, rows), params)
    assert len(out) == len(inputs)
    assert pa.types.is_string(out.type) or pa.types.is_large_string(out.type), out.type
    return out


def as_server_reads(engine: sa.Engine, values: pa.Array, sql_type: str) -> list[str | None]:
    """The vector output cast to `sql_type` by the server and read back as text in UTC (as the SQL side)."""
    with engine.connect() as c:
        for statement in set_statements():
            c.exec_driver_sql(statement)
        return (
            c.exec_driver_sql(
                f"SELECT (v::{sql_type})::text "
                "FROM unnest(%(v)s::text[]) WITH ORDINALITY AS d(v, i) ORDER BY i",
                {"v": values.to_pylist()},
            )
            .scalars()
            .all()
        )


def check(db: sa.Engine, case: Case, *, entities: Sequence[int] | None = None, rows: int = 0) -> list:
    """Assert that the vector form equals the SQL form on the case's values; returns the outputs."""
    name = table()
    make_table(db, name, case.sql_type, case.values, unique=case.unique, entities=entities)
    inputs = read_text(db, f"SELECT v::text FROM {name} ORDER BY id")
    entity_text = read_text(db, f"SELECT entity::text FROM {name} ORDER BY id")
    expected = transform(
        db, name, case.sql_type, case.kind, case.transformer, case.params, unique=case.unique, rows=rows
    )
    got = as_server_reads(db, vector_outputs(case, inputs, entity_text, rows=rows), case.sql_type)
    assert got == expected, f"{case.id}: vector form differs from the SQL form"
    return got
