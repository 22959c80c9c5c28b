"""PostgreSQL side of `deid preview`: a throw-away database holding a sample of one table, built like the
production table, and the leftovers of killed previews.

The throw-away database is named `deid_preview_<12 hex>`: a prefix of its own, so it can never be taken for
a staging name's copy (S, S__YYYYMMDD, S__work_YYYYMMDD) by a nightly run, `deid status` or a publish. While
a preview lives, its session holds an advisory lock keyed by that name in the staging server's lock database
(the same database for every deid process, see deid.lock); a database with the prefix whose lock nobody
holds belongs to a preview that was killed, and the next preview or `deid cleanup` drops it.

The sampled table is created with the production column types (enums and domains of the table are created
first, as production defines them), and stored generated columns with their expressions, so the plan's SQL
casts and computes exactly as in the night. No index, constraint or trigger is copied: a sample needs none,
and none may fire. One extra column numbers the rows, because the plan may rewrite the primary key itself.
Rows travel as text (each type's own output and input functions, lossless) and are bound, never pasted.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from contextlib import suppress

import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql.forms import support
from deid.backends.postgresql.forms.dictionaries import load_dictionaries
from deid.backends.postgresql.forms.support import support_sql
from deid.backends.postgresql.lock import lock_key
from deid.backends.postgresql.quoting import quote_ident, quote_table
from deid.dberrors import retell
from deid.errors import TerminalError, TransientError
from deid.names import table_names
from deid.steps.copies import drop_database

PREFIX = "deid_preview_"
_NAME = re.compile(re.escape(PREFIX) + r"[0-9a-f]{12}")
ROW = "deid_preview_row__"  # numbers the sampled rows; a column of that name in production is refused
_BUILT_IN = ("pg_catalog", "information_schema")


def new_name() -> str:
    return PREFIX + secrets.token_hex(6)


def _key(name: str) -> int:
    return lock_key(f"preview:{name}")


def hold(admin: sa.Connection, name: str) -> None:
    """Mark `name` as in use for as long as the `admin` session lives (a session advisory lock)."""
    if not admin.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)}).scalar():
        raise TransientError(f"the preview database name {name} is in use; try again")


def release(admin: sa.Connection, name: str) -> None:
    with suppress(sa.exc.SQLAlchemyError, TransientError):  # a lost session released it already
        admin.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})


def drop_leftovers(admin: sa.Connection) -> list[str]:
    """Drop the throw-away databases of previews that no longer run (killed: their lock is free)."""
    names = admin.execute(
        sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :p) ORDER BY 1"), {"p": PREFIX}
    ).scalars()
    dropped = []
    for name in [n for n in names if _NAME.fullmatch(n)]:
        if not admin.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)}).scalar():
            continue  # a preview under way
        try:
            if drop_database(admin, name):
                dropped.append(name)
        finally:
            release(admin, name)
    return dropped


# --- the sampled table ---------------------------------------------------------------------------------

_COLUMNS = sa.text(
    """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, a.attgenerated,
           pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attribute a
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum
    """
)
_TYPE = sa.text(
    """
    SELECT n.nspname, t.typname, t.typtype, t.typelem, t.typbasetype, t.typcategory,
           format_type(t.typbasetype, t.typtypmod)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = :o
    """
)


def table_ddl(production: sa.Connection, table: str) -> tuple[list[str], list[tuple[str, str, bool]]]:
    """Statements that build `table` (a canonical key) in an empty database, and its columns as
    (name, type, generated), read from production's catalog (names and definitions only, no rows)."""
    columns = production.execute(_COLUMNS, {"t": quote_table(table)}).all()
    statements: list[str] = []
    seen: set[int] = set()
    for _name, _type, type_oid, _gen, _expr in columns:
        _type_ddl(production, type_oid, statements, seen)
    if any(c[0] == ROW for c in columns):
        raise TerminalError(f"{table} has a column named {ROW}, which the preview needs for itself")
    schema, _ = table_names(table)
    defs = []
    for name, type_sql, _oid, generated, expression in columns:
        stored = f" GENERATED ALWAYS AS ({expression}) STORED" if generated == "s" else ""
        defs.append(f"{quote_ident(name)} {type_sql}{stored}")
    defs.append(f"{quote_ident(ROW)} integer")
    statements.insert(0, f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    statements.append(f"CREATE TABLE {quote_table(table)} (\n  " + ",\n  ".join(defs) + "\n)")
    return statements, [(c[0], c[1], c[3] == "s") for c in columns]


def _type_ddl(production: sa.Connection, oid: int, statements: list[str], seen: set[int]) -> None:
    """CREATE TYPE / DOMAIN for a user-defined type (and the types it is made of), dependencies first."""
    if oid in seen:
        return
    seen.add(oid)
    schema, name, kind, element, base, category, base_sql = production.execute(_TYPE, {"o": oid}).one()
    if category == "A" and element:
        _type_ddl(production, element, statements, seen)
        return
    if schema in _BUILT_IN:
        return
    qualified = f"{quote_ident(schema)}.{quote_ident(name)}"
    create_schema = f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"
    if kind == "e":
        labels = production.execute(
            sa.text(
                "SELECT quote_literal(enumlabel) FROM pg_enum WHERE enumtypid = :o ORDER BY enumsortorder"
            ),
            {"o": oid},
        ).scalars()
        statements += [create_schema, f"CREATE TYPE {qualified} AS ENUM ({', '.join(labels)})"]
    elif kind == "d":
        _type_ddl(production, base, statements, seen)
        checks = production.execute(
            sa.text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = :o ORDER BY conname"
            ),
            {"o": oid},
        ).scalars()
        statements += [create_schema, f"CREATE DOMAIN {qualified} AS {base_sql} {' '.join(checks)}".strip()]
    else:
        raise TerminalError(
            f"preview cannot build the type {schema}.{name} (kind '{kind}': only enums and domains are "
            "recreated); preview another table, or use `deid run` on a date and read the working copy"
        )


