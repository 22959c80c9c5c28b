"""Rules against a schema: fail closed.

Every column of every table must have a rule; every rule must name a table and column that exist, with a
transformer that can produce values of the column's type. A column that looks like an identifier but is kept
needs a written reason. Foreign keys must see the same transform on both ends, or the copy breaks them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from deid import names
from deid.errors import Problem, RuleProblems
from deid.rules import constraints
from deid.rules.model import ColumnRule, Policy, RuleFile, TableRule
from deid.rules.targets import target_for
from deid.rules.triggers import check_triggers
from deid.schema import Column, Kind, Schema, Table
from deid.suggest import did_you_mean
from deid.transformers import get


def check(rules: RuleFile, schema: Schema) -> list[Problem]:
    """Every problem between the rules and the schema, missing columns included."""
    problems: list[Problem] = []
    f = rules.file
    rule_tables = {t.qualified: t for t in schema.rule_tables}
    partitions = {t.qualified: t.partition_of for t in schema.tables if t.partition_of}
    for rule in rules.tables:
        table = rule_tables.get(rule.name)
        if table is None:
            if rule.name in partitions:
                problems.append(
                    Problem(
                        f,
                        rule.line,
                        f"table {rule.name} is a partition of {partitions[rule.name]}; "
                        "partitions follow the rule of their partitioned table",
                        f"move these column rules to {partitions[rule.name]}",
                    )
                )
            else:
                hint = did_you_mean(rule.name, rule_tables)
                problems.append(
                    Problem(
                        f,
                        rule.line,
                        f"table {rule.name} does not exist in database {schema.database}.{hint}",
                        "fix the name or delete the entry",
                        drift=True,
                    )
                )
            continue
        problems += _check_table(f, rule, table, rules.policy)
    problems += _check_foreign_keys(rules, schema)
    problems += constraints.check(rules, schema)  # CHECKs, partition keys, composite keys, recomputed columns
    missing = missing_columns(rules, schema)
    if missing:
        listed = ", ".join(names.column_key(t.qualified, c.name) for t, cols in missing for c in cols)
        problems.append(
            Problem(
                f,
                0,
                f"{sum(len(c) for _, c in missing)} column(s) have no rule (deid fails closed "
                f"on unclassified columns): {listed}",
                "add the YAML block printed below",
                drift=True,
            )
        )
    return problems


def check_or_raise(rules: RuleFile, schema: Schema) -> None:
    problems = check(rules, schema)
    if problems:
        missing = missing_columns(rules, schema)
        raise RuleProblems(problems, appendix=paste_block(missing, rules) if missing else "")


def missing_columns(rules: RuleFile, schema: Schema) -> list[tuple[Table, list[Column]]]:
    out = []
    for table in schema.rule_tables:
        rule = rules.table(table.qualified)
        if rule is not None and rule.copy == "schema_only":
            continue  # no rows are copied, so no value needs a rule
        cols = [c for c in table.columns if rule is None or rule.column(c.name) is None]
        if cols:
            out.append((table, cols))
    return out


def paste_block(missing: Iterable[tuple[Table, list[Column]]], rules: RuleFile) -> str:
    """YAML for the unclassified columns: one `tables:` mapping to merge into the rule file.

    It parses as YAML on its own. A table the file lacks is a new entry under `tables:`; for a table the
    file already has, the block names the entry (its line) and lists only the columns to add under its
    `columns:`, so a key-by-key merge gives the complete file. Keys are quoted where YAML needs it."""
    from deid.classify.yamlout import comment, scalar

    lines = [
        f"# Merge into {rules.file} (review every line; keep needs a reason where marked). Tables marked",
        "# 'existing' are already in the file: add only their columns, under that entry's `columns:`.",
        "tables:",
    ]
    for table, cols in missing:
        existing = rules.table(table.qualified)
        where = f"  # existing entry (line {existing.line}): add these under its columns:" if existing else ""
        # an existing entry is named as the file spells it, so a key-by-key merge lands in it
        lines.append(f"  {scalar(existing.key if existing and existing.key else table.qualified)}:{where}")
        lines.append("    columns:")
        for column in cols:
            rule, note = _suggestion(column, table, rules)
            lines.append(f"      {scalar(column.name)}: {rule}{comment(note)}")
    return "\n".join(lines)


def _suggestion(column: Column, table: Table, rules: RuleFile) -> tuple[str, str]:
    """The rule to propose (YAML flow text) and a trailing comment: the classifier's first candidate that the
    column's type accepts; a foreign key takes the rule of the key it references, when that has one."""
    from deid.classify import classify, needs_reason
    from deid.classify.propose import KEEP, candidates
    from deid.classify.yamlout import flow

    for fk in table.foreign_keys:
        if column.name in fk.columns:
            parent_rule = rules.table(fk.ref_table)
            ref = fk.ref_columns[fk.columns.index(column.name)]
            parent = parent_rule.column(ref) if parent_rule else None
            if parent is not None:
                rule = {"transformer": parent.transformer}
                if get(parent.transformer).rewrites:
                    rule["params"] = dict(parent.params)
                else:
                    rule["reason"] = f"references {names.column_key(fk.ref_table, ref)}, kept like it"
                return flow(rule), f"  # as {names.column_key(fk.ref_table, ref)}, which it references"
    suspicion = classify(column, table)
    options = candidates(suspicion, column, table, rules.policy)
    # a plain keep that _check_column would refuse for want of a reason moves on to the keep that gives one
    best = next((r for r in options if r != KEEP or not needs_reason(suspicion)), options[-1])
    if best == KEEP:
        return "keep", f"  # {column.data_type}: review"
    if suspicion.cls is None:
        return flow(best), ""
    return flow(best), f"  # {suspicion.cls} ({suspicion.confidence}, {'; '.join(suspicion.evidence)})"


