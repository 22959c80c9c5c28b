"""The last gate before publish: the copy, not any earlier step's word, says it may go live.

`check_publishable` refuses a working copy unless:

1. every step finished on it, in order, ending with validate, and nothing poisoned it (state.require);
2. the rule file is the one every step used, and gives the very plan the scrub applied (ledger.applied_plan)
   and validation checked;
3. its schema, read now, is the one validation saw (nothing was added or changed since);
4. every column of every table in it is accounted for (`unaccounted`): rewritten or kept by the plan the
   scrub applied, or added by tonight's migrations with a rule for it in the same rule file, or one of the
   migration tools' own bookkeeping tables. deid's own scrub objects must be gone;
5. it holds no large object, unless the rules keep them (they belong to no column).

Each is checked against the copy itself, so a step run out of order (`deid run --only publish`), a copy
left by a failed or interrupted step, or one changed behind deid's back is refused, naming what is missing.
"""

from __future__ import annotations

import sqlalchemy as sa

from deid import db
from deid.backends import backend_for
from deid.errors import TerminalError
from deid.migrations import is_bookkeeping
from deid.names import column_key
from deid.plan import Plan
from deid.rules.model import RuleFile
from deid.schema import Schema
from deid.steps.context import RunContext
from deid.steps.ledger import applied_plan
from deid.steps.state import CopyState, require

MAX_LISTED = 20


def check_publishable(ctx: RunContext, state: CopyState) -> CopyState:
    state = require(state, "publish", ctx.work_name)
    applied, cloned, rules = applied_plan(ctx, state)
    validated = state.stamp("validate")
    assert validated is not None  # require() saw it
    if validated.plan != applied.digest or validated.rules != rules.digest:
        raise TerminalError(
            f"{ctx.work_name} was validated with another plan or rule file than the one its scrub applied: "
            "run the job again"
        )
    work = db.engine(ctx.work_url, poolclass=sa.pool.NullPool)
    try:
        with work.connect() as c:
            copy = backend_for(ctx.database.engine).introspect(c, ctx.database.name)
            objects = backend_for(ctx.database.engine).large_objects(c)
    finally:
        work.dispose()
    if objects and applied.large_objects != "keep":
        raise TerminalError(
            f"{ctx.work_name} holds {objects} large object(s) that its rules do not keep: it cannot be "
            "published (large_objects: drop unlinks them in the scrub)"
        )
    if copy.digest != validated.schema_:
        raise TerminalError(
            f"the schema of {ctx.work_name} changed after it was validated: it cannot be published. Run the "
            "job again"
        )
    missing = unaccounted(applied, cloned, copy, rules)
    if missing:
        listed = ", ".join(missing[:MAX_LISTED]) + (" ..." if len(missing) > MAX_LISTED else "")
        raise TerminalError(
            f"{ctx.work_name} holds {len(missing)} column(s) that no rule applied to it accounts for: "
            f"{listed}. Nothing was published; every column needs a rule (deid lint shows which)"
        )
    return state


def unaccounted(applied: Plan, cloned: Schema, copy: Schema, rules: RuleFile) -> list[str]:
    """Columns of `copy` (as it is now) that nothing accounts for: not in `applied` (the plan the scrub ran,
    built from `cloned`), nor added since the clone with a rule in `rules`, nor bookkeeping."""
    found: list[str] = []
    backend = backend_for(copy.engine)
    for table in copy.tables:
        if backend.is_scrub_table(table):
            found += [column_key(table.qualified, c.name) for c in table.columns] or [table.qualified]
            continue
        if table.partition_of and copy.table(table.partition_of) is not None:
            continue  # a partition's rows are its parent's: the parent's rule is the one that applied
        planned = applied.table(table.qualified)
        rule = rules.table(table.qualified)
        if planned is None and rule is None and is_bookkeeping(table):
            continue
        before = cloned.table(table.qualified)
        for column in table.columns:
            existed = before is not None and before.column(column.name) is not None
            if existed and planned is not None and any(a.column == column.name for a in planned.actions):
                continue  # applied tonight by the scrub (rewritten, emptied or kept as the rule says)
            if not existed and rule is not None and rule.column(column.name) is not None:
                continue  # added by tonight's migrations, with its rule (the migrate step checked it)
            if not existed and rule is not None and rule.copy == "schema_only":
                continue
            found.append(column_key(table.qualified, column.name))
    return sorted(found)
