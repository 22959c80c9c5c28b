"""Every transformer case of test_transformers_pg through its vector form: the values of its SQL form."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from deid.transformers import TRANSFORMERS, get
from tests import vector_oracle
from tests.test_transformers_pg import CASES, Case
from tests.vector_oracle import db  # noqa: F401  (a fixture: one database per module)

VECTOR_CASES = [c for c in CASES if get(c.transformer).vector is not None]  # all (the last test says so)


@pytest.mark.parametrize("case", VECTOR_CASES, ids=[c.id for c in VECTOR_CASES])
def test_vector_form_equals_sql_form(db: sa.Engine, case: Case):  # noqa: F811
    vector_oracle.check(db, case)


def test_every_rewriting_transformer_has_a_vector_form():
    """json's too (deid.vector.jsonpaths; tests/test_vector_json.py goes deeper): an engine without SQL
    forms can scrub every rule."""
    missing = {t.name for t in TRANSFORMERS if t.rewrites and t.vector is None}
    assert not missing, f"no vector form: {', '.join(sorted(missing))}"
    assert len(VECTOR_CASES) == len(CASES)
