"""Before and after for a sample of one table, computed the way the night computes it, on a throw-away copy.

Production is read once, read-only, in one transaction: the table's definition from the catalog and its
first N rows (as text, held in memory). The plan is the night's (the rules against production's schema, as
a snapshot would clone it), and the sample is rewritten with that plan's own statement, the same `_deid`
support objects and dictionaries, and the key derived from the real salt: a keyed transform shows the value
the night would give. Everything happens in a throw-away database on the staging server (see
Backend.preview_support), dropped in a `finally`, so a failure or a signal (deid.signals turns
SIGINT and SIGTERM into an exception) leaves nothing; a SIGKILL leaves a database the next preview or
`deid cleanup` drops. Nothing here takes the run lock or touches a staging name's copies: a preview runs
beside a nightly run and never sees or changes the published copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from deid import rawsql
from deid.backends import PreviewSupport, backend_for
from deid.cloners import create_working_copy
from deid.config import Config, Settings
from deid.db import connect_readonly, engine, normalise_url
from deid.dberrors import retell
from deid.errors import UsageError
from deid.lock import lock_url
from deid.names import BadName, table_key
from deid.plan import ColumnAction, TablePlan, plan_for, shown_params
from deid.rules.load import load_rules
from deid.steps.copies import admin, drop_database
from deid.suggest import did_you_mean
from deid.transformers import get

MAX_ROWS = 100  # a preview is for eyes, and every row shown is a production row on a screen


@dataclass(frozen=True)
class Row:
    before: tuple[str | None, ...]
    after: tuple[str | None, ...] | None  # None: the plan removes the row (copy: schema_only)
    static: bool = False  # kept intact as static test data (keep_rows_where)


@dataclass
class Preview:
    database: str
    table: str
    columns: list[str]
    rules: list[str]  # per column: what the plan does to it
    kept: list[bool]  # per column: the plan keeps it
    order: str  # how the sample was chosen
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compute(
    config: Config, database: str, table_text: str, rows: int, columns: list[str] | None, settings: Settings
) -> Preview:
    """The preview of `rows` rows of a table of `database` (limited to `columns` when given)."""
    if not 1 <= rows <= MAX_ROWS:
        raise UsageError(f"--rows must be from 1 to {MAX_ROWS}")
    db = config.database(database)
    try:
        table = table_key(table_text)
    except BadName as exc:
        raise UsageError(str(exc)) from None
    rules = load_rules(config.rules_path(database))
    production = connect_readonly(settings.connection(db.production), poolclass=sa.pool.NullPool)
    try:
        with production.connect() as connection:
            backend = backend_for(db.engine)
            support = backend.preview_support()
            schema = backend.introspect(connection, database)
            plan, _waiting = plan_for(rules, schema, has_migrations=db.migrations is not None)
            table_plan = plan.table(table)
            if table_plan is None:
                known = [t.table for t in plan.tables]
                raise UsageError(f"{table} is not a table of {database}.{did_you_mean(table, known)}")
            ddl, defined = support.table_ddl(connection, table)
            names = [name for name, _type, _generated in defined]
            shown = _shown(names, columns, table)
            key = schema.table(table).primary_key
            sampled = support.sample(connection, table, names, key, rows)
    finally:
        production.dispose()
    actions = {a.column: a for a in table_plan.actions}
    result = Preview(
        database,
        table,
        shown,
        [_rule(actions.get(c)) for c in shown],
        [actions.get(c) is None or not actions[c].rewrites for c in shown],
        f"the first {rows} by {', '.join(key)}" if key else f"{rows} in storage order (no primary key)",
    )
    if table_plan.before:
        result.notes.append(
            "the night also fires or silences triggers around this table's rewrite; the preview copies no "
            "trigger, so a column a trigger recomputes shows the value before that trigger"
        )
    after, static = _scrubbed(
        support,
        settings.connection(db.staging_server),
        settings.secret(db.salt_secret),
        plan.preamble,
        table_plan,
        ddl,
        defined,
        sampled,
    )
    index = [names.index(c) for c in shown]
    for number, row in enumerate(sampled, 1):
        new = after.get(number)
        result.rows.append(
            Row(
                tuple(row[i] for i in index),
                None if new is None else tuple(new[i] for i in index),
                number in static,
            )
        )
    return result


def _shown(names: list[str], columns: list[str] | None, table: str) -> list[str]:
    if not columns:
        return names
    unknown = [c for c in columns if c not in names]
    if unknown:
        hint = did_you_mean(unknown[0], names)
        raise UsageError(f"{table} has no column {', '.join(unknown)}.{hint} Columns: {', '.join(names)}")
    return list(dict.fromkeys(columns))


def _rule(action: ColumnAction | None) -> str:
    if action is None:
        return "?"
    params = shown_params(action) if action.rewrites else ""
    what = f"{action.transformer}({params})" if params else action.transformer
    return what if action.source == "rule" else f"{what} [{action.source}]"


def _scrubbed(
    support: PreviewSupport, server: str, salt: str, preamble, table_plan: TablePlan, ddl, defined, sampled
):
    """The sample after the plan's statement, by row number, and the numbers of the static test rows."""
    with admin(lock_url(server)) as connection:
        support.drop_leftovers(connection)
        name = support.new_name()
        support.hold(connection, name)
        try:
            create_working_copy(connection, name, "TEMPLATE template0")
            url = normalise_url(server).set(database=name)
            return _rewrite(support, url, salt, preamble, table_plan, ddl, defined, sampled)
        finally:
            drop_database(connection, name)
            support.release(connection, name)


def _rewrite(support: PreviewSupport, url, salt: str, preamble, table_plan: TablePlan, ddl, defined, sampled):
    table = table_plan.table
    written = [i for i, (_n, _t, generated) in enumerate(defined) if not generated]
    names = [n for n, _t, _g in defined]
    work = engine(url, poolclass=sa.pool.NullPool)
    try:
        with work.connect() as c:
            try:
                with c.begin():
                    for statement in ddl:
                        rawsql.execute(c, statement)
                    support.prepare_forms(c, _dictionaries(table_plan))
                    support.load(
                        c,
                        table,
                        [defined[i][:2] for i in written],
                        [[r[i] for i in written] for r in sampled],
                    )
                with c.begin():  # session settings made here outlive the transaction, as in the scrub
                    support.apply_key(c, salt)
                    for statement in preamble:
                        rawsql.execute(c, statement)
                with c.begin():
                    static = set()
                    if table_plan.keep_rows_where and table_plan.copy == "full":
                        static = set(support.matching(c, table, table_plan.keep_rows_where))
                    if table_plan.statement:
                        rawsql.execute(c, table_plan.statement)
                    return support.read_back(c, table, names), static
            except sa.exc.DBAPIError as exc:
                raise retell(exc, f"preview of {table}") from None
    finally:
        work.dispose()


def _dictionaries(table_plan: TablePlan) -> set[str]:
    return {d for a in table_plan.rewritten for d in get(a.transformer).dictionaries}
