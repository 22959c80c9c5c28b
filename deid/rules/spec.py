"""Rule files and policies as they are written: the pydantic models of their YAML.

These say which keys exist and what each takes, once: `load.py` validates a file with them (errors at the
key's file:line, through deid.yamlmodel) and then resolves what needs more than the file (the policy's
classes, each transformer's parameters, the row-condition grammar, table names) into the typed objects of
`model.py`; `jsonschema.py` generates rules/rules.schema.json from them, each column rule narrowed to one
transformer of the registry (`schema_model`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from deid.expect.waivable import WAIVABLE
from deid.rules.condition import MAX_CHARACTERS
from deid.rules.model import CopyMode
from deid.yamlmodel import EXPECTS, STRICT, problem

RULES_VERSION = 1
DEFAULT_POLICY = "hipaa_limited_data_set"
Text = Annotated[str, Field(min_length=1)]
# a sentence someone wrote: not blank
Reason = Annotated[str, Field(pattern=r"\S", json_schema_extra={EXPECTS: "a reason (a sentence saying why)"})]
Params = dict[str, Any] | None
POLICY_NAME = r"^[A-Za-z0-9_-]{1,100}$"  # it becomes a file name: nothing but a name


def _expects(what: str, **more: Any) -> ConfigDict:
    return ConfigDict(**STRICT, json_schema_extra={EXPECTS: what}, **more)


def _some(waive: BaseModel) -> BaseModel:
    if not any(reason is not None for _, reason in waive):
        raise problem("waive names no check", "write waive: {phone: why these values may stay}")
    return waive


Waive = create_model(
    "Waive",
    __validators__={"some": model_validator(mode="after")(_some)},
    __config__=_expects("a mapping of check to reason, e.g. {phone: why these values may stay}"),
    __doc__="Validation checks that do not fail this kept column, each with its reason. Only for kept "
    "columns; every other check, and other columns, still fail.",
    **{check: (Reason | None, Field(None, description=what)) for check, what in WAIVABLE.items()},
)


class _Rule(BaseModel):
    model_config = STRICT

    reason: Reason | None = Field(
        None, description="Why this is safe (needed to keep a column that looks like an identifier)"
    )


class ColumnSpec(_Rule):
    """One column's rule: a transformer (with parameters) or an identifier class of the policy."""

    model_config = _expects(
        "a transformer's name, or a mapping such as {transformer: hash} or {class: email}",
        populate_by_name=True,
    )

    transformer: Text | None = Field(None, description="The transformer's name (`deid transformers`)")
    class_: Text | None = Field(
        None, alias="class", description="An identifier class of the policy; the policy names its transformer"
    )
    params: Params = Field(None, description="The transformer's parameters (with class: overrides)")
    waive: Waive | None = Field(None, description=Waive.__doc__)

    @model_validator(mode="before")
    @classmethod
    def _name(cls, data: Any) -> Any:
        return {"transformer": data} if isinstance(data, str) else data  # `email: fake.email`

    @model_validator(mode="after")
    def _one(self) -> ColumnSpec:
        if self.class_ is not None and self.transformer is not None:
            raise problem(
                "the rule names both a class and a transformer", "keep one: the class brings its transformer"
            )
        if self.class_ is None and self.transformer is None:
            raise problem("the rule names no transformer", "add transformer: NAME (see `deid transformers`)")
        return self


class RowLimit(BaseModel):
    """More static test rows than the default (10 rows or 1% of the table, and never all of them), with
    the reason: rows (a count) or percent (of the table)."""

    model_config = STRICT

    rows: Annotated[int, Field(ge=0)] | None = Field(None, description="At most this many rows")
    percent: Annotated[float, Field(ge=0, le=100)] | None = Field(None, description="At most this share")
    reason: Reason = Field(description="Why so many rows are labelled test data")

    @model_validator(mode="after")
    def _one(self) -> RowLimit:
        if (self.rows is None) == (self.percent is None):
            raise problem(
                "keep_rows_at_most takes one of rows (a whole number) or percent (0 to 100)",
                'write keep_rows_at_most: {percent: 5, reason: "why so many rows are labelled test data"}',
            )
        return self


class Silent(BaseModel):
    model_config = _expects("{silent: REASON}")

    silent: Reason = Field(description="Why the trigger's effects hold no identifier")


class Keep(BaseModel):
    model_config = _expects("{keep: REASON}")

    keep: Reason = Field(description="Why the large objects' contents hold no identifier")


