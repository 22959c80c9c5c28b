"""What a transformer is: a definition users can read (name, description, typed parameters, the column kinds
it applies to, the checks that say when it cannot) and its vector form over Arrow arrays of text values,
keyed by the PRF of keying.py: what the streamed scrub runs on every engine, outside the database.

An engine may also hold an SQL form of each transformer, run set-based inside the database (for the tables
the stream does not take): the backend owns those (Backend.column_sql), never this package, and both forms
give the same values for the same salt.

Parameters are parsed once, here, into plain values; transformer code never re-parses them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import pyarrow as pa
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError, PydanticUndefined

from deid.schema import Column, Kind

if TYPE_CHECKING:
    from deid.vector.prf import Key

REQUIRED = object()

TEXT_KINDS = frozenset({Kind.TEXT})
NUMBER_KINDS = frozenset({Kind.INTEGER, Kind.NUMERIC, Kind.FLOAT})
DATE_KINDS = frozenset({Kind.DATE, Kind.TIMESTAMP})
ANY_KIND = frozenset(Kind) - {Kind.ARRAY}

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a mapping",
    list: "a list",
}


class ParamError(ValueError):
    """A parameter value is wrong; the message says what was expected. The loader adds file and line."""


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # str, int, float, bool, dict or list
    description: str
    default: Any = REQUIRED
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    # further checks of a value that passed the above; returns what is wrong ("must be ...") or None
    validate: Callable[[Any], str | None] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.type]

    def field(self) -> tuple[Any, Any]:
        """This parameter as a pydantic field (type, FieldInfo) of its transformer's params model: the one
        place its type, bounds, choices and own check are enforced, and the source of its JSON Schema."""
        checks: list[Any] = []
        extra: dict[str, Any] = {}
        if self.choices:
            checks.append(AfterValidator(functools.partial(_one_of, self)))
            extra["enum"] = list(self.choices)
        if self.validate is not None:
            checks.append(AfterValidator(functools.partial(_valid, self)))
        kind: Any = Annotated[_PYDANTIC_TYPES[self.type], Field(ge=self.minimum, le=self.maximum), *checks]
        if self.default is None:
            kind = kind | None
        default = PydanticUndefined if self.required else self.default
        info = Field(default, description=self.description, json_schema_extra=extra or None)
        return kind, info


_PYDANTIC_TYPES: dict[type, Any] = {
    str: str,
    int: int,
    float: float,
    bool: bool,
    dict: dict[str, Any],
    list: list[Any],
}


def _one_of(param: Param, value: Any) -> Any:
    if value not in param.choices:
        options = ", ".join(repr(c) for c in param.choices)
        raise PydanticCustomError(
            "deid", "must be one of {options}, got {got}", {"options": options, "got": repr(value)}
        )
    return value


def _valid(param: Param, value: Any) -> Any:
    problem = param.validate(value) if param.validate else None
    if problem:
        raise PydanticCustomError("deid", "{problem}", {"problem": problem})
    return value


def _param_error(transformer: Transformer, error: dict[str, Any]) -> str:
    """A pydantic error of a params model in deid's words, naming the parameter."""
    kind, loc, value = error["type"], error["loc"], error.get("input")
    name = str(loc[0]) if loc else ""
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        from deid.suggest import did_you_mean

        known = transformer.params_model.model_fields
        allowed = ", ".join(sorted(known)) or "none"
        hint = did_you_mean(name, known)
        return f"unknown parameter '{name}' for {transformer.name} (allowed: {allowed}).{hint}"
    param = transformer.param(name)
    if param is None:  # a check across parameters (validate_params)
        return f"{transformer.name}: {error['msg']}"
    if kind == "missing":
        return f"{transformer.name} needs parameter '{name}' ({param.description})"
    if kind == "greater_than_equal":
        return f"parameter '{name}' must be at least {ctx['ge']:g}, got {value}"
    if kind == "less_than_equal":
        return f"parameter '{name}' must be at most {ctx['le']:g}, got {value}"
    if kind == "deid":
        return f"parameter '{name}' {error['msg']}"
    got = _TYPE_NAMES.get(type(value), type(value).__name__)
    return f"parameter '{name}' must be {param.type_name}, got {got}"


def _across(transformer: Transformer, model: BaseModel) -> BaseModel:
    problem = transformer.validate_params(dict(model)) if transformer.validate_params else None
    if problem:
        raise PydanticCustomError("deid", "{problem}", {"problem": problem})
    return model


