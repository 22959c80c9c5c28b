"""json: apply other transformers at paths inside JSON documents, in json columns and in text columns that
hold JSON. The definition: paths, the nested transformers and their parameters, what each nested one sees."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deid.schema import Column, Kind
from deid.suggest import did_you_mean
from deid.transformers.base import Param, ParamError, Target, Transformer
from deid.transformers.dictionaries import NAMES
from deid.vector.jsonpaths import json_vector

_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(-?[0-9]+)\]|\[\"([^\"]+)\"\]")
_SPEC_KEYS = ("transformer", "params")
_NOT_NESTED = ("json", "keep")  # json in json is one path deeper; keep at a path does nothing


def parse_path(path: str) -> tuple[str, ...]:
    """`$.a.b`, `$.items[0].x`, `$["odd key"]` into its steps (keys, array indexes as text); ParamError
    when malformed."""
    if not path.startswith("$") or path == "$":
        raise ParamError(f"path '{path}' must start with '$' and name a key, like $.contact.email")
    steps, at = [], 1
    while at < len(path):
        step = _STEP.match(path, at)
        if not step:
            raise ParamError(f"path '{path}' is not understood at '{path[at:]}' (use .key, [0] or [\"key\"])")
        steps.append(next(g for g in step.groups() if g is not None))
        at = step.end()
    return tuple(steps)


def nested(paths: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], Transformer, dict[str, Any]]]:
    """Each path with its parsed steps, transformer and parsed parameters. Raises ParamError."""
    from deid.transformers import UnknownTransformer, get

    out = []
    for path, spec in paths.items():
        steps = parse_path(str(path))
        if isinstance(spec, str):
            name, given = spec, {}
        elif isinstance(spec, Mapping):
            unknown = [k for k in spec if k not in _SPEC_KEYS]
            if unknown:
                hint = did_you_mean(str(unknown[0]), _SPEC_KEYS)
                raise ParamError(f"{path}: unknown key '{unknown[0]}' (allowed: transformer, params).{hint}")
            name, given = spec.get("transformer"), spec.get("params") or {}
            if not isinstance(given, Mapping):
                raise ParamError(f"{path}: params must be a mapping")
        else:
            raise ParamError(f"{path}: give a transformer name or {{transformer: NAME, params: {{...}}}}")
        if not isinstance(name, str):
            raise ParamError(f"{path}: missing transformer")
        try:
            transformer = get(name)
        except UnknownTransformer as exc:
            raise ParamError(f"{path}: {exc}") from None
        if transformer.name in _NOT_NESTED:
            raise ParamError(f"{path}: {transformer.name} cannot be used inside json")
        try:
            parsed = transformer.parse_params(given)
        except ParamError as exc:
            raise ParamError(f"{path}: {exc}") from None
        out.append((str(path), steps, transformer, parsed))
    for a in out:
        for b in out:
            if a is not b and b[1][: len(a[1])] == a[1]:
                raise ParamError(f"paths {a[0]} and {b[0]} overlap; keep one")
    return out


def _validate(paths: dict[str, Any]) -> str | None:
    if not paths:
        return "needs at least one path"
    try:
        nested(paths)
    except ParamError as exc:
        return f"is wrong: {exc}"
    return None


def inner(target: Target, path: str) -> Target:
    """What the transformer nested at `path` sees: the value there, as text."""
    column = Column(name=f"{target.column.name}{path}", data_type="text", kind=Kind.TEXT)
    return Target(column=column, kind=Kind.TEXT, sql_type="text", columns=target.columns)


def _check(target: Target, params: Mapping[str, Any]) -> str | None:
    if target.kind is Kind.TEXT and params["invalid"] == "null" and not target.column.nullable:
        return (
            "json on a NOT NULL text column cannot make a value that is not JSON NULL; "
            "set invalid: empty (writes {}) or invalid: fail"
        )
    for path, _, transformer, parsed in nested(params["paths"]):
        problem = transformer.cannot_apply(inner(target, path), parsed)
        if problem:
            return f"at {path}: {problem}"
    return None


TRANSFORMERS = (
    Transformer(
        name="json",
        description="Apply transformers at paths inside a JSON document. `paths` maps a path ($.a.b, "
        "$.items[0].x) to a transformer name or {transformer: NAME, params: {...}}. The value at a path is "
        "read as text and written back as a JSON string (JSON null for the null transformer); a path missing "
        "from a document leaves it unchanged. Documents are written back in the database's normal form of "
        "JSON (key order and whitespace are normalised). Text columns holding JSON are parsed and written "
        "back as text; a value that is not JSON, or a document that no longer fits varchar(n), becomes what "
        "`invalid` says.",
        applies_to=frozenset({Kind.JSON, Kind.TEXT}),
        vector=json_vector,
        params=(
            Param(
                "paths",
                dict,
                "path -> transformer name, or -> {transformer: NAME, params: {...}}",
                validate=_validate,
            ),
            Param(
                "invalid",
                str,
                "text columns only: what a value that is not valid JSON (or whose scrubbed document no "
                "longer fits varchar(n)) becomes: null, empty ({}), or fail (the scrub stops, naming the "
                "column, never the value). Never the production value",
                default="null",
                choices=("null", "empty", "fail"),
            ),
        ),
        # the nested transformers decide which dictionaries are read; all of them is a safe superset
        dictionaries=NAMES,
        check=_check,
    ),
)