class TableSpec(BaseModel):
    """One table's rules: `schema.table` (or `table`, meaning public.table)."""

    model_config = ConfigDict(**STRICT, populate_by_name=True)

    copy_: CopyMode = Field(
        "full", alias="copy", description="full: copy and scrub the rows; schema_only: copy no rows"
    )
    keep_rows_where: Annotated[str, Field(min_length=1, max_length=MAX_CHARACTERS)] | None = Field(
        None,
        description="Rows matching this condition are static test data labelled fake: kept unscrubbed. "
        "Column names, literals, comparisons, AND/OR/NOT, IS NULL, IN (literals), column [NOT] LIKE / ILIKE "
        "'pattern' (a quoted pattern with a literal character) only",
    )
    keep_rows_at_most: RowLimit | None = Field(None, description=RowLimit.__doc__)
    triggers: dict[str, Literal["recompute"] | Silent] | None = Field(
        None,
        description="What the scrub does with a trigger of this table: recompute (it fires during the "
        "scrub, so a BEFORE ROW trigger derives its columns from scrubbed values), or silent with the reason "
        "its effects hold no identifier",
    )
    columns: dict[str, ColumnSpec | None] | None = Field(None, description="One rule per column")
    description: str | None = Field(None, description="What the table holds, for people")

    @model_validator(mode="after")
    def _whole(self) -> TableSpec:
        if self.keep_rows_at_most is not None and self.keep_rows_where is None:
            raise problem(
                "keep_rows_at_most without keep_rows_where", "add the condition", at="keep_rows_at_most"
            )
        if not self.columns and self.copy_ == "full":  # schema_only: no rows, nothing to classify
            raise problem(
                "the table has no column rules",
                "add columns: {column: transformer}",
                at="columns" if self.columns is not None else (),
            )
        return self


class RuleFileSpec(BaseModel):
    """deid rule file: one file per production database, a rule for every column of every table."""

    model_config = ConfigDict(**STRICT, title="deid rule file", populate_by_name=True)

    schema_: str | None = Field(None, alias="$schema")
    version: Literal[1] = Field(RULES_VERSION, description="The rule file format's version")
    database: Text = Field(description="The database's name in deid.yaml these rules are for")
    policy: Annotated[str, Field(pattern=POLICY_NAME)] = Field(
        DEFAULT_POLICY,
        description="The policy whose identifier classes rules may name",
        json_schema_extra={EXPECTS: "a policy's name (letters, digits, _ and -)"},
    )
    large_objects: Literal["drop"] | Keep | None = Field(
        None,
        description="The database's large objects (objects outside any table), which belong to no column: "
        "drop (deid unlinks them in the copy), or keep with the reason their contents hold no identifier. "
        "Required when the database holds any",
    )
    tables: Annotated[dict[str, TableSpec], Field(min_length=1)] = Field(
        description="One entry per table, each with its columns: schema.table (or table, meaning "
        'public.table); a name holding a dot or a quote is written in double quotes: "my.schema".table',
    )


class ClassSpec(BaseModel):
    """An identifier class of a policy and the transformer it brings."""

    model_config = STRICT

    description: str = Field("", description="What the class is")
    citation: str = Field("", description="Where the class comes from (the rule's text)")
    transformer: Text = Field(description="The transformer of columns of this class")
    params: Params = Field(None, description="The transformer's parameters")


class PolicySpec(BaseModel):
    """A policy: named identifier classes and their default transformers (rules/policies/NAME.yaml)."""

    model_config = STRICT

    name: Text | None = Field(None, description="The policy's name (default: the file's)")
    description: str = Field("", description="What the policy is")
    classes: dict[str, ClassSpec] = Field(default_factory=dict, description="The classes by name")


def _def_name(kind: str, name: str) -> str:
    """A model name that is a JSON Schema $defs key of its own (rule_fake_email)."""
    return f"{kind}_{name.replace('.', '_')}"


def _one_of(names: list[str]) -> Any:
    """One of `names` (any text when there are none: a folder without policies)."""
    return Literal[tuple(names)] if names else str  # type: ignore[valid-type]


def keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The keys a model accepts, as written in the file."""
    return tuple(field.alias or name for name, field in model.model_fields.items())


def schema_model(transformers: tuple, classes: list[str], policies: list[str]) -> type[BaseModel]:
    """RuleFileSpec with each column rule narrowed to what the registry and the policies allow: a
    transformer's name, `null`, a class of the policies, or one transformer with its own parameters (its
    params_model). Only the JSON Schema is taken from it; files are validated by RuleFileSpec and the
    loader, which checks the same parameters with the same params_model."""
    narrowed: list[Any] = [Literal[tuple(t.name for t in transformers)], None]  # type: ignore[misc]
    narrowed.append(
        create_model(
            "rule_class",
            __base__=_Rule,
            __doc__="An identifier class of the policy; the policy names its transformer.",
            class_=(_one_of(classes), Field(alias="class")),
            params=(Params, Field(None, description="Overrides of the class transformer's parameters")),
            waive=(Waive | None, Field(None, description=Waive.__doc__)),
        )
    )
    for t in transformers:
        fields: dict[str, Any] = {
            "transformer": (Literal[t.name], ...),
            "params": (t.params_model | None, Field(None, description=f"The parameters of {t.name}")),
        }
        if not t.rewrites:  # only a kept column can waive a check (the loader refuses it elsewhere)
            fields["waive"] = (Waive | None, Field(None, description=Waive.__doc__))
        narrowed.append(
            create_model(_def_name("rule", t.name), __base__=_Rule, __doc__=t.description, **fields)
        )
    column = narrowed[0]
    for member in narrowed[1:]:
        column = column | member
    table = create_model(
        "table",
        __base__=TableSpec,
        columns=(dict[str, column] | None, Field(None, description="One rule per column")),
    )
    return create_model(
        "rule file",
        __base__=RuleFileSpec,
        policy=(_one_of(policies), Field(DEFAULT_POLICY, description="The policy (rules/policies/)")),
        tables=(dict[str, table], Field(description=RuleFileSpec.model_fields["tables"].description)),
    )
