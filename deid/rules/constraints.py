"""Rules against the schema's constraints: a rule whose output the database would refuse fails lint.

The scrub's UPDATE must satisfy every constraint of the rows it writes, or it fails at 3 a.m. Each check
below knows what a transformer can produce and compares it with a constraint of the column:

- a partition key rewritten when some value could fall outside every partition (no DEFAULT partition);
- a CHECK the transformer's output can leave (`noise` beyond a range, a `constant` outside an IN list, ...);
- a composite unique key with a column whose transformer can map distinct values to one;
- a column a BEFORE trigger recomputes during the scrub, so that the rule's output is overwritten.

A CHECK that cannot be read, or whose respect cannot be proven either way, is a warning (lint still passes):
constraint definitions are structure, so every message quotes the constraint's name and definition.
"""

from __future__ import annotations

import operator
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from deid import names
from deid.backends import backend_for
from deid.errors import Problem
from deid.rules.model import ColumnRule, RuleFile, TableRule
from deid.schema import CheckConstraint, CheckTerm, Column, Kind, Schema, Table
from deid.transformers import get

UNKNOWN = "unknown"  # a verdict: lint cannot tell whether the output respects the term


def check(rules: RuleFile, schema: Schema) -> list[Problem]:
    """Errors: rules whose output a constraint of the schema would refuse during the scrub."""
    return _findings(rules, schema)[0]


def warnings(rules: RuleFile, schema: Schema) -> list[Problem]:
    """CHECK constraints on rewritten columns that lint cannot prove the transformer respects."""
    return _findings(rules, schema)[1]


def _findings(rules: RuleFile, schema: Schema) -> tuple[list[Problem], list[Problem]]:
    errors: list[Problem] = []
    warned: list[Problem] = []
    for table in schema.rule_tables:
        rule = rules.table(table.qualified)
        if rule is None or rule.copy != "full":
            continue  # no rows are written
        errors += _unique_keys(rules.file, rule, table)
        errors += _recomputed(rules.file, rule, table)
        for crule in rule.columns:
            column = table.column(crule.name)
            if column is None or column.generated or not get(crule.transformer).rewrites:
                continue  # coverage reports those
            errors += _partition_key(rules.file, rule, table, column, crule, schema)
            for constraint in table.checks:
                if column.name in constraint.columns:
                    e, w = _check_constraint(rules.file, rule, schema, column, crule, constraint)
                    errors += e
                    warned += w
    return errors, warned


# --- partition keys --------------------------------------------------------------------------------------


def _partition_key(
    f: str, rule: TableRule, table: Table, column: Column, crule: ColumnRule, schema: Schema
) -> list[Problem]:
    """The scrub's UPDATE moves a row whose key changes to the partition of its new value; a value no
    partition accepts fails the scrub. Only a DEFAULT partition, or hash partitions covering every
    remainder, accept whatever the transformer produces."""
    if column.name not in table.partition_key:
        return []
    bounds = [t.partition_bound for t in schema.tables if t.partition_of == table.qualified]
    if "DEFAULT" in bounds or _hash_complete(bounds):
        return []
    return [
        Problem(
            f,
            crule.line,
            f"{names.column_key(rule.name, column.name)} is in the partition key of {table.qualified} "
            f"(PARTITION BY {table.partition_by}) and {crule.transformer} rewrites it: the scrub moves each "
            f"row to the partition of its new value, and a value outside every one of its {len(bounds)} "
            "partition(s) fails the run (it has no DEFAULT partition)",
            "keep the column (with reason: if it looks like an identifier), or give the table a DEFAULT "
            f"partition (CREATE TABLE ... PARTITION OF {table.qualified} DEFAULT)",
        )
    ]


def _hash_complete(bounds: list[str]) -> bool:
    moduli = [re.search(r"modulus (\d+), remainder (\d+)", b) for b in bounds]
    if not moduli or not all(moduli):
        return False
    return sum(Fraction(1, int(m[1])) for m in moduli if m) == 1


