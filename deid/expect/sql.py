"""Small SQL helpers shared by the expectation builders, and the engine's validation dialect.

Every expectation query runs through SQLAlchemy's text(), deid's own and Great Expectations' alike, and
text() reads a colon followed by a word as a bind parameter, in names and literals too: a column named
"Note :draft" or a pattern such as `[:alpha:]` would become a parameter without a value. So each colon of
what is quoted is escaped (text() removes the backslash), once, where the text is quoted (`for_text`, which
the engines' dialects use); the queries' own parameters (`:deid_digest_key`) are written unquoted. `%`
needs nothing: text() doubles it for drivers that read it as a placeholder.

The engine's SQL itself is the backend's (Backend.validation(), a ValidationDialect), its names and literals
too (the dialect's quote_ident, quote_table and literal, over deid.backends.quoting).
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from deid.backends.base import ValidationDialect
from deid.plan import TablePlan
from deid.schema import ForeignKey, Schema, Table


def dialect_of(engine: sa.Engine | sa.Connection) -> ValidationDialect:
    """The validation dialect of the engine `engine` (or a connection) speaks."""
    from deid.backends import backend_for

    return backend_for(engine.dialect.name).validation()


def for_text(sql: str) -> str:
    """Quoted SQL (a name, a literal) made safe for text(): its colons escaped."""
    return sql.replace(":", "\\:")


def static_condition(table_plan: TablePlan) -> str:
    """The rendered keep_rows_where (in the engine's SQL), for text(). Its grammar has no casts and no
    parameters, so every colon in it belongs to a quoted name or a literal."""
    return for_text(str(table_plan.keep_rows_where))


def not_static(table_plan: TablePlan) -> str:
    """A WHERE clause leaving out the static test rows, which keep production's values by design."""
    return f"WHERE ({static_condition(table_plan)}) IS NOT TRUE" if table_plan.keep_rows_where else ""


def foreign_keys(schema: Schema) -> Iterator[tuple[Table, ForeignKey]]:
    """Each foreign key to check: partitions once, on their parent."""
    for table in schema.tables:
        if table.partition_of:
            continue  # checked once, on the partitioned table
        for fk in table.foreign_keys:
            yield table, fk


def for_gx(query: str) -> str:
    """A query for UnexpectedRowsExpectation: braces doubled (GX formats the text with str.format), and the
    {batch} placeholder GX insists on kept in a comment. The batch is a constant query (gx_runner); our
    queries name their own tables, quoted, because several span tables (foreign keys, sequences)."""
    return query.replace("{", "{{").replace("}", "}}") + " /* {batch} */"


__all__ = [
    "dialect_of",
    "for_gx",
    "for_text",
    "foreign_keys",
    "not_static",
    "static_condition",
]
