"""Read rule files and policies into the typed model, collecting every problem with its file and line.

The file's shape (keys, types, what each key takes) is checked by the models of `spec.py`, whose errors name
the key's line; loading then resolves what needs more than the file: the policy's classes, transformers and
their parameters (each transformer's params model), the row-condition grammar, table names, duplicates.
`coverage.py` then checks the loaded rules against a schema. All return *all* problems at once, so one lint
run shows the whole list to fix: the parts of a file whose shape is right are resolved even when another
part's is wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from deid import names, yamlmodel, yamlsrc
from deid.errors import Problem, RuleProblems
from deid.rules.condition import ConditionError, parse_condition
from deid.rules.model import (
    ColumnRule,
    IdentifierClass,
    LargeObjects,
    Policy,
    RowLimit,
    RuleFile,
    TableRule,
    TriggerRule,
    Waiver,
    frozen,
)
from deid.rules.spec import (
    DEFAULT_POLICY,
    POLICY_NAME,
    RULES_VERSION,
    ColumnSpec,
    PolicySpec,
    RuleFileSpec,
    TableSpec,
    keys,
)
from deid.rules.spec import RowLimit as RowLimitSpec
from deid.suggest import did_you_mean
from deid.transformers import UnknownTransformer, get
from deid.transformers.base import ParamError

__all__ = ["DEFAULT_POLICY", "RULES_VERSION", "load_policy", "load_rules", "policy_dir"]
TOP_KEYS = keys(RuleFileSpec)
TABLE_KEYS = keys(TableSpec)
ROW_LIMIT_KEYS = keys(RowLimitSpec)
COLUMN_KEYS = keys(ColumnSpec)
SHIPPED_POLICIES = Path(__file__).resolve().parents[2] / "rules" / "policies"


def policy_dir(rules_dir: Path) -> Path:
    """Policies beside the rule files win; otherwise the ones shipped with deid."""
    local = Path(rules_dir) / "policies"
    return local if local.is_dir() else SHIPPED_POLICIES


def load_policy(name: str, directory: Path) -> Policy:
    path = Path(directory) / f"{name}.yaml"
    if not os.path.exists(path):  # os.path's never raises; an unreadable folder reads as "not found"
        known = [p.stem for p in Path(directory).glob("*.yaml")]
        raise RuleProblems(
            [
                Problem(
                    str(path),
                    0,
                    f"policy '{name}' not found in {directory}.{did_you_mean(name, known)}",
                    f"use one of: {', '.join(sorted(known)) or '(none)'}",
                )
            ]
        )
    source = yamlsrc.load(path)
    problems = list(source.problems)
    if source.data is not None and not isinstance(source.data, dict):
        problems.append(source.problem((), "a policy is a mapping with name, description, classes", ""))
    spec, found = yamlmodel.validate(
        source, PolicySpec, source.data if isinstance(source.data, dict) else {}, top="the policy"
    )
    problems += found
    classes = []
    for cname, cls in spec.classes.items() if spec else ():
        path_key = ("classes", cname)
        transformer, params, found = _transformer_and_params(
            source, path_key, cls.transformer, cls.params or {}
        )
        problems += found
        classes.append(
            IdentifierClass(
                name=cname,
                description=cls.description,
                citation=cls.citation,
                transformer=transformer or "",
                params=frozen(params),
                line=source.line(path_key),
            )
        )
    if problems or spec is None:
        raise RuleProblems(problems)
    return Policy(
        name=spec.name or name, description=spec.description, file=str(path), classes=tuple(classes)
    )


def load_rules(path: Path | str, display: str | None = None) -> RuleFile:
    """Load one rule file. Raises RuleProblems listing everything wrong with it."""
    path = Path(path)
    source = yamlsrc.load(path, display)
    problems: list[Problem] = list(source.problems)
    data = source.data
    if source.problems and data is None:
        raise RuleProblems(problems)
    if not isinstance(data, dict):
        raise RuleProblems(
            [
                source.problem(
                    (),
                    "a rule file is a mapping with keys database, policy, tables",
                    "start from rules/learners.yaml",
                )
            ]
        )
    spec, found = yamlmodel.validate(source, RuleFileSpec, data, top="the rule file")
    problems += found
    policy, found = _policy(source, path.parent, spec.policy if spec else data.get("policy", DEFAULT_POLICY))
    problems += found
    tables: list[TableRule] = []
    seen: dict[str, int] = {}
    raw_tables = data.get("tables") if isinstance(data.get("tables"), dict) else {}
    for tname, raw in raw_tables.items():
        table, found = _table(
            source, tname, spec.tables[tname] if spec else _shaped(TableSpec, raw), raw, policy
        )
        problems += found
        if table is None:
            continue
        if table.name in seen:
            problems.append(
                source.problem(
                    ("tables", tname),
                    f"table {table.name} has two rule entries (the other at line {seen[table.name]})",
                    "merge them into one",
                )
            )
            continue
        seen[table.name] = table.line
        tables.append(table)
    if problems or spec is None:
        raise RuleProblems(problems)
    return RuleFile(
        file=source.file,
        database=spec.database,
        policy=policy,
        tables=tuple(tables),
        digest=source.digest,
        large_objects=_large_objects(source, spec),
    )


def _shaped(model: type[BaseModel], data: Any) -> Any:
    """`data` as a `model`, or None: for the parts of a file whose problems the whole file's validation
    already told (they are resolved when their shape is right, and not told twice when it is not)."""
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def _large_objects(source, spec: RuleFileSpec) -> LargeObjects | None:
    """`large_objects: drop` or `large_objects: {keep: "why their contents hold no identifier"}`."""
    line = source.line(("large_objects",))
    if spec.large_objects is None:
        return None
    if spec.large_objects == "drop":
        return LargeObjects("drop", line)
    return LargeObjects("keep", line, spec.large_objects.keep)


def _policy(source, rules_dir: Path, name: Any) -> tuple[Policy, list[Problem]]:
    """The policy a rule file names; its problems are told at the file's `policy:` line. A name that is not
    a policy's name was told by the file's validation."""
    if not isinstance(name, str) or not re.fullmatch(POLICY_NAME, name):
        return Policy(name=str(name)[:100], description="", file="", classes=()), []
    try:
        return load_policy(name, policy_dir(rules_dir)), []
    except RuleProblems as exc:
        return Policy(name=name, description="", file="", classes=()), [
            Problem(source.file, source.line(("policy",)), _in_policy(p), p.fix) for p in exc.problems
        ]


def _in_policy(problem: Problem) -> str:
    """A policy's problem told at the rule file's `policy:` line, naming the place in the policy file."""
    return f"in {problem.file}:{problem.line}: {problem.message}" if problem.line else problem.message


def _table(
    source, tname: str, spec: TableSpec | None, raw: Any, policy: Policy
) -> tuple[TableRule | None, list[Problem]]:
    path = ("tables", tname)
    try:
        qualified = names.table_key(tname)
    except names.BadName as exc:
        return None, [
            source.problem(
                path,
                f"table key {exc}",
                'write schema.table, with double quotes around a name that holds a dot: "my.schema".table',
            )
        ]
    problems: list[Problem] = []
    columns: list[ColumnRule] = []
    if spec is None:  # its shape is wrong (told): resolve the columns whose shape is right
        given = raw.get("columns") if isinstance(raw, dict) else None
        for cname, craw in given.items() if isinstance(given, dict) else ():
            if craw is None or _shaped(ColumnSpec, craw) is not None:
                _, found = _column(
                    source, (*path, "columns", cname), cname, _shaped(ColumnSpec, craw), policy
                )
                problems += found
        return None, problems
    condition = None
    if spec.keep_rows_where is not None:
        try:
            condition = parse_condition(spec.keep_rows_where)
        except ConditionError as exc:
            problems.append(
                source.problem(
                    (*path, "keep_rows_where"),
                    f"keep_rows_where of {tname}: {exc}",
                    "write a condition such as: is_test_account = true",
                )
            )
    for cname, cspec in (spec.columns or {}).items():
        rule, found = _column(source, (*path, "columns", cname), cname, cspec, policy)
        problems += found
        if rule:
            columns.append(rule)
    limit = spec.keep_rows_at_most
    triggers = tuple(
        TriggerRule(name, "recompute", source.line((*path, "triggers", name)))
        if action == "recompute"
        else TriggerRule(name, "silent", source.line((*path, "triggers", name)), action.silent)
        for name, action in (spec.triggers or {}).items()
    )
    table = TableRule(
        name=qualified,
        key=tname,
        columns=tuple(columns),
        line=source.line(path),
        copy=spec.copy_,
        keep_rows_where=condition,
        keep_rows_where_line=source.line((*path, "keep_rows_where")),
        keep_rows_at_most=RowLimit(
            rows=limit.rows,
            percent=None if limit.percent is None else float(limit.percent),
            reason=limit.reason,
        )
        if limit
        else RowLimit(),
        triggers=triggers,
    )
    return table, problems


def _column(
    source, path, name: str, spec: ColumnSpec | None, policy: Policy
) -> tuple[ColumnRule | None, list[Problem]]:
    line = source.line(path)
    if spec is None:
        if path not in source.explicit_nulls:
            return None, [
                source.problem(
                    path,
                    f"column {name} has an empty rule",
                    "name a transformer (keep, null, hash, fake.email, ...) or a class",
                )
            ]
        spec = ColumnSpec(transformer="null")  # `ssn: null` names the null transformer
    problems: list[Problem] = []
    if spec.class_ is not None:
        cls = policy.get(spec.class_)
        if cls is None:
            hint = did_you_mean(spec.class_, [c.name for c in policy.classes])
            return None, [
                source.problem(
                    (*path, "class"),
                    f"column {name}: unknown class '{spec.class_}' in policy {policy.name}.{hint}",
                    "see `deid transformers` and rules/policies/ for the classes",
                )
            ]
        transformer_name, params = cls.transformer, {**cls.params, **(spec.params or {})}
    else:
        transformer_name, params = spec.transformer, spec.params or {}
    resolved, parsed, found = _transformer_and_params(source, path, transformer_name, params, column=name)
    problems += found
    if resolved is None:
        return None, problems
    waivers: tuple[Waiver, ...] = ()
    if spec.waive is not None:
        if get(resolved).rewrites:
            return None, [
                source.problem(
                    (*path, "waive"),
                    f"column {name}: waive on a column transformed by {resolved}: validation scans kept "
                    "columns only, so there is nothing to waive",
                    "remove waive (the transformed values are checked by checks that cannot be waived)",
                )
            ]
        waivers = tuple(
            Waiver(check, reason.strip(), source.line((*path, "waive", check)))
            for check, reason in spec.waive
            if reason is not None
        )
    return ColumnRule(
        name=name,
        transformer=resolved,
        params=frozen(parsed),
        line=line,
        identifier_class=spec.class_,
        reason=spec.reason,
        waivers=waivers,
    ), problems


def _transformer_and_params(source, path, name: Any, params: Mapping[str, Any], column: str | None = None):
    """Resolve a transformer and parse its parameters; returns (name, params, problems)."""
    subject = f"column {column}" if column else f"class {path[-1]}"
    if not isinstance(name, str) or not name:
        return (
            None,
            {},
            [
                source.problem(
                    path, f"{subject}: missing transformer", "add transformer: NAME (see `deid transformers`)"
                )
            ],
        )
    try:
        transformer = get(name)
    except UnknownTransformer as exc:
        return (
            None,
            {},
            [
                source.problem(
                    (*path, "transformer"), f"{subject}: {exc}", "run `deid transformers` for the list"
                )
            ],
        )
    if not isinstance(params, Mapping):
        return (
            None,
            {},
            [
                source.problem(
                    (*path, "params"), f"{subject}: params must be a mapping", "write params: {name: value}"
                )
            ],
        )
    try:
        return transformer.name, transformer.parse_params(params), []
    except ParamError as exc:
        return (
            None,
            {},
            [
                source.problem(
                    (*path, "params"),
                    f"{subject}: {exc}",
                    f"run `deid transformers {transformer.name}` for its parameters",
                )
            ],
        )
