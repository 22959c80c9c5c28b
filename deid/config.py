"""deid.yaml: which production databases deid refreshes, and how. Settings are referenced by name.

Connections and secrets never live in this file: it names them, and a resolver finds them. The CLI resolves
from environment variables; the Airflow hook (plugins/) resolves the same names from Airflow connections and
variables. Airflow's own environment spelling (AIRFLOW_CONN_<NAME>, AIRFLOW_VAR_<NAME>) is accepted by the
CLI too, so one set of variables serves both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deid import yamlmodel, yamlsrc
from deid.backends import DEFAULT_ENGINE, backend_for, engine_names
from deid.cloud.settings import METHODS, AuroraSection, RdsSnapshotSection, ServerCopies
from deid.db import connection_url
from deid.errors import ConfigError, MissingSetting, Problem
from deid.expect.settings import Settings as ValidationSettings
from deid.preview.access import PreviewAccess
from deid.records.config import RecordsConfig
from deid.suggest import did_you_mean
from deid.yamlmodel import EXPECTS, STRICT, problem

# sections an engine's cloner reads itself (its `parse_section`): `reflink:` (a copied data directory)
CLONER_SECTIONS = ("reflink",)
SERVER_SECTIONS = ("aurora", "rds_snapshot")  # deid.cloud.settings
DEFAULT_CONFIG = "deid.yaml"
SCHEMA_FILE = "deid.schema.json"  # in rules/schemas/; `deid rules-schema` writes it
Text = Annotated[str, Field(min_length=1)]
Engine = Literal[tuple(engine_names())]  # type: ignore[valid-type]


def _said(what: str, description: str, **more: Any) -> Any:
    """A text setting whose error says what it is (`a path`), not only that it is text."""
    return Field(description=description, json_schema_extra={EXPECTS: what}, **more)


class MigrationsSpec(BaseModel):
    """migrations: {sql: FOLDER} or {alembic: SCRIPT_LOCATION}, relative to deid.yaml."""

    model_config = STRICT

    sql: Text | None = Field(None, description="A folder of V<n>__name.sql files")
    alembic: Text | None = Field(None, description="An Alembic script location")

    @model_validator(mode="after")
    def _one(self) -> MigrationsSpec:
        if (self.sql is None) == (self.alembic is None):
            raise problem(
                "migrations takes one of sql: FOLDER or alembic: SCRIPT_LOCATION",
                "for example migrations: {sql: migrations/learners}",
            )
        return self


class DatabaseSpec(BaseModel):
    """One production database that deid refreshes, as deid.yaml says it (DatabaseConfig: as resolved)."""

    model_config = STRICT

    engine: Engine = Field(DEFAULT_ENGINE, description="The database engine")
    production: Text = Field(description="The production database's connection name, resolved at run time")
    staging_server: Text = Field(description="The staging server's connection name, resolved at run time")
    salt_secret: Text = Field(description="The name of the salt's secret, resolved at run time")
    staging_name: Text | None = _said(
        "a name", "The staging copy's name (default: <database>_staging)", default=None
    )
    rules: Text | None = _said(
        "a path", "The rule file, relative to deid.yaml (default: rules/<database>.yaml)", default=None
    )
    clone: Text | None = Field(
        None,
        description="How the working copy is made (template, dump, reflink, aurora, rds_snapshot; default: "
        "the server's own copy where the engine has one, else dump)",
    )
    aurora: AuroraSection | None = Field(None, description="With clone: aurora")
    rds_snapshot: RdsSnapshotSection | None = Field(None, description="With clone: rds_snapshot")
    reflink: dict[str, Any] | None = Field(
        None, description="With clone: reflink (a copied data directory; its cloner reads this section)"
    )
    migrations: MigrationsSpec | None = _said(
        "{sql: FOLDER} or {alembic: SCRIPT_LOCATION}",
        "The schema migrations staging needs and production lacks, e.g. {sql: migrations/learners}",
        default=None,
    )
    retention: Annotated[int, Field(ge=0)] = Field(
        3, description="The number of previous staging copies kept for rollback"
    )
    scrub_sessions: Annotated[int, Field(ge=1, le=64)] = Field(
        2, description="Sessions that share the rewrite of one big table: about the free cores"
    )
    scrub_parts: Annotated[int, Field(ge=1, le=256)] = Field(
        1, description="Parts a big streamed table is split into: the workers' cores"
    )
    split_from_rows: Annotated[int, Field(ge=0)] = Field(
        200_000, description="Tables this big (estimated rows) or bigger are shared or split"
    )
    stream_from_rows: Annotated[int, Field(ge=0)] = Field(
        10_000, description="Tables this big (estimated rows) or bigger stream through the vector forms"
    )
    schedule: Text = _said("a cron expression", "When the nightly run starts", default="0 3 * * *")
    staging_roles: Annotated[tuple[Text, ...], Field(strict=False)] = _said(
        "a list of role names",
        "Roles granted access on publish, e.g. staging_roles: [developers, qa]; default: PUBLIC",
        default=(),
    )
    description: Text | None = _said("text", "What the database is, for people", default=None)
    validation: ValidationSettings = Field(
        default_factory=ValidationSettings, description="How hard validation looks"
    )
    preview: PreviewAccess | None = Field(
        None, description="Who may preview this database (replaces the top level's preview:)"
    )

    @model_validator(mode="after")
    def _sections(self) -> DatabaseSpec:
        clone = self.clone_method
        for other in (*SERVER_SECTIONS, *CLONER_SECTIONS):
            if getattr(self, other) is not None and other != clone:
                raise problem(
                    f"'{other}:' is read only with clone: {other}, and this database clones with '{clone}'",
                    f"set clone: {other}, or remove the {other} section",
                    at=other,
                )
        if clone in SERVER_SECTIONS and getattr(self, clone) is None:
            key = METHODS[clone]
            raise problem(
                f"clone: {clone} needs a '{clone}:' section (a mapping)",
                f"{clone}: {{{key}: prod-learners, hosted_zone_id: Z..., "
                "record_name: learners-staging.example}",
                at="clone",
            )
        return self

    @property
    def clone_method(self) -> str:
        """The clone method said, or the engine's default: the server's own copy where it has one (no row
        moves through a client), else a dump."""
        if self.clone is not None:
            return self.clone
        return "template" if backend_for(self.engine).capabilities.instant_clone else "dump"


class DeidYaml(BaseModel):
    """deid.yaml: which production databases deid refreshes every night, and how."""

    model_config = ConfigDict(**STRICT, title="deid.yaml")

    databases: dict[str, DatabaseSpec] = Field(
        default_factory=dict,
        description="Production databases by name: each one's connections, rule file and settings",
        json_schema_extra={EXPECTS: "a mapping of database names"},
    )
    records: RecordsConfig = Field(
        default_factory=RecordsConfig, description="Where run records, reports and metrics go"
    )
    preview: PreviewAccess = Field(
        default_factory=PreviewAccess, description="Who may preview production values (default: nobody)"
    )


def json_schema() -> dict[str, Any]:
    """deid.yaml's JSON Schema, for editors: deid.yaml's first line names it
    (`# yaml-language-server: $schema=rules/schemas/deid.schema.json`)."""
    from pydantic.json_schema import models_json_schema

    from deid.cloners import section_models

    sections = section_models()
    # the sections a cloner reads itself are typed by its model, which lives with the engine's cloner
    (_, schema) = models_json_schema(
        [(DeidYaml, "validation"), *((model, "validation") for model in sections.values())],
        ref_template="#/$defs/{model}",
    )
    top = schema["$defs"].pop(DeidYaml.__name__)
    for name, model in sections.items():
        field = schema["$defs"]["DatabaseSpec"]["properties"][name]
        field["anyOf"] = [{"$ref": f"#/$defs/{model.__name__}"}, {"type": "null"}]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": schema["$defs"], **top}


@dataclass(frozen=True)
class Migrations:
    kind: str  # "sql" (a folder of V<n>__name.sql) or "alembic" (a script location)
    path: str


@dataclass(frozen=True)
class DatabaseConfig:
    name: str
    engine: str
    production: str  # connection name
    staging_server: str  # connection name
    staging_name: str
    rules: str  # path of the rule file, relative to the config's folder
    salt_secret: str
    clone: str = "template"
    retention: int = 3
    migrations: Migrations | None = None
    schedule: str = "0 3 * * *"
    staging_roles: tuple[str, ...] = ()  # granted access on publish; empty: the engine's default (PUBLIC)
    scrub_sessions: int = 2  # sessions sharing the SQL forms' rewrite of one big table (1: never split)
    # parts a big streamed table is split into, each a task of its own in Airflow, which any worker can run
    # (1: never split). Not by default: on one 2-core machine the parts streamed no faster than the whole
    # table (its stream already keeps both cores busy) and lose COPY FREEZE
    scrub_parts: int = 1
    split_from_rows: int = 200_000  # tables this big (estimated rows) or bigger are shared or split
    # tables of at least this many rows (estimated) are streamed through the vector forms; smaller ones are
    # rewritten by the SQL forms, whose set-up costs less than the stream's there (deid.backends...scrub)
    stream_from_rows: int = 10_000
    validation: ValidationSettings = field(default_factory=ValidationSettings)  # sample sizes, thresholds
    preview: PreviewAccess | None = None  # who may preview; None: the top level's `preview:` decides
    # clone: aurora / rds_snapshot: each copy is a server of its own (deid.cloud.settings); None: each copy
    # is a database on the staging server
    server_copies: ServerCopies | None = None


@dataclass(frozen=True)
class Config:
    file: str
    root: Path  # folder of deid.yaml: relative paths resolve from here
    databases: Mapping[str, DatabaseConfig] = field(default_factory=dict)
    records: RecordsConfig = field(default_factory=RecordsConfig)
    preview: PreviewAccess = field(default_factory=PreviewAccess)  # default: nobody may preview

    def preview_access(self, name: str) -> PreviewAccess:
        """Who may preview `name`: its own `preview:` section, else the top level's."""
        return self.database(name).preview or self.preview

    @property
    def records_dir(self) -> Path:
        """Where run records, reports and metrics are written (records.dir, or $DEID_RECORDS_DIR)."""
        return self.records.directory(self.root)

    def database(self, name: str) -> DatabaseConfig:
        if name not in self.databases:
            hint = did_you_mean(name, self.databases)
            raise ConfigError(
                f"database '{name}' is not in {self.file}.{hint} "
                f"Configured: {', '.join(sorted(self.databases)) or '(none)'}"
            )
        return self.databases[name]

    def rules_path(self, name: str) -> Path:
        return self.root / self.database(name).rules

    def settings(self) -> EnvSettings:
        """How the CLI resolves this file's names: the environment, then deid.env beside this file
        (deid.envfile: `./dev demo` writes one)."""
        from deid import envfile

        return EnvSettings(env_file=envfile.beside(self.root))


