"""Read rule files and policies into the typed model, collecting every problem with its file and line.

Loading checks everything that does not need the database's schema: keys, types, transformers and their
parameters, identifier classes, row-condition grammar, duplicates. `coverage.py` then checks the loaded rules
against a schema. Both return *all* problems at once, so one lint run shows the whole list to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deid import names, yamlsrc
from deid.errors import Problem, RuleProblems
from deid.rules.condition import ConditionError, parse_condition
from deid.rules.model import (
    COPY_MODES,
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
from deid.suggest import did_you_mean
from deid.transformers import UnknownTransformer, get
from deid.transformers.base import ParamError

DEFAULT_POLICY = "hipaa_limited_data_set"
RULES_VERSION = 1
TOP_KEYS = ("$schema", "version", "database", "policy", "large_objects", "tables")
TABLE_KEYS = ("copy", "keep_rows_where", "keep_rows_at_most", "triggers", "columns", "description")
ROW_LIMIT_KEYS = ("rows", "percent", "reason")
COLUMN_KEYS = ("transformer", "class", "params", "reason", "waive")
POLICY_KEYS = ("name", "description", "classes")
CLASS_KEYS = ("description", "citation", "transformer", "params")
POLICY_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


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
    data = source.data if isinstance(source.data, dict) else {}
    problems += source.unknown_keys((), data, POLICY_KEYS)
    classes = []
    classes_data = data.get("classes") or {}
    if not isinstance(classes_data, dict):
        problems.append(
            source.problem(("classes",), "classes must be a mapping of class names", "see the shipped policy")
        )
        classes_data = {}
    for cname, spec in classes_data.items():
        path_key = ("classes", cname)
        if not isinstance(spec, dict):
            problems.append(
                source.problem(path_key, f"class '{cname}' must be a mapping", "see the other classes")
            )
            continue
        problems += source.unknown_keys(path_key, spec, CLASS_KEYS)
        transformer, params, found = _transformer_and_params(
            source, path_key, spec.get("transformer"), spec.get("params") or {}
        )
        problems += found
        classes.append(
            IdentifierClass(
                name=str(cname),
                description=str(spec.get("description", "")),
                citation=str(spec.get("citation", "")),
                transformer=transformer or "",
                params=frozen(params),
                line=source.line(path_key),
            )
        )
    if problems:
        raise RuleProblems(problems)
    return Policy(
        name=str(data.get("name", name)),
        description=str(data.get("description", "")),
        file=str(path),
        classes=tuple(classes),
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
    problems += source.unknown_keys((), data, TOP_KEYS)
    version = data.get("version", RULES_VERSION)
    if version != RULES_VERSION:
        problems.append(
            source.problem(
                ("version",), f"unsupported rules version {version!r}", f"set version: {RULES_VERSION}"
            )
        )
    database = data.get("database")
    if not isinstance(database, str) or not database:
        problems.append(
            source.problem(
                ("database",),
                "missing 'database': the name in deid.yaml these rules are for",
                f"add database: {path.stem}",
            )
        )
        database = path.stem
    policy, found = _policy(source, path.parent, data.get("policy", DEFAULT_POLICY))
    problems += found
    tables_data = data.get("tables")
    tables: list[TableRule] = []
    if not isinstance(tables_data, dict) or not tables_data:
        problems.append(
            source.problem(
                ("tables",),
                "missing 'tables': one entry per table, each with its columns",
                "add tables: {schema.table: {columns: {...}}}",
            )
        )
    else:
        seen: dict[str, int] = {}
        for tname, tspec in tables_data.items():
            table, found = _table(source, str(tname), tspec, policy)
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
    large_objects, found = _large_objects(source, data.get("large_objects"))
    problems += found
    if problems:
        raise RuleProblems(problems)
    return RuleFile(
        file=source.file,
        database=database,
        policy=policy,
        tables=tuple(tables),
        digest=source.digest,
        large_objects=large_objects,
    )


def _large_objects(source, spec: Any) -> tuple[LargeObjects | None, list[Problem]]:
    """`large_objects: drop` or `large_objects: {keep: "why their contents hold no identifier"}`."""
    if spec is None:
        return None, []
    line = source.line(("large_objects",))
    if spec == "drop":
        return LargeObjects("drop", line), []
    reason = spec.get("keep") if isinstance(spec, dict) and list(spec) == ["keep"] else None
    if isinstance(reason, str) and reason.strip():
        return LargeObjects("keep", line, reason), []
    return None, [
        source.problem(
            ("large_objects",),
            "large_objects is drop, or keep with a reason",
            'write large_objects: drop, or large_objects: {keep: "why their contents hold no identifier"}',
        )
    ]


def _policy(source, rules_dir: Path, name: Any) -> tuple[Policy, list[Problem]]:
    """The policy a rule file names; its problems are told at the file's `policy:` line."""
    if not isinstance(name, str) or not POLICY_NAME.fullmatch(name):
        # the name becomes a file name: nothing but a name, so no other folder's file can be named
        return Policy(name=str(name)[:100], description="", file="", classes=()), [
            source.problem(
                ("policy",),
                "policy must be a policy's name (letters, digits, _ and -)",
                "e.g. policy: hipaa_limited_data_set",
            )
        ]
    try:
        return load_policy(name, policy_dir(rules_dir)), []
    except RuleProblems as exc:
        return Policy(name=name, description="", file="", classes=()), [
            Problem(source.file, source.line(("policy",)), _in_policy(p), p.fix) for p in exc.problems
        ]