@dataclass(frozen=True, kw_only=True)
class Target:
    """What a transformer knows about the column it transforms: its kind and type (the element's for an
    array), whether it is unique, the row's other columns (so that `by:` names can be checked) and the
    table's size. Definitions check it (`cannot_apply`) and vector forms read it.

    `value` and `row` are for an engine's SQL forms only: SQL for the input (a quoted column, an array
    element) and for another column of the same row. The backend that runs SQL forms sets them
    (Backend.column_sql); definitions and vector forms never read them.
    """

    column: Column
    kind: Kind  # the kind of the value: the element kind for arrays
    sql_type: str  # the column's type, which the output is cast back to: the element type for arrays
    unique: bool = False  # the column carries a single-column unique constraint
    columns: tuple[str, ...] = ()  # the row's column names, when known, so that `by:` names can be checked
    rows: int = 0  # the table's estimated row count, for forms whose cheapest shape depends on size
    value: str = ""
    row: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Batch:
    """What a vector form reads: one batch of a column's values and the PRF key.

    Values are text (`values`: an Arrow string array, NULL as null), each value's canonical text, the same on
    every engine (docs/canonical-text.md), so the same value always reads the same. The output is text too,
    which the engine casts back to the column's type. `row(name)` gives another column of the same rows, as
    text, for parameters such as `by:`.
    """

    values: pa.Array
    key: Key
    row: Callable[[str], pa.Array] = field(default=lambda name: _no_row(name))


def _no_row(name: str) -> pa.Array:
    raise KeyError(f"column {name!r} is not in this batch")


VectorForm = Callable[[Batch, Target, Mapping[str, Any]], pa.Array]
Check = Callable[[Target, Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class Transformer:
    name: str
    description: str
    applies_to: frozenset[Kind]
    params: tuple[Param, ...] = ()
    vector: VectorForm | None = None  # None: no vector form yet (an engine's SQL form computes it, if any)
    keeps_nulls: bool = True  # NULL in gives NULL out
    dictionaries: tuple[str, ...] = ()  # Faker dictionaries it picks from (deid.transformers.dictionaries)
    check: Check | None = None  # extra applicability check; returns a message when it cannot apply
    rewrites: bool = True  # False for `keep`: the column is not touched at all
    # False when distinct inputs may give equal outputs: such a transformer cannot serve a unique column
    unique_safe: bool = True
    # checks across parameters (min <= max), after each passed its own; returns what is wrong or None
    validate_params: Callable[[Mapping[str, Any]], str | None] | None = None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @functools.cached_property
    def params_model(self) -> type[BaseModel]:
        """The typed model of this transformer's parameters, made from its Params: rule files' params are
        validated by it, and rules.schema.json describes them from it."""
        fields = {p.name: p.field() for p in self.params}
        validators = {"across": model_validator(mode="after")(functools.partial(_across, self))}
        return create_model(
            "params_" + self.name.replace(".", "_"),
            __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
            __validators__=validators if self.validate_params else None,
            **fields,
        )

    def parse_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Validate user parameters and fill defaults. Raises ParamError naming the first bad one."""
        try:
            return dict(self.params_model.model_validate(dict(given)))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            first = min(errors, key=lambda e: (e["type"] != "extra_forbidden", self._order(e["loc"])))
            raise ParamError(_param_error(self, first)) from None

    def _order(self, loc: tuple) -> int:
        names = [p.name for p in self.params]
        return names.index(loc[0]) if loc and loc[0] in names else len(names)

    def cannot_apply(self, target: Target, params: Mapping[str, Any]) -> str | None:
        """Why this transformer cannot produce values for the target, or None when it can."""
        if target.kind not in self.applies_to:
            kinds = ", ".join(sorted(k.value for k in self.applies_to))
            return f"{self.name} applies to {kinds} columns, not {target.kind.value} ({target.sql_type})"
        if not self.keeps_nulls and not target.column.nullable and self.name == "null":
            return "null cannot apply to a NOT NULL column"
        if target.unique and not self.unique_safe:
            return (
                f"{self.name} can give equal outputs for distinct inputs, so it cannot serve a column "
                "with a unique constraint; use hash, or a fake.* transformer with unique: true"
            )
        return self.check(target, params) if self.check else None
