"""A run limited to some tables: their rows are refreshed, every other table is published empty.

An on-demand refresh may name the tables someone needs (Airflow's `tables` param). The working copy is still a
clone of the whole production database, so an unnamed table holds production rows too; leaving it unscrubbed
is not an option, and scrubbing it would make the subset pointless. So it is treated as `copy: schema_only`:
emptied by the scrub, expected empty by validation. The rules are still checked in full first: a run limited
to some tables fails on an unclassified column anywhere, like every run.

Emptying a table with TRUNCATE ... CASCADE also empties the tables whose foreign keys reference it, so the
named tables must include every table they reference; the error names the ones to add.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from deid import names
from deid.errors import TerminalError
from deid.rules import coverage
from deid.rules.model import RuleFile
from deid.schema import Schema
from deid.suggest import did_you_mean


def only_tables(rules: RuleFile, schema: Schema, tables: Iterable[str]) -> RuleFile:
    """`rules` with every table outside `tables` (qualified names) copied schema only.

    Raises RuleProblems for an unclassified column anywhere, TerminalError for an unknown table or one whose
    referenced tables are not named.
    """
    coverage.check_or_raise(rules, schema)
    try:
        wanted = {names.table_key(t) for t in tables}
    except names.BadName as exc:
        raise TerminalError(f"tables: {exc}") from None
    known = {t.qualified for t in schema.rule_tables}
    unknown = sorted(wanted - known)
    if unknown:
        hints = "".join(did_you_mean(name, known) for name in unknown)
        raise TerminalError(
            f"tables: {', '.join(unknown)} not in database {schema.database} (use schema.table names).{hints}"
        )
    missing = _referenced_but_not_named(schema, wanted)
    if missing:
        needs = "; ".join(f"{table} references {', '.join(refs)}" for table, refs in sorted(missing.items()))
        raise TerminalError(
            f"tables: {needs}. Add the referenced tables: the others are emptied, and emptying a table "
            "empties the rows that reference it."
        )
    return dataclasses.replace(
        rules,
        tables=tuple(
            rule if rule.name in wanted else dataclasses.replace(rule, copy="schema_only")
            for rule in rules.tables
        ),
    )


def _referenced_but_not_named(schema: Schema, wanted: set[str]) -> dict[str, list[str]]:
    parents = {t.qualified: t.partition_of or t.qualified for t in schema.tables}  # partitions -> parent
    missing: dict[str, list[str]] = {}
    for table in schema.rule_tables:
        if table.qualified not in wanted:
            continue
        referenced = {parents.get(fk.ref_table, fk.ref_table) for fk in table.foreign_keys}
        absent = sorted(referenced - wanted - {table.qualified})
        if absent:
            missing[table.qualified] = absent
    return missing