# --- unique keys and triggers ----------------------------------------------------------------------------


def _unique_keys(f: str, rule: TableRule, table: Table) -> list[Problem]:
    """A single-column key is checked where the transformer is matched to the column (unique_safe); a
    composite one breaks as soon as one of its columns can map distinct values to one: two rows that
    differed only there then collide. shift_date keyed `by:` another column of the key moves all rows of
    one key value alike, so it keeps them apart."""
    problems = []
    for key in table.unique_keys:
        if len(key.columns) < 2:
            continue
        for name in key.columns:
            crule = rule.column(name)
            if crule is None:
                continue
            transformer = get(crule.transformer)
            if not transformer.rewrites or transformer.unique_safe or transformer.name == "null":
                continue  # NULLs never collide in a unique key; key columns of a primary key are NOT NULL
            if transformer.name == "shift_date" and crule.params.get("by") in key.columns:
                continue
            kind = "primary key" if key.primary else "unique key"
            problems.append(
                Problem(
                    f,
                    crule.line,
                    f"{names.column_key(rule.name, name)} is in the {kind} {key.name} "
                    f"({', '.join(key.columns)}) and {crule.transformer} can give equal outputs for "
                    "distinct inputs: two rows that differ only there would collide and fail the run",
                    "use hash or a fake.* transformer with unique: true, keep the column, or (for "
                    "shift_date) key it by: another column of the key",
                )
            )
    return problems


def _recomputed(f: str, rule: TableRule, table: Table) -> list[Problem]:
    """A trigger the rules make `recompute` overwrites what it derives after the rule wrote it."""
    problems = []
    for trigger in table.triggers:
        declared = rule.trigger(trigger.name)
        if declared is None or declared.action != "recompute" or not trigger.derives:
            continue
        for derived in trigger.derives:
            crule = rule.column(derived.column)
            if crule is None or not get(crule.transformer).rewrites:
                continue
            problems.append(
                Problem(
                    f,
                    crule.line,
                    f"{names.column_key(rule.name, derived.column)} is rewritten by {crule.transformer}, "
                    f"but trigger {trigger.name} (BEFORE, recompute) then sets it again from "
                    f"{', '.join(derived.sources) or 'the row'}: the rule has no effect",
                    "use keep (the trigger recomputes it from the scrubbed columns), or make the trigger "
                    'silent: {silent: "why"} and keep the rule',
                )
            )
    return problems


# --- CHECK constraints -----------------------------------------------------------------------------------


def _check_constraint(
    f: str,
    rule: TableRule,
    schema: Schema,
    column: Column,
    crule: ColumnRule,
    constraint: CheckConstraint,
) -> tuple[list[Problem], list[Problem]]:
    where = names.column_key(rule.name, column.name)
    named = f"CHECK constraint {constraint.name} ({constraint.definition})"
    unknown = []
    for term in backend_for(schema.engine).check_terms(constraint.definition, constraint.columns):
        if term.column not in (None, column.name) or (term.column is None and column.name not in term.value):
            continue  # a term on other columns: this rule does not change its outcome
        verdict = _verdict(crule, column, term)
        if verdict == UNKNOWN:
            unknown.append(term.text)
        elif verdict:
            return [
                Problem(f, crule.line, f"{where}: {verdict}, which {named} refuses", _fix(crule, term))
            ], []
    if not unknown:
        return [], []
    return [], [
        Problem(
            f,
            crule.line,
            f"warning: {where} is rewritten by {crule.transformer}, and lint cannot tell whether its output "
            f"passes {named} (what it cannot prove: {'; '.join(unknown)}); if it does not, the run fails",
            "check it against the constraint (`deid plan` shows the SQL), or keep the column",
        )
    ]


