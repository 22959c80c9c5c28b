"""The plan: every decision the scrub will take, made from the rules and the schema, before anything runs.

`deid plan` prints it; the scrub step executes exactly these decisions. A table whose columns are all kept is
not touched; `copy: schema_only` tables are emptied; a table with columns to transform is rewritten once,
whatever the number of columns. Where the engine runs SQL forms (Capabilities.sql_forms), the plan also
carries the statements its backend wrote for each table (Backend.column_sql, Backend.table_statements); it
writes none itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from deid.backends import Backend, backend_for
from deid.rules import coverage
from deid.rules.model import ColumnRule, RowLimit, RuleFile, TableRule, Waiver
from deid.schema import Column, Schema, Table
from deid.transformers import get

KEEP = "keep"  # the transformer that leaves a column as it is
NO_ROWS = "(no rows)"  # the action of every column of a table the scrub empties (copy: schema_only)


@dataclass(frozen=True)
class ColumnAction:
    column: str
    data_type: str
    transformer: str
    params: dict[str, Any]
    source: str  # "rule" or "class <name>"
    sql: str | None  # the new value's expression; None when the column is kept
    waivers: tuple[Waiver, ...] = ()  # validation checks the rule waives for this kept column

    def waiver(self, check: str) -> Waiver | None:
        return next((w for w in self.waivers if w.check == check), None)

    @property
    def rewrites(self) -> bool:
        """Whether the scrub gives the column new values: its transformer is not `keep`, and its table is not
        emptied. Whatever the engine: `sql` is only the SQL form, which an engine may not use."""
        return self.transformer not in (KEEP, NO_ROWS)


@dataclass(frozen=True)
class TablePlan:
    table: str
    copy: str
    actions: tuple[ColumnAction, ...]
    keep_rows_where: str | None  # rendered SQL of the static-test-data condition
    statement: str | None  # None: the table is not touched
    row_estimate: int = 0
    keep_rows_limit: RowLimit = field(default_factory=RowLimit)  # how many rows the condition may keep
    # Around the statement, in its transaction: triggers fired (recompute) or silenced for the rewrite, and
    # put back as they were afterwards (the scrub's preamble already silences most).
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    # triggers the rules say to recompute: they must fire on every rewritten row (so the table is rewritten
    # by an UPDATE, never rebuilt by a swap, where no trigger fires)
    recomputed: tuple[str, ...] = ()
    # the columns keep_rows_where reads (derived from it, so left out of the plan's digest)
    keep_rows_columns: tuple[str, ...] = ()

    @property
    def rewritten(self) -> tuple[ColumnAction, ...]:
        return tuple(a for a in self.actions if a.rewrites)

    @property
    def touched(self) -> bool:
        """Whether the scrub changes the table at all: it is emptied, or it has columns to rewrite."""
        return self.copy != "full" or bool(self.rewritten)


@dataclass(frozen=True)
class Plan:
    database: str
    rules_digest: str
    tables: tuple[TablePlan, ...]
    dictionaries: tuple[str, ...]
    # what every scrub session runs first (Backend.scrub_preamble: triggers silenced, where the engine does
    # that per session); part of the digest, so a copy scrubbed another way is a different plan
    preamble: tuple[str, ...] = ()
    large_objects: str | None = None  # "drop" (the scrub unlinks them) or "keep", as the rules say

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(t.statement for t in self.tables if t.statement)

    @property
    def verdicts(self) -> dict[str, str]:
        """What happens to each table: "rewritten", "emptied" or "untouched" (for records and dry runs)."""
        return {
            t.table: "emptied" if t.copy == "schema_only" else "rewritten" if t.statement else "untouched"
            for t in self.tables
        }

    def table(self, name: str) -> TablePlan | None:
        return next((t for t in self.tables if t.table == name), None)

    @property
    def digest(self) -> str:
        """sha256 of every decision (tables, actions, conditions, statements; row estimates left out, as
        they change with ANALYZE): two plans with one digest scrub a copy alike. Steps that share a copy
        compare it, so none works from a plan other than the one the scrub applied."""
        # waivers are left out: they decide no statement, only validation, and the rules digest (in the
        # text) already changes with them; so plans of rule files without waivers keep their digests
        decisions = [
            {
                **{k: v for k, v in asdict(t).items() if k != "keep_rows_columns"},
                "row_estimate": None,
                "keep_rows_limit": asdict(t.keep_rows_limit),
                "actions": [{k: v for k, v in asdict(a).items() if k != "waivers"} for a in t.actions],
            }
            for t in self.tables
        ]
        text = json.dumps(
            [self.rules_digest, decisions, self.dictionaries, self.preamble, self.large_objects],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> str:
        """Every decision as JSON (what a copy carries: the plan its snapshot made, state.CopyState)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """The plan `to_json` wrote; the same digest (parameters are JSON values: strings, numbers, lists and
        mappings, as their YAML gave them)."""
        data = json.loads(text)

        def action(d: dict[str, Any]) -> ColumnAction:
            return ColumnAction(**{**d, "waivers": tuple(Waiver(**w) for w in d.get("waivers", ()))})

        def table(d: dict[str, Any]) -> TablePlan:
            tuples = {k: tuple(d.get(k, ())) for k in ("before", "after", "recomputed", "keep_rows_columns")}
            limit = RowLimit(**d.get("keep_rows_limit", {}))
            actions = tuple(action(a) for a in d["actions"])
            return TablePlan(**{**d, **tuples, "keep_rows_limit": limit, "actions": actions})

        tables = tuple(table(t) for t in data["tables"])
        listed = {k: tuple(data.get(k, ())) for k in ("dictionaries", "preamble")}
        return cls(**{**data, **listed, "tables": tables})