def _kept_without_reason(
    f: str, crule: ColumnRule, where: str, column: Column, table: Table, policy: Policy
) -> list[Problem]:
    from deid.classify import kept_identifier
    from deid.classify.propose import KEEP, candidates
    from deid.classify.yamlout import flow

    suspicion = kept_identifier(column, table)
    if suspicion is None:
        return []
    rewrites = [
        r
        for r in candidates(suspicion, column, table, policy)
        if r != KEEP and r.get("transformer") != "keep"
    ]
    example = f"transform it (e.g. {flow(rewrites[0])}) or" if rewrites else "transform it or"
    return [
        Problem(
            f,
            crule.line,
            f"{where} looks like an identifier ({suspicion.cls.replace('_', ' ')}) but is kept as is "
            f"({'; '.join(suspicion.evidence)}; {suspicion.confidence} confidence)",
            f'{example} add reason: "why keeping it is safe"',
        )
    ]


def _check_table(f: str, rule: TableRule, table: Table, policy: Policy) -> list[Problem]:
    problems = check_triggers(f, rule, table)
    if rule.keep_rows_where:
        for name in rule.keep_rows_where.columns:
            if table.column(name) is None:
                hint = did_you_mean(name, [c.name for c in table.columns])
                problems.append(
                    Problem(
                        f,
                        rule.keep_rows_where_line,
                        f"keep_rows_where of {rule.name} reads column {name}, which does not exist.{hint}",
                        "use a column of this table",
                    )
                )
    for crule in rule.columns:
        column = table.column(crule.name)
        if column is None:
            hint = did_you_mean(crule.name, [c.name for c in table.columns])
            problems.append(
                Problem(
                    f,
                    crule.line,
                    f"column {names.column_key(rule.name, crule.name)} does not exist.{hint}",
                    "fix the name or delete the rule",
                    drift=True,
                )
            )
            continue
        problems += _check_column(f, rule, table, column, crule, policy)
    return problems


def _check_column(
    f: str, rule: TableRule, table: Table, column: Column, crule: ColumnRule, policy: Policy
) -> list[Problem]:
    where = names.column_key(rule.name, column.name)
    transformer = get(crule.transformer)
    if not transformer.rewrites:
        # a generated column is recomputed from the columns it reads, which have rules of their own
        if crule.reason or column.generated:
            return []
        return _kept_without_reason(f, crule, where, column, table, policy)
    if column.generated:
        return [
            Problem(
                f,
                crule.line,
                f"{where} is a generated column: the database recomputes it from the "
                "scrubbed columns it reads",
                "use keep (transform the columns it is computed from)",
            )
        ]
    element_wise = column.kind is Kind.ARRAY and transformer.name != "null"
    target = target_for(table, column, element_wise=element_wise)
    reason = transformer.cannot_apply(target, crule.params)
    if reason:
        what = f"elements of {column.data_type}" if element_wise else column.data_type
        keys = [k for k in table.unique_keys if k.columns == (column.name,)] if target.unique else []
        for key in keys[:1]:  # the constraint the rewrite would break, as lint names every other one
            what += f", {'primary key' if key.primary else 'unique'} {key.name}"
        return [
            Problem(
                f,
                crule.line,
                f"{where} ({what}): {reason}",
                "pick a transformer for this type (`deid transformers` shows which apply)",
            )
        ]
    enum_labels = column.enum_labels if column.kind is Kind.ENUM else ()
    if transformer.name == "constant" and enum_labels and crule.params.get("value") not in enum_labels:
        return [
            Problem(
                f,
                crule.line,
                f"{where}: constant is not a label of {column.data_type}",
                f"use one of: {', '.join(enum_labels)}",
            )
        ]
    return []


