"""How deid writes SQL names and string literals: one implementation, SQLAlchemy's, bound once per engine.

Every statement deid writes itself quotes through a Quoting made from the engine's SQLAlchemy dialect:
names by the dialect's IdentifierPreparer (always quoted: exact case, any character), string literals as
SQLAlchemy renders a bound string with literal_binds. A backend exposes its instance (Backend.quoting,
quote_identifier, quote_table, quote_literal); the engine's own modules import the instance of their engine
(deid/backends/<engine>/quoting.py). Nothing else in deid escapes a quote (tests/test_quoting_guard.py).

Three choices, each for a reason:
- The dialects use the `named` paramstyle. For `format`/`pyformat` drivers (psycopg, PyMySQL) SQLAlchemy
  doubles every `%` of a name or literal, which is right only for a statement handed to that driver with
  parameters. deid's statements run without parameters (deid.rawsql) or through text(), which doubles `%`
  itself: a table `discount%` must reach the server as written.
- Backslashes: MySQL and MariaDB read them as escapes in string literals unless sql_mode has
  NO_BACKSLASH_ESCAPES, which deid's sessions never set, so they are doubled there (SQLAlchemy's MySQL
  default). PostgreSQL reads them as themselves with standard_conforming_strings on, its default since 9.1,
  which SQLAlchemy's dialect assumes until it has read the server's setting: deid assumes it too.
- NUL: no server keeps it in a name, and PostgreSQL refuses it in text, so it is refused here (Unquotable),
  naming what held it, never the text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sqlalchemy as sa

from deid.names import table_names


class Unquotable(ValueError):
    """Text that no SQL statement can carry (a NUL character)."""


@dataclass(frozen=True)
class Quoting:
    """One engine's spelling of names and string literals."""

    dialect: sa.Dialect
    # True: a table key `schema.table` is both names on the server; False: the engine has one namespace per
    # database (deid names it `public`), so a table is its name alone, on a connection to its database
    schemas: bool = True

    def identifier(self, name: str) -> str:
        """A name as an identifier, always quoted: `"Learners 2"`, `` `a``b` ``."""
        _refuse_nul(name, "a name")
        return self.dialect.identifier_preparer.quote_identifier(name)

    def identifier_if_needed(self, name: str) -> str:
        """A name quoted only where the engine needs it (upper case, a reserved word, other characters), as
        PostgreSQL prints names in the definitions it gives back (CHECK clauses)."""
        _refuse_nul(name, "a name")
        return self.dialect.identifier_preparer.quote(name)

    def qualified(self, *names: str) -> str:
        """Names joined by dots, each quoted: "schema"."sequence"."""
        return ".".join(self.identifier(n) for n in names)

    def table(self, key: str) -> str:
        """The SQL name of a table (sequence, view) given by its key `schema.table` (deid.names)."""
        schema, name = table_names(key)
        return self.qualified(schema, name) if self.schemas else self.identifier(name)

    def literal(self, text: str) -> str:
        """A string literal of text deid wrote or read from a rule file (never row data: that is bound)."""
        _refuse_nul(text, "a string literal")
        return _render_literal(self.dialect, text)


@functools.lru_cache(maxsize=4096)  # the same patterns and names are quoted for every table and check
def _render_literal(dialect: sa.Dialect, text: str) -> str:
    compiled = sa.literal(text, sa.String()).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return str(compiled)


def _refuse_nul(text: str, what: str) -> None:
    if "\x00" in text:
        raise Unquotable(
            f"{what} holds a NUL character (\\x00), which no SQL server accepts in a name or text: remove it "
            "from the rule file, or rename the object"
        )


def named(dialect_class: type[sa.Dialect]) -> sa.Dialect:
    """A dialect instance that writes `%` as itself (see the module's docstring)."""
    return dialect_class(paramstyle="named")


STANDARD = Quoting(named(sa.engine.default.DefaultDialect))  # the SQL standard's: "name", 'text'
