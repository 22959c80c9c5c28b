"""pydantic models over yamlsrc: a file's data validated by a typed model, every error told at its line.

The models (deid.yaml's, the rule file's) say what each key takes, once: pydantic validates the data and
the same models generate the JSON Schema editors use. What pydantic reports is turned here into deid's
Problems: the file and line of the key (yamlsrc kept a line for every path, and an error's `loc` is that
path), what the value must be, worded from the field's own JSON Schema, and the fix (the field's
description). Unknown keys are errors with a "did you mean" (every model forbids extra keys).

Checks that span fields raise `problem(...)` in a model validator: its `at` names the key the error is
told at (a model validator's own place is the mapping's line).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from deid.errors import Problem
from deid.suggest import did_you_mean

Model = TypeVar("Model", bound=BaseModel)

# what every model of a YAML file is: no unknown key, no coercion (YAML's `yes` is not a number, 1 is not
# true, 5 is not text), immutable once read
STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
EXPECTS = "x-expects"  # a field's own words for what it takes, where the generated ones would say less
CUSTOM = "deid"  # the error type of problem(...)


def problem(message: str, fix: str = "", at: str | Sequence[str] = ()) -> PydanticCustomError:
    """An error a model validator raises: `message` as written, told at the key `at` under the model."""
    at = (at,) if isinstance(at, str) else tuple(at)
    return PydanticCustomError(CUSTOM, message.replace("{", "{{").replace("}", "}}"), {"fix": fix, "at": at})


def validate(
    source, model: type[Model], data: Any, path: tuple = (), top: str = "the top level", context: Any = None
) -> tuple[Model | None, list[Problem]]:
    """`data` (found at `path` of `source`, a yamlsrc.Source) as a `model`, or None and its problems."""
    try:
        return model.model_validate(data, context=context), []
    except ValidationError as error:
        return None, problems(source, model, error, path, top)


def problems(source, model: type[BaseModel], error: ValidationError, path: tuple, top: str) -> list[Problem]:
    schema = json_schema(model)
    found: dict[tuple, Problem] = {}
    for detail in error.errors(include_url=False):
        loc, node, parent = _walk(schema, tuple(detail["loc"]))
        told = _told(source, schema, detail, loc, node, parent, path, top)
        found.setdefault(told[0], told[1])  # a union's members each report the same place: tell it once
    return list(found.values())


@functools.cache
def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _told(source, schema, detail, loc, node, parent, path, top) -> tuple[tuple, Problem]:
    kind, ctx = detail["type"], detail.get("ctx") or {}
    where = (*path, *loc)
    if kind == CUSTOM:
        where = (*where, *ctx.get("at", ()))
        return where, source.problem(where, detail["msg"], ctx.get("fix", ""))
    if kind == "extra_forbidden":
        allowed = tuple(_resolve(schema, parent).get("properties", {}))
        container = ".".join(map(str, where[:-1])) or top
        key = str(where[-1])
        return where, source.problem(
            where,
            f"unknown key '{key}' in {container}.{did_you_mean(key, allowed)}",
            f"allowed keys: {', '.join(allowed)}",
        )
    node = _resolve(schema, node)
    if kind == "missing":
        container = ".".join(map(str, where[:-1])) or top
        what = node.get("description", "")
        return where, source.problem(
            where[:-1],
            f"{container} needs '{where[-1]}'" + (f" ({what[0].lower()}{what[1:]})" if what else ""),
            f"add {where[-1]}: ...",
        )
    name = ".".join(map(str, where)) or top
    message = f"{name} must be {words(schema, node)}"
    if "enum" in node and isinstance(detail.get("input"), str):  # a name of deid's, never a row's value
        message += f", got {detail['input'][:40]!r}." + did_you_mean(
            detail["input"], [str(v) for v in node["enum"]]
        )
    return where, source.problem(where, message.rstrip("."), node.get("description", ""))


def _resolve(schema: dict, node: dict | None) -> dict:
    node = node or {}
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _walk(schema: dict, loc: tuple) -> tuple[tuple, dict | None, dict | None]:
    """The part of `loc` that names keys of the file (a union's member tags are not), the schema of the
    last of them and of its container."""
    node: dict | None = schema
    parent: dict | None = None
    kept: list = []
    for part in loc:
        here = _resolve(schema, node)
        members = [m for m in here.get("anyOf", ()) if m.get("type") != "null"]
        if len(members) > 1:
            break  # a value of one of several forms: wrong as a whole, at this key
        if members:
            here = _resolve(schema, members[0])
        if "properties" in here or "additionalProperties" in here:
            parent = here
            properties = here.get("properties", {})
            extra = here.get("additionalProperties")
            node = properties.get(part, extra if isinstance(extra, dict) else None)
        elif here.get("type") == "array" and isinstance(part, int):
            parent, node = here, here.get("items")
        else:
            break
        kept.append(part)
        here = _resolve(schema, node)
        if EXPECTS in here and not isinstance(here.get("additionalProperties"), dict):
            break  # the key says what it takes as a whole (a list of role names): told at the key
    return tuple(kept), node, parent


def words(schema: dict, node: dict) -> str:
    """What a value of this schema is, in words: 'a whole number from 1 to 86400', 'one of drop, keep'."""
    node = _resolve(schema, node)
    if EXPECTS in node:
        return node[EXPECTS]
    if "const" in node:
        return str(node["const"])
    if "enum" in node:
        return "one of " + ", ".join(str(v) for v in node["enum"])
    if "anyOf" in node or "oneOf" in node:
        members = [
            m for m in node.get("anyOf", node.get("oneOf")) if _resolve(schema, m).get("type") != "null"
        ]
        return ", or ".join(words(schema, m) for m in members)
    kind = node.get("type")
    if kind in ("integer", "number"):
        return ("a whole number" if kind == "integer" else "a number") + _bounds(node)
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        return "text"
    if kind == "array":
        return "a list of " + _plural(words(schema, node.get("items", {})))
    return "a mapping"


def _bounds(node: dict) -> str:
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if node.get("exclusiveMinimum") is not None:
        return f" above {node['exclusiveMinimum']:g}"
    if low is not None:
        return f" ≥ {low:g}"
    return f" ≤ {high:g}" if high is not None else ""


def _plural(text: str) -> str:
    for one, many in (
        ("a whole number", "whole numbers"),
        ("a number", "numbers"),
        ("a mapping", "mappings"),
    ):
        if text.startswith(one):
            return many + text[len(one) :]
    return text