def sample(production: sa.Connection, table: str, columns: list[str], key: tuple[str, ...], rows: int):
    """The first `rows` rows of `table` in key order (physical order without a key), every value as text."""
    # aliased: ORDER BY a bare name would pick the output column (the text) and sort 10 before 2
    selected = ", ".join(f"CAST({quote_ident(c)} AS text) AS v{i}" for i, c in enumerate(columns))
    order = f" ORDER BY {', '.join(quote_ident(c) for c in key)}" if key else ""
    statement = f"SELECT {selected} FROM {quote_table(table)}{order} LIMIT {int(rows)}"
    try:
        return [tuple(r) for r in rawsql.execute(production, statement)]
    except sa.exc.DBAPIError as exc:
        raise retell(exc, f"preview's read of {table}") from None


def load(work: sa.Connection, table: str, columns: list[tuple[str, str]], rows: list[tuple]) -> None:
    """Insert `rows` (text values of `columns`, as (name, type)), numbered from 1, cast to each type."""
    names = ", ".join([*(_colons(quote_ident(c)) for c, _ in columns), quote_ident(ROW)])
    values = ", ".join([*(f"CAST(:v{i} AS {_colons(t)})" for i, (_, t) in enumerate(columns)), ":row"])
    statement = sa.text(f"INSERT INTO {_colons(quote_table(table))} ({names}) VALUES ({values})")
    params = [{**{f"v{i}": v for i, v in enumerate(row)}, "row": n} for n, row in enumerate(rows, 1)]
    try:
        if params:
            work.execute(statement, params)
    except sa.exc.DBAPIError as exc:
        raise retell(exc, f"preview's copy of {table}") from None


def prepare_forms(work: sa.Connection, dictionaries: Iterable[str]) -> None:
    """The `_deid` objects the plan's SQL forms call and the dictionaries they pick from, as the scrub makes
    them in a working copy."""
    for statement in support_sql():
        rawsql.execute(work, statement)
    load_dictionaries(work, dictionaries)


def apply_key(work: sa.Connection, salt: str) -> None:
    """Hand the session the key derived from `salt`, as the scrub's sessions get it (never in SQL text)."""
    support.apply_key(work, salt)


def read_back(work: sa.Connection, table: str, columns: list[str]) -> dict[int, tuple]:
    """The rows of the throw-away table by their number, every value as text (a row the plan removed is
    absent)."""
    selected = ", ".join([quote_ident(ROW), *(f"CAST({quote_ident(c)} AS text)" for c in columns)])
    statement = f"SELECT {selected} FROM {quote_table(table)}"
    return {r[0]: tuple(r[1:]) for r in rawsql.execute(work, statement)}


def _colons(sql: str) -> str:
    """A name or type in a bound statement: a colon in it must not read as a parameter."""
    return sql.replace(":", "\\:")


def matching(work: sa.Connection, table: str, condition: str) -> list[int]:
    """Numbers of the rows a rendered row condition (the rules' keep_rows_where) holds for."""
    statement = f"SELECT {quote_ident(ROW)} FROM {quote_table(table)} WHERE ({condition}) IS TRUE"
    return [r[0] for r in rawsql.execute(work, statement)]
