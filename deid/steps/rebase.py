"""Rebase: move every id the working copy hands out far above production's values.

Staging inserts then never produce an ID that exists, or will soon exist, in production, so rows can later be
copied or compared between the two. What moves depends on where the engine's ids come from
(Capabilities.sequence_kind): sequence objects, or a counter kept per table; the backend's
rebase_database does it, inside one transaction where the engine's DDL allows, and raises NoRoom naming every
counter without room before anything is written. The offset is deid.offsets.offset_for(logical date, ...):
reproducible for a date, different every day, never past the column's type.

The record (`ctx.record["offsets"]`) holds per sequence or counter: sequence, columns, high_water, offset,
next_value, limit, limited_by, clamped and rerun: names and ID numbers only, never row data.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from deid import db
from deid.backends import SequenceKind, backend_for
from deid.dberrors import retell
from deid.errors import TerminalError
from deid.schema import Schema
from deid.steps.context import RunContext

# --- the step ---------------------------------------------------------------------------------------------


def rebase(ctx: RunContext) -> dict[str, int]:
    """Rebase every sequence of ctx's working copy for ctx.logical_date; returns sequence -> next value.

    The full facts per sequence go to ctx.record["offsets"]; the offsets and production's high waters go on
    the copy, with the step's stamp (validation checks the sequences against them).
    """
    from deid.steps.ledger import begin, finish

    state = begin(ctx, "rebase")
    work = db.engine(ctx.work_url)
    try:
        backend = backend_for(work.dialect.name)
        if backend.capabilities.sequence_kind is SequenceKind.NONE:
            raise TerminalError(f"engine '{backend.name}' hands out no ids that deid could rebase")
        with work.begin() as connection:
            schema = backend.introspect(connection, ctx.work_name)
            results = backend.rebase_database(connection, schema, ctx.logical_date)
    except sa.exc.DBAPIError as exc:
        raise retell(exc, "rebase") from None
    finally:
        work.dispose()
    ctx.record["offsets"] = results
    finish(
        ctx,
        state,
        "rebase",
        schema=schema.digest,
        counts={"sequences": len(results)},
        **sequence_facts(results),
    )
    return {name: result["next_value"] for name, result in results.items()}


def rebase_database(connection: sa.Connection, schema: Schema, logical_date: dt.date) -> dict[str, dict]:
    """Rebase every id source of `schema` in the database of `connection`, the engine's way; returns the
    facts recorded per sequence or counter (see the module docstring)."""
    return backend_for(schema.engine).rebase_database(connection, schema, logical_date)


def sequence_facts(results: dict[str, dict]) -> dict[str, dict[str, int]]:
    """What the copy keeps of a rebase: per sequence its offset and production's high water."""
    return {
        "offsets": {name: facts["offset"] for name, facts in results.items()},
        "high_waters": {name: facts["high_water"] for name, facts in results.items()},
    }
