"""deid.vector.tally: the same-pass counts of a column, checked against counting in Python."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from deid.vector import tally as tallying
from deid.vector.tally import Tally


def batches(values: list[str | None], size: int) -> list[pa.Array]:
    return [pa.array(values[i : i + size], pa.string()) for i in range(0, len(values), size)]


@pytest.mark.parametrize("spill_values", [7, tallying.SPILL_VALUES])
def test_outputs_found_among_inputs_are_counted_exactly(monkeypatch, spill_values):
    """Outputs equal to an input anywhere in the column (other rows, other batches, before or after) are
    counted, duplicates included, whether the digests were spilled many times or once at the end."""
    monkeypatch.setattr(tallying, "SPILL_VALUES", spill_values)
    rng = np.random.default_rng(7)
    inputs = [f"in-{i}" for i in range(3000)] + [None] * 50
    outputs = [f"out-{i}" for i in range(3000)]
    # some outputs take an input's value from anywhere in the column, some twice; NULLs stay NULLs
    for at in rng.choice(3000, 120, replace=False):
        outputs[at] = inputs[int(rng.integers(0, 3000))]
    outputs += [None] * 50
    expected = sum(1 for o in outputs if o is not None and o in set(inputs))
    t = Tally(("c",), frozenset({"c"}))
    for given, made in zip(batches(inputs, 500), batches(outputs, 500), strict=True):
        t.add("c", given, made)
    counts = t.close()["c"]
    assert counts["found_in_production"] == expected >= 120
    assert counts["rows"] == 3050 and counts["nulls_in"] == 50 and counts["nulls_made"] == 0
    assert counts["unchanged"] == sum(
        1 for i, o in zip(inputs, outputs, strict=True) if i is not None and i == o
    )


def test_a_column_not_searched_spills_nothing_and_has_no_found_count():
    t = Tally(("c", "d"), frozenset({"c"}))
    t.add("d", pa.array(["a", "b"]), pa.array(["a", "x"]))
    counts = t.close()
    assert "found_in_production" not in counts["d"] and counts["d"]["unchanged"] == 1
    assert counts["c"]["found_in_production"] == 0


def test_outputs_out_of_shape_are_counted_on_scrubbed_rows_only():
    """A column with a shape predicate counts its non-NULL outputs that break it (static rows apart); a
    column without one has no count, so validation checks its shape in the copy instead."""
    import pyarrow.compute as pc

    def digits(values: pa.Array) -> pa.Array:
        return pc.match_substring_regex(values, "^[0-9]+$")

    t = Tally(("c", "d"), shapes={"c": digits})
    t.add("c", pa.array(["a", "b", "c", "d", "e"]), pa.array(["1", "x2", None, "33", "y"]))
    static = pa.array([False, False, False, True, True])  # the last two rows are kept as they are
    t.add("c", pa.array(["f", "g", "h", "i", "j"]), pa.array(["4", "z", "5", "i", "j"]), static)
    t.add("d", pa.array(["a"]), pa.array(["x"]))
    counts = t.close()
    assert counts["c"]["out_of_shape"] == 3  # x2 and y, then z; never the NULL nor the static rows
    assert "out_of_shape" not in counts["d"]
