"""The statements of a plan on PostgreSQL (Backend.table_statements): a table's columns rewritten by one
set-based UPDATE of their SQL forms, a `copy: schema_only` table emptied, and triggers set for the rewrite
and put back after it, in its transaction."""

from __future__ import annotations

from collections.abc import Sequence

from deid.backends.base import TableStatements
from deid.backends.postgresql.quoting import quote_ident, quote_table
from deid.rules.model import TableRule
from deid.schema import Table

_ENABLE = {
    "origin": "ENABLE TRIGGER",
    "replica": "ENABLE REPLICA TRIGGER",
    "always": "ENABLE ALWAYS TRIGGER",
    "disabled": "DISABLE TRIGGER",
}


def table_statements(
    table: Table, rule: TableRule, sets: Sequence[tuple[str, str]], condition: str | None
) -> TableStatements:
    if rule.copy == "schema_only":
        return TableStatements(f"TRUNCATE TABLE {quote_table(table.qualified)} CASCADE")
    statement = _update(table, sets, condition)
    if statement is None:
        return TableStatements()
    return TableStatements(statement, *_trigger_states(table, rule))


def _update(table: Table, sets: Sequence[tuple[str, str]], condition: str | None) -> str | None:
    if not sets:
        return None
    assignments = [f"    {quote_ident(column)} = {sql}" for column, sql in sets]
    statement = f"UPDATE {quote_table(table.qualified)} SET\n" + ",\n".join(assignments)
    if condition:
        # IS NOT TRUE: a row whose condition is NULL is scrubbed, so an unknown never exempts a row
        statement += f"\nWHERE ({condition}) IS NOT TRUE"
    return statement


def _trigger_states(table: Table, rule: TableRule) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The scrub session runs with session_replication_role = replica, which silences ordinary triggers but
    not those enabled ALWAYS or REPLICA: those are disabled for the rewrite. A trigger the rules say to
    recompute is enabled ALWAYS for it, so it derives its columns from the scrubbed values. Each is put back
    in its own state afterwards, in the same transaction."""
    before, after = [], []
    for trigger in table.triggers:
        declared = rule.trigger(trigger.name)
        recompute = declared is not None and declared.action == "recompute"
        if recompute:
            wanted = "always"
        elif trigger.enabled in ("always", "replica"):
            wanted = "disabled"
        else:
            continue
        if wanted == trigger.enabled:
            continue
        target = f"ALTER TABLE {quote_table(table.qualified)} "
        before.append(target + f"{_ENABLE[wanted]} {quote_ident(trigger.name)}")
        after.append(target + f"{_ENABLE[trigger.enabled]} {quote_ident(trigger.name)}")
    return tuple(before), tuple(after)
