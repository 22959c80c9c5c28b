"""What validation looks at: the migrated working copy, and the part of it production can be compared with.

The plan the scrub applied was built from the copy as it was cloned; by validation the copy has been
migrated, and production may have changed since the snapshot (a deploy during the run). Validation works
from the copy:

- `for_copy`: the applied plan restricted to the tables and columns the migrated copy still has. A column
  the plan did not rewrite (kept by a rule, or added by a migration, whose values are staging's own) is a
  kept column: every kept column that can hold text is scanned for identifiers. A row condition reading a
  column a migration dropped cannot tell static rows any more, so its table has none.
- `for_production`: of that, what production can still answer for, table by table: the table exists there
  with the columns of the copy's primary key (rows are matched by it), and per column, production has it.
  Everything else is left out of the comparisons (and named), never queried into an SQL error.
"""

from __future__ import annotations

import dataclasses

from deid.names import column_key
from deid.plan import ColumnAction, Plan, TablePlan
from deid.rules.model import RuleFile, TableRule
from deid.schema import Column, Schema, Table

ADDED_BY_MIGRATIONS = "added by migrations"


def for_copy(applied: Plan, copy: Schema, rules: RuleFile | None = None) -> Plan:
    """`rules` (the file the plan was built from) gives the columns that migrations added the waivers their
    rules state: their rules waited for the migrations, so the applied plan has no action for them."""
    tables = []
    for table in copy.rule_tables:
        planned = applied.table(table.qualified)
        if planned is None:  # a table the migrations added: its values are staging's own, all kept
            planned = TablePlan(table.qualified, "full", (), None, None, table.row_estimate)
        tables.append(_restricted(planned, table, rules.table(table.qualified) if rules else None))
    return dataclasses.replace(applied, tables=tuple(tables))


def _restricted(planned: TablePlan, table: Table, rule: TableRule | None) -> TablePlan:
    by_name = {a.column: a for a in planned.actions}

    def added(column: Column) -> ColumnAction:
        crule = rule.column(column.name) if rule else None
        waivers = crule.waivers if crule else ()
        return ColumnAction(column.name, column.data_type, "keep", {}, ADDED_BY_MIGRATIONS, None, waivers)

    actions = tuple(by_name.get(c.name) or added(c) for c in table.columns)
    if planned.keep_rows_where and not _reads_only(planned, table):
        return dataclasses.replace(planned, actions=actions, keep_rows_where=None, keep_rows_columns=())
    return dataclasses.replace(planned, actions=actions)


def _reads_only(table_plan: TablePlan, table: Table) -> bool:
    """The table's static-rows condition reads only columns `table` has."""
    return all(table.column(c) is not None for c in table_plan.keep_rows_columns)


def for_production(plan: Plan, copy: Schema, production: Schema) -> tuple[Plan, list[str]]:
    """The part of `plan` (for_copy's) that production can be compared with, and what was left out."""
    tables, left_out = [], []
    for table_plan in plan.tables:
        mine, theirs = copy.table(table_plan.table), production.table(table_plan.table)
        # rows are matched across the two by the copy's primary key: production must have its columns
        if mine is None or theirs is None or any(theirs.column(k) is None for k in mine.primary_key):
            left_out.append(table_plan.table)
            continue
        actions = tuple(a for a in table_plan.actions if theirs.column(a.column) is not None)
        left_out += [column_key(table_plan.table, a.column) for a in table_plan.actions if a not in actions]
        if table_plan.keep_rows_where and not _reads_only(table_plan, theirs):
            left_out.append(table_plan.table)
            continue
        tables.append(dataclasses.replace(table_plan, actions=actions))
    return dataclasses.replace(plan, tables=tuple(tables)), left_out