def config_path(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("DEID_CONFIG") or DEFAULT_CONFIG)


def load_config(path: Path | str | None = None) -> Config:
    path = config_path(str(path) if path else None)
    if not os.path.exists(path):  # never raises: an unreadable folder reads as "not found"
        raise ConfigError(f"configuration file {path} not found. Pass --config FILE or set DEID_CONFIG.")
    source = yamlsrc.load(path)
    problems = list(source.problems)
    if source.data is not None and not isinstance(source.data, dict):
        problems.append(
            source.problem((), "deid.yaml is a mapping with databases (and optionally records)", "")
        )
    data = source.data if isinstance(source.data, dict) else {}
    spec, found = yamlmodel.validate(source, DeidYaml, data, top="deid.yaml")
    problems += found
    databases = {}
    for name, db in spec.databases.items() if spec else ():
        resolved, found = _database(source, name, db, data["databases"][name])
        problems += found
        databases[name] = resolved
    problems += _shared_staging_copies(source, databases)
    if problems:
        raise ConfigError("\n".join(str(p) for p in sorted(problems)))
    return Config(
        file=str(path),
        root=path.resolve().parent,
        databases=databases,
        records=spec.records,
        preview=spec.preview,
    )


def _shared_staging_copies(source, databases: Mapping[str, DatabaseConfig]) -> list[Problem]:
    """Two databases publishing under one staging name on one server would replace each other's copy every
    night and keep each other's as rollback copies: refused, at the second one's line."""
    first: dict[tuple[str, str], str] = {}
    problems = []
    for name, db in databases.items():
        key = (db.staging_server, db.staging_name)
        if key in first:
            line = source.line(("databases", first[key]))
            problems.append(
                source.problem(
                    ("databases", name, "staging_name"),
                    f"databases.{name} publishes its staging copy as {db.staging_name} on "
                    f"{db.staging_server}, as databases.{first[key]} (line {line}) does: each night's copy "
                    "would replace the other's",
                    f"give databases.{name} a staging_name of its own",
                )
            )
        first.setdefault(key, name)
    return problems


