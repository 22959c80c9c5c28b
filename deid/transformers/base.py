"""What a transformer is: a definition users can read (name, description, typed parameters, the column kinds
it applies to, the checks that say when it cannot) and its vector form over Arrow arrays of text values,
keyed by the PRF of keying.py: what the streamed scrub runs on every engine, outside the database.

An engine may also hold an SQL form of each transformer, run set-based inside the database (for the tables
the stream does not take): the backend owns those (Backend.column_sql), never this package, and both forms
give the same values for the same salt.

Parameters are parsed once, here, into plain values; transformer code never re-parses them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

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

    def parse(self, value: Any) -> Any:
        """Check one value against this parameter; return it (ints are accepted where numbers are)."""
        if value is None and self.default is None:  # an optional parameter given as null: absent
            return None
        ok = isinstance(value, self.type) and not (self.type is int and isinstance(value, bool))
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            got = _TYPE_NAMES.get(type(value), type(value).__name__)
            raise ParamError(f"parameter '{self.name}' must be {self.type_name}, got {got}")
        if self.choices and value not in self.choices:
            options = ", ".join(repr(c) for c in self.choices)
            raise ParamError(f"parameter '{self.name}' must be one of {options}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ParamError(f"parameter '{self.name}' must be at least {self.minimum:g}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ParamError(f"parameter '{self.name}' must be at most {self.maximum:g}, got {value}")
        problem = self.validate(value) if self.validate else None
        if problem:
            raise ParamError(f"parameter '{self.name}' {problem}")
        return value


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

    def parse_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Validate user parameters and fill defaults. Raises ParamError naming the first bad one."""
        from deid.suggest import did_you_mean

        known = {p.name for p in self.params}
        for name in given:
            if name not in known:
                hint = did_you_mean(name, known)
                allowed = ", ".join(sorted(known)) or "none"
                raise ParamError(f"unknown parameter '{name}' for {self.name} (allowed: {allowed}).{hint}")
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                out[p.name] = p.parse(given[p.name])
            elif p.required:
                raise ParamError(f"{self.name} needs parameter '{p.name}' ({p.description})")
            else:
                out[p.name] = p.default
        problem = self.validate_params(out) if self.validate_params else None
        if problem:
            raise ParamError(f"{self.name}: {problem}")
        return out

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