def _in_policy(problem: Problem) -> str:
    """A policy's problem told at the rule file's `policy:` line, naming the place in the policy file."""
    return f"in {problem.file}:{problem.line}: {problem.message}" if problem.line else problem.message


def _table(source, tname: str, spec: Any, policy: Policy) -> tuple[TableRule | None, list[Problem]]:
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
    if not isinstance(spec, dict):
        return None, [
            source.problem(
                path,
                f"table {tname} must be a mapping with 'columns'",
                "write columns: {column: transformer, ...} under it",
            )
        ]
    problems = source.unknown_keys(path, spec, TABLE_KEYS)
    copy = spec.get("copy", "full")
    if copy not in COPY_MODES:
        problems.append(
            source.problem(
                (*path, "copy"),
                f"copy must be one of {', '.join(COPY_MODES)}, got {copy!r}",
                "use copy: full (scrub the rows) or copy: schema_only (no rows)",
            )
        )
        copy = "full"
    condition = None
    if "keep_rows_where" in spec:
        try:
            condition = parse_condition(spec["keep_rows_where"])
        except ConditionError as exc:
            problems.append(
                source.problem(
                    (*path, "keep_rows_where"),
                    f"keep_rows_where of {tname}: {exc}",
                    "write a condition such as: is_test_account = true",
                )
            )
    limit, found = _row_limit(source, (*path, "keep_rows_at_most"), spec, tname)
    problems += found
    triggers, found = _triggers(source, (*path, "triggers"), spec.get("triggers"), tname)
    problems += found
    columns_data = spec.get("columns")
    columns: list[ColumnRule] = []
    if columns_data is None and copy == "schema_only":
        columns_data = {}  # no rows are copied, so there is nothing to classify
    elif not isinstance(columns_data, dict) or not columns_data:
        problems.append(
            source.problem(
                (*path, "columns") if "columns" in spec else path,
                f"table {tname} has no column rules",
                "add columns: {column: transformer}",
            )
        )
    else:
        for cname, cspec in columns_data.items():
            rule, found = _column(source, (*path, "columns", cname), str(cname), cspec, policy)
            problems += found
            if rule:
                columns.append(rule)
    table = TableRule(
        name=qualified,
        key=tname,
        columns=tuple(columns),
        line=source.line(path),
        copy=copy,
        keep_rows_where=condition,
        keep_rows_where_line=source.line((*path, "keep_rows_where")),
        keep_rows_at_most=limit,
        triggers=triggers,
    )
    return table, problems


def _triggers(source, path, spec: Any, tname: str) -> tuple[tuple[TriggerRule, ...], list[Problem]]:
    """`triggers: {name: recompute, other: {silent: "why its effects hold no identifier"}}`."""
    if spec is None:
        return (), []
    fix = 'write triggers: {trigger_name: recompute} or {trigger_name: {silent: "why"}}'
    if not isinstance(spec, dict):
        return (), [source.problem(path, f"triggers of {tname} must be a mapping", fix)]
    rules, problems = [], []
    for name, value in spec.items():
        where = (*path, name)
        if value == "recompute":
            rules.append(TriggerRule(str(name), "recompute", source.line(where)))
            continue
        reason = value.get("silent") if isinstance(value, dict) and list(value) == ["silent"] else None
        if isinstance(reason, str) and reason.strip():
            rules.append(TriggerRule(str(name), "silent", source.line(where), reason))
            continue
        problems.append(
            source.problem(where, f"trigger {name} of {tname}: say recompute, or silent with a reason", fix)
        )
    return tuple(rules), problems


def _row_limit(source, path, spec: dict, tname: str) -> tuple[RowLimit, list[Problem]]:
    """`keep_rows_at_most: {rows: N | percent: P, reason: "..."}`: more static test rows than the default
    allows, said out loud. The default (RowLimit()) fits a handful of labelled test accounts."""
    if "keep_rows_at_most" not in spec:
        return RowLimit(), []
    value = spec["keep_rows_at_most"]
    fix = 'write keep_rows_at_most: {percent: 5, reason: "why so many rows are labelled test data"}'
    if not isinstance(value, dict):
        return RowLimit(), [source.problem(path, f"keep_rows_at_most of {tname} must be a mapping", fix)]
    problems = source.unknown_keys(path, value, ROW_LIMIT_KEYS)
    if "keep_rows_where" not in spec:
        problems.append(
            source.problem(path, f"{tname} has keep_rows_at_most but no keep_rows_where", "add the condition")
        )
    reason = value.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        problems.append(source.problem(path, f"keep_rows_at_most of {tname} needs a reason", fix))
    rows, percent = value.get("rows"), value.get("percent")
    whole = isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0
    share = isinstance(percent, int | float) and not isinstance(percent, bool) and 0 <= percent <= 100
    if (
        (rows is None) == (percent is None)
        or (rows is not None and not whole)
        or (percent is not None and not share)
    ):
        problems.append(
            source.problem(
                path,
                f"keep_rows_at_most of {tname} takes one of rows (a whole number) or percent (0 to 100)",
                fix,
            )
        )
    if problems:
        return RowLimit(), problems
    return RowLimit(rows=rows, percent=None if percent is None else float(percent), reason=reason), []


