"""The engine-neutral picture of a database's structure, as introspected from a live server or read from JSON.

`deid schema DATABASE` writes this as JSON so that rule-file pull requests can be checked against the schema
without access to production. Everything here is structure: names and types, never row values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from deid import names

SCHEMA_FORMAT = 3  # 2: triggers described (kind, state, what they derive), not only named
# 3: CHECK constraints, named unique keys, partition keys and bounds (what lint checks rules against)


class Kind(StrEnum):
    """What a column holds, as far as transformers care. Engines map their types onto these."""

    TEXT = "text"
    INTEGER = "integer"
    NUMERIC = "numeric"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIME = "time"
    INTERVAL = "interval"
    JSON = "json"
    BYTEA = "bytea"
    UUID = "uuid"
    INET = "inet"
    ENUM = "enum"
    ARRAY = "array"
    OTHER = "other"


# Column fields added after digests were first recorded, with their defaults: left out of the digest at their
# default, so a schema without them keeps the digest it had (a copy validated before an upgrade still
# publishes after it).
_LATER_COLUMN_FIELDS = {"on_update": None}


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # the engine's own spelling, usable in a cast: "character varying(120)", "public.email_d"
    kind: Kind
    nullable: bool = True
    default: str | None = None
    generated: bool = False  # a stored generated column: the engine recomputes it, it cannot be written
    identity: bool = False
    element_kind: Kind | None = None  # for arrays: the kind of one element
    element_type: str | None = None  # for arrays: the engine's spelling of one element's type
    enum_labels: tuple[str, ...] = ()
    domain: str | None = None  # the domain's qualified name when the column is declared with one
    max_length: int | None = None  # character length limit, when the type has one
    # what the engine itself writes into the column on every UPDATE of its row, e.g. "current_timestamp()"
    # (declared ON UPDATE CURRENT_TIMESTAMP): a scrub's UPDATE would overwrite production's value with it
    on_update: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str  # qualified "schema.table"
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class CheckConstraint:
    """A table's CHECK constraint: every row the scrub writes must pass it, or the scrub fails."""

    name: str
    definition: str  # the engine's text of it, e.g. "CHECK (((rate >= 6.50) AND (rate <= 200.00)))"
    columns: tuple[str, ...] = ()  # the columns it reads


@dataclass(frozen=True)
class CheckTerm:
    """One conjunct of a CHECK, as far as an engine could read it (lint decides whether a rule respects it).

    `op`: a comparison (">=", ">", "<=", "<", "=", "<>") of `column` with the constant `value`; "in" (value:
    a tuple of constants); "length<=", "length<", "length=" (value: an int); "~" (value: a regular
    expression); "not null"; or "other" (not read: `value` is the tuple of columns it mentions).
    """

    text: str
    column: str | None
    op: str
    value: Any


@dataclass(frozen=True)
class UniqueKey:
    """A primary key, unique constraint or unique index, by name (the column sets alone are in Table)."""

    name: str
    columns: tuple[str, ...]
    primary: bool = False