def plan_for(
    rules: RuleFile, schema: Schema, *, has_migrations: bool, subset: Iterable[str] | None = None
) -> tuple[Plan, set[str]]:
    """The plan for `schema` (a copy's own, as cloned), and the rules set aside because they wait for the
    copy's migrations. `subset`: only these tables keep their rows (see deid.subset)."""
    rules, waiting = coverage.awaiting_migrations(rules, schema, has_migrations)
    if subset is not None:
        from deid.subset import only_tables

        rules = only_tables(rules, schema, subset)
    return build_plan(rules, schema), waiting


def build_plan(rules: RuleFile, schema: Schema) -> Plan:
    """Check the rules against the schema (fail closed), then decide every table's statement."""
    coverage.check_or_raise(rules, schema)
    tables, dictionaries = [], set()
    for table in schema.rule_tables:
        rule = rules.table(table.qualified)
        assert rule is not None  # coverage guarantees it
        plan, needs = _table_plan(table, rule, backend_for(schema.engine))
        tables.append(plan)
        dictionaries |= needs
    return Plan(
        database=schema.database,
        rules_digest=rules.digest,
        tables=tuple(tables),
        dictionaries=tuple(sorted(dictionaries)),
        large_objects=rules.large_objects.action if rules.large_objects else None,
        preamble=backend_for(schema.engine).scrub_preamble(),
    )


def _table_plan(table: Table, rule: TableRule, backend: Backend) -> tuple[TablePlan, set[str]]:
    """The table's decisions, and where the engine runs the transformers' SQL forms
    (Capabilities.sql_forms), the statements its backend writes to carry them out; other engines stream every
    rewritten column through its vector form and read only the decisions."""
    if rule.copy == "schema_only":
        actions = tuple(
            ColumnAction(c.name, c.data_type, NO_ROWS, {}, "copy: schema_only", None) for c in table.columns
        )
        emptying = backend.table_statements(table, rule, (), None).statement
        return TablePlan(table.qualified, rule.copy, actions, None, emptying, table.row_estimate), set()
    actions, needs = [], set()
    for column in table.columns:
        crule = rule.column(column.name)
        assert crule is not None
        action, used = _column_action(table, column, crule, backend)
        actions.append(action)
        needs |= used
    condition = rule.keep_rows_where.render(backend) if rule.keep_rows_where else None
    touched = any(a.rewrites for a in actions)
    sets = [(a.column, a.sql) for a in actions if a.sql is not None]
    statements = backend.table_statements(table, rule, sets, condition)
    declared = {t.name: t.action for t in rule.triggers}
    recomputed = tuple(t.name for t in table.triggers if declared.get(t.name) == "recompute")
    plan = TablePlan(
        table.qualified,
        rule.copy,
        tuple(actions),
        condition,
        statements.statement,
        table.row_estimate,
        rule.keep_rows_at_most,
        statements.before,
        statements.after,
        recomputed if touched else (),
        rule.keep_rows_where.columns if rule.keep_rows_where else (),
    )
    return plan, needs