def _database(source, name: str, spec: DatabaseSpec, raw: dict) -> tuple[DatabaseConfig, list[Problem]]:
    """A database as the run uses it: defaults that depend on its name or engine filled in, its clone
    method checked against its engine's (a registry the model cannot import), its cloner's section read."""
    from deid.cloners import cloner_for, cloner_names  # here: the cloners import this module

    path = ("databases", name)
    problems = []
    clone = spec.clone_method
    server_copies = (
        getattr(spec, clone).server_copies() if clone in SERVER_SECTIONS else None
    )  # deid.cloud.settings
    methods = cloner_names(spec.engine)
    if clone not in methods:
        problems.append(
            source.problem(
                (*path, "clone"),
                f"unknown clone method '{clone}'.{did_you_mean(clone, methods)}",
                f"use one of {', '.join(methods)}",
            )
        )
    parse_section = getattr(cloner_for(clone, spec.engine), "parse_section", None) if not problems else None
    if parse_section is not None:
        server_copies, found = parse_section(source, path, raw, clone)
        problems += found
    staging_name = spec.staging_name or f"{name}_staging"
    migrations = spec.migrations
    return DatabaseConfig(
        name=name,
        engine=spec.engine,
        production=spec.production,
        staging_server=spec.staging_server,
        staging_name=staging_name,
        rules=spec.rules or f"rules/{name}.yaml",
        salt_secret=spec.salt_secret,
        clone=clone,
        retention=spec.retention,
        scrub_sessions=spec.scrub_sessions,
        scrub_parts=spec.scrub_parts,
        split_from_rows=spec.split_from_rows,
        stream_from_rows=spec.stream_from_rows,
        migrations=None
        if migrations is None
        else Migrations("sql", migrations.sql)
        if migrations.sql
        else Migrations("alembic", migrations.alembic or ""),
        schedule=spec.schedule,
        staging_roles=spec.staging_roles,
        validation=spec.validation,
        preview=spec.preview,
        server_copies=server_copies,
    ), problems


