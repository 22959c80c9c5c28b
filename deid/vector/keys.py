"""The keyed messages of transformers.common over Arrow arrays: `canonical` (the value in a form no session
setting changes) and `by_ints` / `by_units` (the PRF of `by_key`: another column's text where it is not
NULL, else the value's canonical form), bit-identical to the SQL of common.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.schema import Kind
from deid.vector import datetimes, prf

if TYPE_CHECKING:
    from deid.transformers.base import Batch, Target

Own = Callable[[np.ndarray], pa.Array]  # rows whose own message is needed -> canonical text (NULL elsewhere)


def canonical(values: pa.Array, target: Target) -> pa.Array:
    """As the reference SQL forms' common.canonical, as text: `extract(epoch from v)` of dates and
    timestamps, CAST(v AS numeric) of floats, and the value's own text otherwise."""
    column = target.column.name
    if target.kind in (Kind.DATE, Kind.TIMESTAMP):
        instants = datetimes.parse(values, timestamp=target.kind is Kind.TIMESTAMP, column=column)
        return datetimes.epoch_text(instants)
    if target.kind is Kind.FLOAT:
        from deid.vector import floats  # compiled by numba: imported where used (deid.vector.sha256_kernel)

        single = floats.single(target.sql_type, column)
        values = prf.texts(values)
        x = floats.parse(values, single=single, column=column)
        return floats.numeric_text(x, values.is_valid().to_numpy(zero_copy_only=False), single=single)
    return prf.texts(values)


def own_text(values: pa.Array) -> Own:
    """`Own` of kinds whose canonical form is their text."""
    values = prf.texts(values)
    return lambda needed: pc.if_else(needed, values, None)


def by_ints(batch: Batch, prefix: str, by: str, own: Own) -> np.ndarray:
    """As prf_int_sql(by_key(prefix, target, by)), for each row whose value is not NULL (0 elsewhere).

    Only the messages used are hashed: the entity's where it is not NULL, the value's own elsewhere.
    """
    valid = prf.texts(batch.values).is_valid().to_numpy(zero_copy_only=False)
    if not by:
        return prf.ints(batch.key, prefix, own(valid))[0]
    entity = prf.texts(batch.row(by))
    has_entity = valid & entity.is_valid().to_numpy(zero_copy_only=False)
    keyed = prf.ints(batch.key, prefix + ".by", pc.if_else(has_entity, entity, None))[0]
    needed = valid & ~has_entity
    if needed.any():
        keyed = np.where(has_entity, keyed, prf.ints(batch.key, prefix, own(needed))[0])
    return keyed


def by_units(batch: Batch, prefix: str, by: str, own: Own) -> np.ndarray:
    """As prf_unit_sql(by_key(prefix, target, by)): 53 bits of the PRF, uniform in [0, 1)."""
    return (by_ints(batch, prefix, by, own) >> 10).astype(np.float64) / 9007199254740992.0
