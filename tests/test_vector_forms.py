"""Every transformer case of test_transformers_pg through its vector form: the values of its SQL form."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from deid.transformers import TRANSFORMERS, get
from tests import vector_oracle
from tests.test_transformers_pg import CASES, Case
from tests.vector_oracle import db  # noqa: F401  (a fixture: one database per module)

# json has no vector form (the last test says so): its cases are test_transformers_pg's alone
VECTOR_CASES = [c for c in CASES if get(c.transformer).vector is not None]


@pytest.mark.parametrize("case", VECTOR_CASES, ids=[c.id for c in VECTOR_CASES])
def test_vector_form_equals_sql_form(db: sa.Engine, case: Case):  # noqa: F811
    vector_oracle.check(db, case)


def test_every_rewriting_transformer_but_json_has_a_vector_form():
    """json (transformers at paths inside documents) is the one left to its SQL form: a table with a json
    rule is rewritten by the SQL forms (docs/transformers.md, "The streamed scrub")."""
    missing = {t.name for t in TRANSFORMERS if t.rewrites and t.vector is None}
    assert missing == {"json"}, f"no vector form: {', '.join(sorted(missing))}"