class Settings(Protocol):
    """Resolves the names in deid.yaml. The CLI uses EnvSettings; Airflow uses the hook in plugins/."""

    def connection(self, name: str) -> str:
        """A database URL, whatever form the setting had (deid.db.connection_url reads it)."""
        ...

    def secret(self, name: str) -> str: ...


def env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


class EnvSettings:
    """Names resolved from environment variables, then from `env_file` (deid.envfile), when given."""

    def __init__(self, environ: Mapping[str, str] | None = None, env_file: Path | None = None):
        self.environ = os.environ if environ is None else environ
        self.env_file = env_file

    def _lookup(self, kind: str, name: str, prefixes: tuple[str, ...], hint: str) -> tuple[str, str]:
        """The value and where it was found ("environment variable X", "X in FILE")."""
        places = [f"environment variable {p}{env_name(name)}" for p in prefixes]
        for prefix, place in zip(prefixes, places, strict=True):
            if value := self.environ.get(prefix + env_name(name)):
                return value, place
        if self.env_file is not None:
            from deid import envfile

            variable = prefixes[0] + env_name(name)
            where = f"{variable} in {self.env_file}"
            if value := envfile.read(self.env_file).get(variable):
                return value, where
            # the one way a newcomer meets this file is the demo, which writes it: say so where it is missing
            missing = " (no such file; `./dev demo` writes it for the demo's server)"
            places.append(where + ("" if self.env_file.exists() else missing))
        raise MissingSetting(kind, name, places, hint)

    def connection(self, name: str) -> str:
        value, where = self._lookup(
            "connection",
            name,
            ("DEID_CONN_", "AIRFLOW_CONN_"),
            f"Set one to a URL such as {backend_for(DEFAULT_ENGINE).url_example}, or a key=value string "
            "such as 'host=db port=5432 dbname=x user=u'.",
        )
        return connection_url(value, f"connection '{name}' ({where})")

    def secret(self, name: str) -> str:
        return self._lookup(
            "secret",
            name,
            ("DEID_SECRET_", "AIRFLOW_VAR_"),
            "Set one to the secret's value (it is never logged).",
        )[0]
