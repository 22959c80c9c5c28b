"""`deid diff`: what changed between a committed schema snapshot and the live schema (or another snapshot),
and what each change means for the rule file.

Structure only (names, types, triggers): never a row value. The verdict is the real lint's
(`coverage.check` against the new schema); each problem it reports is attached to the change that caused it,
by the rule-file line it names, so the owner reads "dropped column x: delete line 42" rather than a bare
lint error. Renames are a heuristic (structure cannot tell a rename from a drop and an add): a column dropped
and one added in the same table with the same type, at the same position or as the only such pair; a table
dropped and one added with the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deid import names
from deid.errors import Problem
from deid.rules import coverage
from deid.rules.model import RuleFile
from deid.schema import Column, Schema, Table

# kinds of change, in the order a report lists them: what breaks the rule file first
ORDER = (
    "dropped table",
    "renamed table",
    "new table",
    "dropped column",
    "renamed column",
    "new column",
    "retyped column",
    "resized column",
    "nullability",
    "enum labels",
    "new trigger",
    "dropped trigger",
    "new partition",
    "dropped partition",
)


@dataclass
class Change:
    kind: str  # one of ORDER
    table: str  # qualified, in the new schema when it exists there
    column: str | None = None
    old: str | None = None  # the old name or type, as the kind needs
    new: str | None = None
    meaning: str = ""  # what it means for the rule file (filled by `explain`)
    needs_change: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def subject(self) -> str:
        if self.kind == "renamed table":
            return f"{self.old} → {self.table}"
        if self.kind == "renamed column":
            return f"{names.column_key(self.table, self.old or '')} → {self.column}"
        if self.column is not None:
            return names.column_key(self.table, self.column)
        return self.table


@dataclass
class Drift:
    changes: list[Change]
    other_problems: list[Problem]  # lint problems no change explains (the rule file was wrong before)
    rules_file: str

    @property
    def needs_change(self) -> bool:
        return bool(self.other_problems) or any(c.needs_change for c in self.changes)


def diff_schemas(old: Schema, new: Schema) -> list[Change]:
    """Every structural change from `old` to `new` that matters to rules, in ORDER."""
    changes: list[Change] = []
    before = {t.qualified: t for t in old.tables}
    after = {t.qualified: t for t in new.tables}
    dropped = [before[k] for k in before if k not in after]
    added = [after[k] for k in after if k not in before]
    for gone in list(dropped):
        twin = next((t for t in added if _same_columns(gone, t) and not t.partition_of), None)
        if twin is not None and not gone.partition_of:
            changes.append(Change("renamed table", twin.qualified, old=gone.qualified))
            dropped.remove(gone)
            added.remove(twin)
    for t in dropped:
        kind = "dropped partition" if t.partition_of else "dropped table"
        changes.append(Change(kind, t.qualified, old=t.partition_of))
    for t in added:
        kind = "new partition" if t.partition_of else "new table"
        changes.append(Change(kind, t.qualified, new=t.partition_of))
    for key in before.keys() & after.keys():
        changes += _table_changes(before[key], after[key])
    return sorted(changes, key=lambda c: (ORDER.index(c.kind), c.table, c.column or ""))


def _same_columns(a: Table, b: Table) -> bool:
    return {(c.name, c.data_type) for c in a.columns} == {(c.name, c.data_type) for c in b.columns}


def _table_changes(old: Table, new: Table) -> list[Change]:
    t = new.qualified
    changes: list[Change] = []
    before = {c.name: (i, c) for i, c in enumerate(old.columns)}
    after = {c.name: (i, c) for i, c in enumerate(new.columns)}
    dropped = [name for name in before if name not in after]
    added = [name for name in after if name not in before]
    for gone in list(dropped):
        i, column = before[gone]
        same_type = [a for a in added if after[a][1].data_type == column.data_type]
        same_place = [a for a in same_type if after[a][0] == i]
        others = [d for d in dropped if before[d][1].data_type == column.data_type]
        twin = same_place[0] if same_place else (same_type[0] if len(same_type) == 1 == len(others) else None)
        if twin is not None:
            changes.append(Change("renamed column", t, twin, old=gone, new=twin))
            dropped.remove(gone)
            added.remove(twin)
    changes += [Change("dropped column", t, name, old=before[name][1].data_type) for name in dropped]
    changes += [Change("new column", t, name, new=after[name][1].data_type) for name in added]
    for name in before.keys() & after.keys():
        changes += _column_changes(t, before[name][1], after[name][1])
    old_triggers = {tr.name for tr in old.triggers}
    new_triggers = {tr.name for tr in new.triggers}
    changes += [Change("new trigger", t, old=None, new=name) for name in sorted(new_triggers - old_triggers)]
    changes += [Change("dropped trigger", t, old=name) for name in sorted(old_triggers - new_triggers)]
    return changes


def _column_changes(table: str, old: Column, new: Column) -> list[Change]:
    out = []
    if old.data_type != new.data_type:
        # only the length limit moved (varchar(120) -> varchar(80)): a resize, not a retype
        resized = old.kind == new.kind and old.max_length != new.max_length
        kind = "resized column" if resized else "retyped column"
        out.append(Change(kind, table, new.name, old=old.data_type, new=new.data_type))
    if old.nullable != new.nullable:
        states = ("NOT NULL", "nullable")
        out.append(Change("nullability", table, new.name, old=states[old.nullable], new=states[new.nullable]))
    if old.enum_labels != new.enum_labels and old.data_type == new.data_type:
        labels = ", ".join(old.enum_labels), ", ".join(new.enum_labels)
        out.append(Change("enum labels", table, new.name, old=labels[0], new=labels[1]))
    return out


def explain(changes: list[Change], rules: RuleFile, new: Schema) -> Drift:
    """Attach to each change the lint problems it causes and what to do in the rule file."""
    problems = [p for p in coverage.check(rules, new) if not _is_missing_summary(p)]
    claimed: set[Problem] = set()
    for change in changes:
        _explain(change, rules, new, problems, claimed)
    explained = {(c.table, c.column) for c in changes if c.needs_change}
    explained |= {(c.table, None) for c in changes if c.kind == "new table"}
    unexplained = [
        names.column_key(table.qualified, c.name)
        for table, cols in coverage.missing_columns(rules, new)
        for c in cols
        if not explained & {(table.qualified, c.name), (table.qualified, None)}
    ]
    others = [p for p in problems if p not in claimed]
    if unexplained:
        others.append(
            Problem(
                rules.file,
                0,
                f"column(s) without a rule already before these changes: {', '.join(unexplained)}",
                "add their rules (`deid lint` prints a block to paste)",
            )
        )
    return Drift(changes, others, rules.file)


def _is_missing_summary(problem: Problem) -> bool:
    # coverage's one summary of every unclassified column: each new column gets its own finding instead
    return problem.line == 0 and "have no rule" in problem.message


def _take(problems: list[Problem], claimed: set[Problem], line: int) -> list[Problem]:
    """The unclaimed problems at `line` of the rule file: those the change there caused."""
    found = [p for p in problems if p not in claimed and p.line == line]
    claimed.update(found)
    return found


def _explain(
    change: Change, rules: RuleFile, new: Schema, problems: list[Problem], claimed: set[Problem]
) -> None:  # one branch per kind of change, in ORDER
    f = rules.file
    table_rule = rules.table(change.table)
    column_rule = table_rule.column(change.column) if table_rule and change.column else None
    kind = change.kind
    if kind == "dropped table":
        if table_rule is None:
            change.meaning = "it had no rule: nothing to change"
            return
        change.problems = _take(problems, claimed, table_rule.line)
        change.meaning = (
            f"its rule is now an error: delete the entry {change.table} at line {table_rule.line} of {f}"
        )
    elif kind == "renamed table":
        old_rule = rules.table(change.old or "")
        if table_rule is not None:
            change.meaning = f"the rule file already has an entry for it (line {table_rule.line})"
        elif old_rule is not None:
            change.problems = _take(problems, claimed, old_rule.line)
            change.meaning = f"rename the entry {change.old} at line {old_rule.line} of {f} to {change.table}"
        else:
            change.meaning = "neither name has a rule: add one (see the new table block)"
    elif kind == "new table":
        if table_rule is not None:
            change.meaning = f"the rule file already has its entry (line {table_rule.line})"
            return
        table = new.table(change.table)
        assert table is not None
        block = coverage.paste_block([(table, list(table.columns))], rules).split("\n", 1)[1]
        change.meaning = f"needs an entry in {f} (lint fails closed) — suggested block:\n{block}"
        change.needs_change = True
        return
    elif kind in ("dropped column", "renamed column"):
        old_name = change.old if kind == "renamed column" else change.column
        old_rule = table_rule.column(old_name or "") if table_rule else None
        new_rule = column_rule if kind == "renamed column" else None
        if old_rule is None and new_rule is None:
            if kind == "renamed column" and _needs_rule(rules, change.table, change.column):
                change.meaning = f"{change.column} needs a rule (lint fails closed)"
                change.needs_change = True
            else:
                change.meaning = "it had no rule: nothing to change"
            return
        if old_rule is not None:
            change.problems = _take(problems, claimed, old_rule.line)
        if kind == "dropped column":
            change.meaning = (
                f"its rule is now an error: delete line {old_rule.line} of {f} (`{old_name}: ...`)"
                if old_rule
                else "nothing to change"
            )
        elif new_rule is not None:
            change.meaning = f"the rule is already under the new name (line {new_rule.line})"
        else:
            assert old_rule is not None
            change.meaning = (
                f"move the rule: rename `{old_name}` to `{change.column}` at line {old_rule.line} of {f} "
                "(check that the rule still fits what the column holds)"
            )
            change.needs_change = True
    elif kind == "new column":
        if column_rule is not None:
            change.meaning = f"the rule file already has its rule (line {column_rule.line})"
        elif not _needs_rule(rules, change.table, change.column):
            change.meaning = "its table is copy: schema_only (no rows): no rule needed"
        else:
            table = new.table(change.table)
            column = table.column(change.column or "") if table else None
            assert table is not None and column is not None
            suggestion = coverage.paste_block([(table, [column])], rules).splitlines()[-1].strip()
            where = (
                f"under {change.table} (line {table_rule.line})"
                if table_rule
                else f"to a new entry {change.table}"
            )
            change.meaning = (
                f"needs a rule (lint fails closed on unclassified columns) — add {where} of {f}: {suggestion}"
            )
            change.needs_change = True
        return
    elif kind in ("retyped column", "resized column", "nullability", "enum labels"):
        if column_rule is None:
            needed = _needs_rule(rules, change.table, change.column)
            change.meaning = "no rule covers it" if needed else "no rule needed"
            return
        change.problems = _take(problems, claimed, column_rule.line)
        what = f"the rule at line {column_rule.line} of {f} ({column_rule.transformer})"
        verdict = "no longer applies: change it" if change.problems else "still applies (lint passes)"
        change.meaning = f"{what} {verdict}"
    elif kind == "new trigger":
        change.problems = [p for p in problems if p not in claimed and f"trigger {change.new}" in p.message]
        claimed.update(change.problems)
        change.meaning = (
            "the scrub silences it, so what it derives needs a decision: add the triggers: entry lint names"
            if change.problems
            else "the scrub silences it; lint finds nothing it derives from scrubbed columns"
        )
    elif kind == "dropped trigger":
        declared = table_rule.trigger(change.old or "") if table_rule else None
        if declared is None:
            change.meaning = "the rule file did not name it: nothing to change"
            return
        change.problems = _take(problems, claimed, declared.line)
        change.meaning = f"its triggers: entry at line {declared.line} of {f} is now an error: delete it"
    elif kind == "new partition":
        change.meaning = f"follows the rule of {change.new}: nothing to change"
        if table_rule is not None:
            change.problems = _take(problems, claimed, table_rule.line)
    elif kind == "dropped partition":
        change.meaning = "partitions follow their parent's rule: nothing to change"
    change.needs_change = change.needs_change or bool(change.problems)


def _needs_rule(rules: RuleFile, table: str, column: str | None) -> bool:
    rule = rules.table(table)
    if rule is not None and rule.copy == "schema_only":
        return False
    return rule is None or column is None or rule.column(column) is None


def render(drift: Drift | None, changes: list[Change], old_label: str, new_label: str) -> str:
    """The report: one paragraph per change, then lint problems no change explains, then the verdict."""
    lines = [f"Schema changes from {old_label} to {new_label}:"]
    if not changes:
        lines.append("  none")
    for change in changes:
        head = f"  {change.kind} {change.subject}"
        if change.kind in ("retyped column", "resized column", "nullability", "enum labels"):
            head += f": {change.old} → {change.new}"
        elif change.kind == "new column":
            head += f" ({change.new})"
        elif change.kind == "new trigger":
            head += f": {change.new}"
        elif change.kind == "dropped trigger":
            head += f": {change.old}"
        mark = "✗ " if change.needs_change else ""
        meaning = change.meaning.replace("\n", "\n      ")
        lines.append(f"{head}\n    {mark}{meaning}" if meaning else head)
        for p in change.problems:
            lines.append("    lint: " + str(p).replace("\n", "\n    "))
    if drift is None:
        return "\n".join(lines)
    if drift.other_problems:
        lines.append(f"\nLint problems of {drift.rules_file} that no change above explains:")
        lines += ["  " + str(p).replace("\n", "\n  ") for p in drift.other_problems]
    lines.append(
        f"\n{drift.rules_file} needs changes (see ✗ above); `deid lint` fails until then."
        if drift.needs_change
        else f"\n{drift.rules_file} needs no change: lint passes against {new_label}."
    )
    return "\n".join(lines)
