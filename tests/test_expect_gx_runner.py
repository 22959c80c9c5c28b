"""The Great Expectations runner fails closed: an expectation GX cannot evaluate fails, without its error
text (which may quote a value)."""

from __future__ import annotations

import sqlalchemy as sa

from deid.expect.gx_runner import run_specs
from deid.expect.spec import Spec


def test_an_expectation_that_cannot_be_evaluated_fails_without_quoting_the_error(pg_engine: sa.Engine):
    broken = Spec(
        "broken", "public.t", (None,), "SELECT NULL::text AS column_name, 'secret-value'::int AS unexpected"
    )
    passing = Spec(
        "passing", "public.t", (None,), "SELECT NULL::text AS column_name, 1 AS unexpected WHERE false"
    )
    failing = Spec(
        "failing",
        "public.t",
        ("a", "b"),
        "SELECT 'b'::text AS column_name, 3 AS unexpected, 10 AS checked, 'ssn' AS pattern",
    )
    outcomes = {(o.expectation, o.column): o for o in run_specs(pg_engine, "x", [broken, passing, failing])}
    assert not outcomes[("broken", None)].ok and outcomes[("broken", None)].unexpected is None
    assert "secret-value" not in str(outcomes[("broken", None)])
    assert outcomes[("passing", None)].ok
    assert outcomes[("failing", "a")].ok
    b = outcomes[("failing", "b")]
    assert (b.ok, b.unexpected, b.checked) == (False, 3, 10) and "ssn: 3 rows" in str(b)