def _column(source, path, name: str, spec: Any, policy: Policy) -> tuple[ColumnRule | None, list[Problem]]:
    line = source.line(path)
    if spec is None:
        if path in source.explicit_nulls:
            spec = "null"
        else:
            return None, [
                source.problem(
                    path,
                    f"column {name} has an empty rule",
                    "name a transformer (keep, null, hash, fake.email, ...) or a class",
                )
            ]
    if isinstance(spec, str):
        spec = {"transformer": spec}
    if not isinstance(spec, dict):
        return None, [
            source.problem(
                path,
                f"column {name}: a rule is a transformer name or a mapping",
                "write e.g. `email: fake.email` or `email: {class: email}`",
            )
        ]
    problems = source.unknown_keys(path, spec, COLUMN_KEYS)
    reason = spec.get("reason")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        problems.append(
            source.problem(
                (*path, "reason"),
                f"column {name}: reason must be a non-empty sentence",
                "say why this value is safe to keep",
            )
        )
        reason = None
    cls_name = spec.get("class")
    given_params = spec.get("params") or {}
    if not isinstance(given_params, dict):
        problems.append(
            source.problem(
                (*path, "params"), f"column {name}: params must be a mapping", "write params: {name: value}"
            )
        )
        given_params = {}
    if cls_name is not None and "transformer" in spec:
        problems.append(
            source.problem(
                path,
                f"column {name} names both a class and a transformer",
                "keep one: the class brings its policy's transformer",
            )
        )
        return None, problems
    if cls_name is not None:
        cls = policy.get(str(cls_name))
        if cls is None:
            hint = did_you_mean(str(cls_name), [c.name for c in policy.classes])
            problems.append(
                source.problem(
                    (*path, "class"),
                    f"column {name}: unknown class '{cls_name}' in policy {policy.name}.{hint}",
                    "see `deid transformers` and rules/policies/ for the classes",
                )
            )
            return None, problems
        transformer_name, params = cls.transformer, {**cls.params, **given_params}
    else:
        transformer_name, params = spec.get("transformer"), given_params
    resolved, parsed, found = _transformer_and_params(source, path, transformer_name, params, column=name)
    problems += found
    if resolved is None:
        return None, problems
    waivers, found = _waivers(source, (*path, "waive"), name, spec.get("waive"), resolved)
    problems += found
    return ColumnRule(
        name=name,
        transformer=resolved,
        params=frozen(parsed),
        line=line,
        identifier_class=str(cls_name) if cls_name is not None else None,
        reason=reason,
        waivers=waivers,
    ), problems


def _waivers(
    source, path, column: str, spec: Any, transformer: str
) -> tuple[tuple[Waiver, ...], list[Problem]]:
    """`waive: {phone: "published by the carrier"}`: validation checks (deid.expect.waivable) that do not
    fail this kept column, each with its reason. Each waiver is as narrow as one check on one column."""
    from deid.expect.waivable import WAIVABLE

    if spec is None:
        return (), []
    fix = 'write waive: {phone: "why these values may stay"}'
    if not isinstance(spec, dict) or not spec:
        return (), [source.problem(path, f"column {column}: waive must be a mapping of check to reason", fix)]
    if get(transformer).rewrites:
        return (), [
            source.problem(
                path,
                f"column {column}: waive on a column transformed by {transformer}: validation scans kept "
                "columns only, so there is nothing to waive",
                "remove waive (the transformed values are checked by checks that cannot be waived)",
            )
        ]
    waivers, problems = [], []
    for check, reason in spec.items():
        where = (*path, check)
        if check not in WAIVABLE:
            problems.append(
                source.problem(
                    where,
                    f"column {column}: unknown check '{check}' in waive.{did_you_mean(str(check), WAIVABLE)}",
                    f"waivable checks: {', '.join(WAIVABLE)}",
                )
            )
        elif not isinstance(reason, str) or not reason.strip():
            problems.append(
                source.problem(
                    where,
                    f"column {column}: waiver of {check} needs a reason",
                    f'say why these values may stay, e.g. {check}: "published by the carrier"',
                )
            )
        else:
            waivers.append(Waiver(check, reason.strip(), source.line(where)))
    return tuple(waivers), problems


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