def _check_foreign_keys(rules: RuleFile, schema: Schema) -> list[Problem]:
    """A key and the columns referencing it must be transformed alike, or the references break."""
    problems = []
    for table in schema.rule_tables:
        rule = rules.table(table.qualified)
        if rule is None:
            continue
        for fk in table.foreign_keys:
            parent_rule = rules.table(schema.rule_table_of(fk.ref_table))
            if parent_rule is None:
                continue
            if parent_rule.copy == "schema_only" and rule.copy == "full":
                problems.append(
                    Problem(
                        rules.file,
                        rule.line,
                        f"{table.qualified} references {fk.ref_table} "
                        f"(foreign key {fk.name}), whose rows are not copied (copy: schema_only)",
                        f"copy {fk.ref_table} in full, or make {table.qualified} schema_only too",
                    )
                )
                continue
            for col, ref_col in zip(fk.columns, fk.ref_columns, strict=True):
                mine, theirs = rule.column(col), parent_rule.column(ref_col)
                if mine is None or theirs is None:
                    continue
                if (mine.transformer, dict(mine.params)) != (theirs.transformer, dict(theirs.params)):
                    problems.append(
                        Problem(
                            rules.file,
                            mine.line,
                            f"{names.column_key(table.qualified, col)} references "
                            f"{names.column_key(fk.ref_table, ref_col)} "
                            f"(foreign key {fk.name}) but is transformed differently "
                            f"({_describe(mine)} vs {_describe(theirs)})",
                            "give both columns the same rule, so every reference still matches: "
                            + _describe(theirs),
                        )
                    )
    return problems


def _describe(rule: ColumnRule) -> str:
    params = ", ".join(f"{k}: {v!r}" for k, v in rule.params.items())
    return f"{rule.transformer}({params})" if params else rule.transformer


def absent_from(rules: RuleFile, schema: Schema) -> set[str]:
    """Tables ("schema.table") and columns ("schema.table.column") that `rules` names and `schema` lacks."""
    missing = set()
    for rule in rules.tables:
        table = schema.table(rule.name)
        if table is None:
            missing.add(rule.name)
            continue
        missing |= {names.column_key(rule.name, c.name) for c in rule.columns if table.column(c.name) is None}
    return missing


def without(rules: RuleFile, dropped: set[str]) -> RuleFile:
    """`rules` without the table rules and column rules named in `dropped` (as absent_from names them)."""
    if not dropped:
        return rules
    tables = tuple(
        dataclasses.replace(
            t, columns=tuple(c for c in t.columns if names.column_key(t.name, c.name) not in dropped)
        )
        for t in rules.tables
        if t.name not in dropped
    )
    return dataclasses.replace(rules, tables=tables)


def awaiting_migrations(rules: RuleFile, schema: Schema, has_migrations: bool) -> tuple[RuleFile, set[str]]:
    """Rules to check against a schema from before tonight's migrations (the copy's, or production's for
    lint): with migrations configured, rules for tables and columns that it lacks are set aside (they wait
    for the migrate step, whose re-check against the migrated copy is strict)."""
    if not has_migrations:
        return rules, set()
    waiting = absent_from(rules, schema)
    return without(rules, waiting), waiting


def check_large_objects(rules: RuleFile, found: int) -> None:
    """RuleProblems when the database holds large objects and the rule file does not say what to do with
    them: they belong to no column, so no column rule covers them (fail closed)."""
    if found and rules.large_objects is None:
        raise RuleProblems(
            [
                Problem(
                    rules.file,
                    0,
                    f"the database holds {found} large object(s) (objects outside any table), which belong "
                    "to no column, so no rule covers them: their contents would be published as they are",
                    'add large_objects: drop (deid unlinks them in the copy) or large_objects: {keep: "why '
                    'their contents hold no identifier"}',
                )
            ]
        )
