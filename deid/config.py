"""deid.yaml: which production databases deid refreshes, and how. Settings are referenced by name.

Connections and secrets never live in this file: it names them, and a resolver finds them. The CLI resolves
from environment variables; the Airflow hook (plugins/) resolves the same names from Airflow connections and
variables. Airflow's own environment spelling (AIRFLOW_CONN_<NAME>, AIRFLOW_VAR_<NAME>) is accepted by the
CLI too, so one set of variables serves both.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from deid import yamlsrc
from deid.backends import DEFAULT_ENGINE, backend_for, engine_names
from deid.cloud.settings import ServerCopies, parse_server_copies
from deid.db import connection_url
from deid.errors import ConfigError, MissingSetting, Problem
from deid.expect.settings import Settings as ValidationSettings
from deid.expect.settings import parse_validation
from deid.preview.access import PreviewAccess, parse_preview
from deid.records.config import RecordsConfig, parse_records
from deid.suggest import did_you_mean

# sections an engine's cloner reads itself (its `parse_section`): `reflink:` (a copied data directory)
CLONER_SECTIONS = ("reflink",)
DATABASE_KEYS = (
    "engine",
    "production",
    "staging_server",
    "staging_name",
    "clone",
    "aurora",
    "rds_snapshot",
    "reflink",
    "migrations",
    "retention",
    "scrub_sessions",
    "scrub_parts",
    "split_from_rows",
    "stream_from_rows",
    "salt_secret",
    "rules",
    "schedule",
    "staging_roles",
    "description",
    "validation",
    "preview",
)
TOP_KEYS = ("databases", "records", "preview")
DEFAULT_CONFIG = "deid.yaml"


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
    problems += source.unknown_keys((), data, TOP_KEYS, where="deid.yaml")
    records, found = parse_records(source, data.get("records"))
    problems += found
    preview, found = parse_preview(source, ("preview",), data.get("preview"))
    problems += found
    databases = {}
    databases_data = data.get("databases") or {}
    if not isinstance(databases_data, dict):
        problems.append(
            source.problem(
                ("databases",),
                "databases must be a mapping of database names",
                "e.g. databases: {learners: {production: ..., staging_server: ..., salt_secret: ...}}",
            )
        )
        databases_data = {}
    for name, spec in databases_data.items():
        db, found = _database(source, str(name), spec)
        problems += found
        if db:
            databases[db.name] = db
    if problems:
        raise ConfigError("\n".join(str(p) for p in sorted(problems)))
    return Config(
        file=str(path),
        root=path.resolve().parent,
        databases=databases,
        records=records,
        preview=preview or PreviewAccess(),
    )


def _database(source, name: str, spec) -> tuple[DatabaseConfig | None, list[Problem]]:
    path = ("databases", name)
    if not isinstance(spec, dict):
        return None, [
            source.problem(path, f"database {name} must be a mapping", "see deid.yaml in the repository")
        ]
    problems = source.unknown_keys(path, spec, DATABASE_KEYS, where=f"database {name}")
    for required in ("production", "staging_server", "salt_secret"):
        if not isinstance(spec.get(required), str):
            problems.append(
                source.problem(
                    path,
                    f"database {name} needs '{required}' (a name, resolved at run time)",
                    f"add {required}: <name>",
                )
            )
    engine = spec.get("engine", DEFAULT_ENGINE)
    engines = engine_names()
    if engine not in engines:
        problems.append(
            source.problem(
                (*path, "engine"),
                f"unknown engine '{engine}'.{did_you_mean(str(engine), engines)}",
                f"supported: {', '.join(engines)}",
            )
        )
    # where the server can copy a database itself, that is the default: no row moves through a client
    instant = engine in engines and backend_for(engine).capabilities.instant_clone
    clone = spec.get("clone", "template" if instant else "dump")
    from deid.cloners import (  # here: the cloners import the run context, which imports this module
        cloner_for,
        cloner_names,
    )

    clone_methods = cloner_names(engine) if engine in engines else ()
    if clone_methods and clone not in clone_methods:
        problems.append(
            source.problem(
                (*path, "clone"),
                f"unknown clone method '{clone}'.{did_you_mean(str(clone), clone_methods)}",
                f"use one of {', '.join(clone_methods)}",
            )
        )
    server_copies, found = parse_server_copies(source, path, spec, str(clone))
    problems += found
    parse_section = (
        getattr(cloner_for(clone, engine), "parse_section", None) if clone in clone_methods else None
    )
    if parse_section is not None:
        server_copies, found = parse_section(source, path, spec, str(clone))
        problems += found
    for other in CLONER_SECTIONS:
        if other in spec and other != clone and parse_section is None:
            problems.append(
                source.problem(
                    (*path, other),
                    f"'{other}:' is read only with clone: {other}, and this database clones with '{clone}'",
                    f"set clone: {other}, or remove the {other} section",
                )
            )
    whole = functools.partial(_whole, source, path, spec, problems)
    retention = whole("retention", 3, 0, None, "the number of previous staging copies kept for rollback")
    sessions = whole(
        "scrub_sessions", 2, 1, 64, "sessions that share the rewrite of one big table: about the free cores"
    )
    parts = whole("scrub_parts", 1, 1, 256, "parts a big streamed table is split into: the workers' cores")
    split_from = whole("split_from_rows", 200_000, 0, None, "tables this big or bigger are shared or split")
    stream_from = whole(
        "stream_from_rows", 10_000, 0, None, "tables this big or bigger stream through the vector forms"
    )
    problems += _texts(source, path, spec)
    migrations = _migrations(source, (*path, "migrations"), spec.get("migrations"), problems)
    validation, found = parse_validation(source, (*path, "validation"), spec.get("validation"))
    problems += found
    preview, found = parse_preview(source, (*path, "preview"), spec.get("preview"))
    problems += found
    if problems:
        return None, problems
    return DatabaseConfig(
        name=name,
        engine=engine,
        production=spec["production"],
        staging_server=spec["staging_server"],
        staging_name=spec.get("staging_name", f"{name}_staging"),
        rules=spec.get("rules", f"rules/{name}.yaml"),
        salt_secret=spec["salt_secret"],
        clone=clone,
        retention=retention,
        scrub_sessions=sessions,
        scrub_parts=parts,
        split_from_rows=split_from,
        stream_from_rows=stream_from,
        migrations=migrations,
        schedule=str(spec.get("schedule", "0 3 * * *")),
        staging_roles=tuple(str(r) for r in spec.get("staging_roles") or ()),
        validation=validation,
        preview=preview,
        server_copies=server_copies,
    ), []


# Settings that are text, and what each must be: a mistyped one would fail later, far from its line.
_TEXTS = {
    "staging_name": "a name",
    "rules": "a path",
    "schedule": "a cron expression",
    "description": "text",
}


def _texts(source, path, spec) -> list[Problem]:
    problems = [
        source.problem(
            (*path, key), f"{key} must be {kind}", f"write {key}: <{kind.split()[-1]}> as plain text"
        )
        for key, kind in _TEXTS.items()
        if key in spec and not (isinstance(spec[key], str) and spec[key])
    ]
    roles = spec.get("staging_roles") or []  # empty: PUBLIC may connect
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        problems.append(
            source.problem(
                (*path, "staging_roles"),
                "staging_roles must be a list of role names",
                "e.g. staging_roles: [developers, qa]",
            )
        )
    return problems


def _migrations(source, path, spec, problems: list[Problem]) -> Migrations | None:
    if spec is None:
        return None
    if (
        isinstance(spec, dict)
        and len(spec) == 1
        and next(iter(spec)) in ("sql", "alembic")
        and isinstance(next(iter(spec.values())), str)
    ):
        kind, folder = next(iter(spec.items()))
        return Migrations(kind=kind, path=str(folder))
    problems.append(
        source.problem(
            path,
            "migrations must be {sql: FOLDER} or {alembic: SCRIPT_LOCATION}",
            "for example migrations: {sql: migrations/learners}",
        )
    )
    return None


class Settings(Protocol):
    """Resolves the names in deid.yaml. The CLI uses EnvSettings; Airflow uses the hook in plugins/."""

    def connection(self, name: str) -> str:
        """A database URL, whatever form the setting had (deid.db.connection_url reads it)."""
        ...

    def secret(self, name: str) -> str: ...


def env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


class EnvSettings:
    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ

    def _lookup(self, kind: str, name: str, prefixes: tuple[str, ...], hint: str) -> tuple[str, str]:
        """The value and the variable it was found in."""
        places = [f"environment variable {p}{env_name(name)}" for p in prefixes]
        for prefix in prefixes:
            value = self.environ.get(prefix + env_name(name))
            if value:
                return value, prefix + env_name(name)
        raise MissingSetting(kind, name, places, hint)

    def connection(self, name: str) -> str:
        value, variable = self._lookup(
            "connection",
            name,
            ("DEID_CONN_", "AIRFLOW_CONN_"),
            f"Set one to a URL such as {backend_for(DEFAULT_ENGINE).url_example}, or a key=value string "
            "such as 'host=db port=5432 dbname=x user=u'.",
        )
        return connection_url(value, f"connection '{name}' (environment variable {variable})")

    def secret(self, name: str) -> str:
        return self._lookup(
            "secret",
            name,
            ("DEID_SECRET_", "AIRFLOW_VAR_"),
            "Set one to the secret's value (it is never logged).",
        )[0]


def _whole(
    source, path, spec, problems: list, key: str, default: int, low: int, high: int | None, hint: str
) -> int:
    """spec[key] (or `default`) when it is a whole number in [low, high]; else a problem naming the key."""
    value = spec.get(key, default)
    whole = isinstance(value, int) and not isinstance(value, bool)
    if not whole or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"≥ {low}"
        problems.append(source.problem((*path, key), f"{key} must be a whole number {bounds}", hint))
    return value