@dataclass(frozen=True)
class Derivation:
    """A column a trigger sets, and the columns of the row its new value is computed from."""

    column: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Trigger:
    """A user trigger (those implementing foreign keys are not listed).

    `derives`: what a row trigger sets in the row it fires on; None when deid cannot read its function (a
    language deid cannot read, dynamic SQL, the whole row replaced), so anything may be derived.
    `writes_elsewhere`: its function may write other tables (a denormalised copy, an audit log).
    """

    name: str
    function: str = ""  # qualified name of the function it calls
    language: str = ""
    row: bool = True
    timing: str = "before"  # before | after | instead
    events: tuple[str, ...] = ()  # insert, update, delete, truncate
    enabled: str = "origin"  # origin (fires normally) | replica | always | disabled
    derives: tuple[Derivation, ...] | None = None
    writes_elsewhere: bool = False

    @property
    def fires_on_rewrite(self) -> bool:
        """Whether an UPDATE of every row (the scrub's) would fire it, were triggers not silenced."""
        return self.enabled != "disabled" and "update" in self.events


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    kind: str = "table"  # "table" | "partitioned"
    partition_of: str | None = None  # qualified name of the parent, for a partition
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()  # unique constraints and unique indexes, primary key excluded
    foreign_keys: tuple[ForeignKey, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    row_estimate: int = 0
    checks: tuple[CheckConstraint, ...] = ()
    unique_keys: tuple[UniqueKey, ...] = ()  # primary key and unique ones, named; empty in older snapshots
    partition_by: str = ""  # of a partitioned table, the engine's text: "RANGE (visited)"
    partition_key: tuple[str, ...] = ()  # the columns its partition key reads
    partition_bound: str = ""  # of a partition: "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')", "DEFAULT"

    @property
    def qualified(self) -> str:
        return names.key(self.schema, self.name)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def is_unique(self, column: str) -> bool:
        """True when the column alone must hold distinct values (single-column PK or unique)."""
        return (column,) == self.primary_key or (column,) in self.unique


@dataclass(frozen=True)
class Sequence:
    schema: str
    name: str
    data_type: str = "bigint"
    owned_by: str | None = None  # "schema.table.column" for serial/identity
    used_by: tuple[str, ...] = ()  # "schema.table.column" whose DEFAULT calls nextval() on it
    identity: bool = False

    @property
    def qualified(self) -> str:
        return names.key(self.schema, self.name)


@dataclass(frozen=True)
class View:
    schema: str
    name: str
    materialized: bool = False

    @property
    def qualified(self) -> str:
        return names.key(self.schema, self.name)


@dataclass(frozen=True)
class Schema:
    database: str
    engine: str
    tables: tuple[Table, ...]
    sequences: tuple[Sequence, ...] = ()
    views: tuple[View, ...] = ()
    server_version: str = ""
    format: int = field(default=SCHEMA_FORMAT)

    def table(self, qualified: str) -> Table | None:
        return next((t for t in self.tables if t.qualified == qualified), None)

    def rule_table_of(self, qualified: str) -> str:
        """The table whose rule covers `qualified`: a partition's partitioned root, else the table itself."""
        table = self.table(qualified)
        while table is not None and table.partition_of:
            table = self.table(table.partition_of)
        return table.qualified if table else qualified

    @property
    def rule_tables(self) -> tuple[Table, ...]:
        """Tables that need a rule: partitions follow the rule of their partitioned parent."""
        return tuple(t for t in self.tables if t.partition_of is None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @property
    def digest(self) -> str:
        """sha256 of the structure (names and types, no values; row estimates and the server's version left
        out, as they change without any DDL): the run record's schema_hash. Two schemas with the same
        digest have the same tables, columns, keys, triggers and sequences."""
        structure = asdict(self)
        structure["server_version"] = ""
        for table in structure["tables"]:
            table["row_estimate"] = 0
            for column in table["columns"]:
                for name, default in _LATER_COLUMN_FIELDS.items():
                    if column[name] == default:
                        del column[name]
        return hashlib.sha256(json.dumps(structure, sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: Path) -> Schema:
        return cls.from_json(Path(path).read_text())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        def column(d: dict[str, Any]) -> Column:
            d = dict(d)
            d["kind"] = Kind(d["kind"])
            if d.get("element_kind"):
                d["element_kind"] = Kind(d["element_kind"])
            d["enum_labels"] = tuple(d.get("enum_labels", ()))
            return Column(**d)

        def trigger(d: str | dict[str, Any]) -> Trigger:
            if isinstance(d, str):  # a snapshot written before triggers were described: only the name
                return Trigger(name=d)
            d = dict(d)
            d["events"] = tuple(d.get("events", ()))
            if d.get("derives") is not None:
                d["derives"] = tuple(
                    Derivation(x["column"], tuple(x.get("sources", ()))) for x in d["derives"]
                )
            return Trigger(**d)

        def table(d: dict[str, Any]) -> Table:
            d = dict(d)
            d["columns"] = tuple(column(c) for c in d["columns"])
            d["primary_key"] = tuple(d.get("primary_key", ()))
            d["unique"] = tuple(tuple(u) for u in d.get("unique", ()))
            d["foreign_keys"] = tuple(
                ForeignKey(
                    name=f["name"],
                    columns=tuple(f["columns"]),
                    ref_table=f["ref_table"],
                    ref_columns=tuple(f["ref_columns"]),
                )
                for f in d.get("foreign_keys", ())
            )
            d["triggers"] = tuple(trigger(t) for t in d.get("triggers", ()))
            # absent from snapshots of format 2 and older: read as none known
            d["checks"] = tuple(
                CheckConstraint(c["name"], c["definition"], tuple(c.get("columns", ())))
                for c in d.get("checks", ())
            )
            d["unique_keys"] = tuple(
                UniqueKey(k["name"], tuple(k["columns"]), k.get("primary", False))
                for k in d.get("unique_keys", ())
            )
            d["partition_key"] = tuple(d.get("partition_key", ()))
            return Table(**d)

        return cls(
            database=data["database"],
            engine=data["engine"],
            server_version=data.get("server_version", ""),
            format=data.get("format", SCHEMA_FORMAT),
            tables=tuple(table(t) for t in data["tables"]),
            sequences=tuple(
                Sequence(**{**s, "used_by": tuple(s.get("used_by", ()))}) for s in data.get("sequences", ())
            ),
            views=tuple(View(**v) for v in data.get("views", ())),
        )