def _fix(crule: ColumnRule, term: CheckTerm) -> str:
    if crule.transformer == "noise":
        return "use `noise` with `min:`/`max:` inside the CHECK range, or keep the column"
    if crule.transformer == "constant":
        return "use a constant the constraint accepts"
    if term.op == "in":
        return f"use constant with one of {', '.join(repr(str(v)) for v in term.value)}, or keep the column"
    return "use a transformer whose output the constraint accepts (`deid transformers`), or keep the column"


def _verdict(crule: ColumnRule, column: Column, term: CheckTerm) -> str | None:
    """None: the output passes `term`; UNKNOWN; or what the transformer does that the term refuses."""
    name, params = crule.transformer, crule.params
    if term.op == "not null":
        return "null makes every value NULL" if name == "null" else None
    if term.op == "other":
        return None if name == "null" and not _rejects_null(term.text) else UNKNOWN
    if name == "null":
        return None  # a CHECK passes when it is NULL; only NOT NULL (coverage) or IS NOT NULL refuse NULL
    if name == "constant":
        return _constant(params["value"], term)
    if term.op == "in":
        return f"{name} produces values that are not chosen from the listed ones"
    if name == "noise":
        return _noise(params, column, term)
    if name == "truncate_date" and term.op in ("<=", "<"):
        return None  # truncation only moves values down
    # shift_date and truncate_date against a date bound fail only for values near it (a sanity bound such as
    # > 1900-01-01 is far from every row): a snapshot cannot tell, so UNKNOWN (a warning) below
    if term.op == "<>" and term.value == "" and column.kind is Kind.TEXT:
        return None  # text transformers never produce the empty string from a non-empty one
    return UNKNOWN


def _rejects_null(text: str) -> bool:
    return bool(re.search(r"\bIS NOT NULL\b|\bcoalesce\(|\bIS (NOT )?DISTINCT\b|\bCASE\b", text, re.I))


def _noise(params: dict[str, Any] | Any, column: Column, term: CheckTerm) -> str | None:
    """noise multiplies by a factor in [1 - relative, 1 + relative], so it keeps a value's sign (>= 0, <= 0
    hold) and can cross any other bound, unless it is clamped by min:/max: inside it."""
    relative = params.get("relative")
    low, high = params.get("min"), params.get("max")
    if not isinstance(term.value, Decimal):
        return UNKNOWN
    bound, op = term.value, term.op
    if op in (">=", ">"):
        if low is not None and _holds(Decimal(str(low)), op, bound):
            return None
        if op == ">=" and bound == 0:
            return None
    elif op in ("<=", "<"):
        if high is not None and _holds(Decimal(str(high)), op, bound):
            return None
        if op == "<=" and bound == 0:
            return None
    else:
        return UNKNOWN
    return f"noise (relative: {relative}) moves values up to {relative:.0%} either way, across {term.text}"


def _constant(value: str, term: CheckTerm) -> str | None:
    said = f"the constant {value!r}"
    if term.op == "in":
        accepted = {str(v) for v in term.value}
        return None if value in accepted or _number(value) in term.value else f"{said} is not listed"
    if term.op.startswith("length"):
        fits = _holds(Decimal(len(value)), term.op.removeprefix("length"), Decimal(term.value))
        return None if fits else f"{said} is too long"
    if term.op == "~":
        try:
            return None if re.search(term.value, value) else f"{said} does not match {term.value!r}"
        except re.error:
            return UNKNOWN
    left: Any = _number(value) if isinstance(term.value, Decimal) else value
    if left is None:
        return UNKNOWN
    if not isinstance(term.value, (Decimal, str)):
        left, right = str(value), str(term.value)  # dates: ISO text compares as the dates do
    else:
        right = term.value
    return None if _holds(left, term.op, right) else f"{said} fails {term.text}"


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


_OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "=": operator.eq}


def _holds(left: Any, op: str, right: Any) -> bool:
    return _OPERATORS.get(op, operator.ne)(left, right)