def _column_action(
    table: Table, column: Column, crule: ColumnRule, backend: Backend
) -> tuple[ColumnAction, set[str]]:
    transformer = get(crule.transformer)
    params = dict(crule.params)
    sql = backend.column_sql(table, column, transformer.name, params) if transformer.rewrites else None
    return (
        ColumnAction(
            column.name, column.data_type, transformer.name, params, crule.source, sql, crule.waivers
        ),
        set(transformer.dictionaries) if sql else set(),
    )


def how_rewritten(table_plan: TablePlan) -> str:
    """Whether the scrub streams the table through the vector forms or rewrites it by the SQL below."""
    held = sorted(
        {
            "arrays" if a.data_type.endswith("[]") else a.transformer
            for a in table_plan.rewritten
            if a.data_type.endswith("[]") or get(a.transformer).vector is None
        }
    )
    how = "streamed through the vector forms"
    if held:
        how += f" ({', '.join(held)} computed by the SQL forms below as the rows stream out)"
    return f"{how} if it holds stream_from_rows rows or more (deid.yaml), else rewritten by the SQL below"


def shown_params(action: ColumnAction) -> str:
    """The parameters that differ from the transformer's defaults; json's paths are shown by their keys."""
    transformer = get(action.transformer) if action.rewrites else None
    shown = []
    for name, value in action.params.items():
        param = transformer.param(name) if transformer else None
        if param is not None and not param.required and param.default == value:
            continue
        shown.append(f"{name}={list(value)!r}" if isinstance(value, dict) else f"{name}={value!r}")
    return ", ".join(shown)


def render(plan: Plan, with_sql: bool = True) -> str:
    """The plan as people read it: per table, what each column becomes, then the SQL."""
    out = [f"Plan for database {plan.database} (rules sha256 {plan.rules_digest[:12]})", ""]
    touched = sum(1 for t in plan.tables if t.statement)
    for t in plan.tables:
        verdict = (
            "emptied (schema_only)"
            if t.copy == "schema_only"
            else f"rewritten once ({len(t.rewritten)} column(s))"
            if t.statement
            else "not touched (all kept)"
        )
        out.append(f"{t.table}: {verdict}")
        if t.statement and t.copy == "full":
            out.append(f"  {how_rewritten(t)}")
        if t.keep_rows_where:
            out.append(
                f"  rows where {t.keep_rows_where} are static test data: kept intact, "
                f"{t.keep_rows_limit.describe()}"
            )
        width = max((len(a.column) for a in t.actions), default=0)
        for a in t.actions:
            params = shown_params(a)
            what = f"{a.transformer}({params})" if params else a.transformer
            out.append(f"  {a.column:<{width}}  {a.data_type:<28} -> {what}  [{a.source}]")
            for w in a.waivers:
                out.append(f"  {'':<{width}}  validation waives {w.check}: {w.reason} (rules line {w.line})")
        if with_sql and t.statement:
            out.append("")
            for statement in (*t.before, t.statement, *t.after):
                out.extend("  " + line for line in (statement + ";").splitlines())
        out.append("")
    out.append(
        f"{len(plan.tables)} table(s): {touched} with statements, {len(plan.tables) - touched} untouched."
    )
    waived = sum(len(a.waivers) for t in plan.tables for a in t.actions)
    if waived:
        out.append(f"{waived} validation waiver(s): each lets one check pass on one kept column.")
    if plan.dictionaries:
        out.append(f"Fake-value dictionaries: {', '.join(plan.dictionaries)}.")
    out.append(
        "Session setup: " + "; ".join(plan.preamble) + "; salt bound as session settings (never in SQL)."
    )
    return "\n".join(out)
