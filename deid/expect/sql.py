"""Small SQL helpers shared by the expectation builders.

Every expectation query runs through SQLAlchemy's text(), deid's own and Great Expectations' alike, and
text() reads a colon followed by a word as a bind parameter, in names and literals too: a column named
"Note :draft" or a pattern such as `[:alpha:]` would become a parameter without a value. So the helpers
here escape each colon of what they quote (text() removes the backslash), once, where the text is quoted;
the queries' own parameters (`:deid_digest_key`) and casts (`::text`) are written unquoted. `%` needs
nothing: text() doubles it for drivers that read it as a placeholder.
"""

from __future__ import annotations

from collections.abc import Iterator

from deid.plan import TablePlan
from deid.rules import targets
from deid.schema import ForeignKey, Schema, Table


def _for_text(sql: str) -> str:
    return sql.replace(":", "\\:")


def quote_ident(name: str) -> str:
    """A quoted identifier, for text()."""
    return _for_text(targets.quote_ident(name))


def quote_table(qualified: str) -> str:
    """A quoted schema.table, for text()."""
    return _for_text(targets.quote_table(qualified))


def literal(value: str) -> str:
    """An SQL string literal of text we wrote (patterns, names), never of row data, for text()."""
    return _for_text("'" + value.replace("'", "''") + "'")


regex_literal = literal  # a regular expression's colons (`[:alpha:]`, `2001:db8`) are escaped like any other


def regclass(qualified: str) -> str:
    """The table's oid, from its quoted name as a literal (quoted once: literal() escapes the colons)."""
    return f"{literal(targets.quote_table(qualified))}::regclass"


def static_condition(table_plan: TablePlan) -> str:
    """The rendered keep_rows_where, for text(). Its grammar has no casts and no parameters, so every colon
    in it belongs to a quoted name or a literal."""
    return _for_text(str(table_plan.keep_rows_where))


def not_static(table_plan: TablePlan) -> str:
    """A WHERE clause leaving out the static test rows, which keep production's values by design."""
    return f"WHERE ({static_condition(table_plan)}) IS NOT TRUE" if table_plan.keep_rows_where else ""


def foreign_keys(schema: Schema) -> Iterator[tuple[Table, ForeignKey, str]]:
    """Each foreign key to check (partitions once, on their parent) with the FROM ... WHERE clause that
    selects its orphans: rows whose key is complete but references no row."""
    for table in schema.tables:
        if table.partition_of:
            continue  # checked once, on the partitioned table
        for fk in table.foreign_keys:
            cols = [quote_ident(c) for c in fk.columns]
            join = " AND ".join(
                f"r.{quote_ident(rc)} = c.{col}" for rc, col in zip(fk.ref_columns, cols, strict=True)
            )
            present = " AND ".join(f"c.{col} IS NOT NULL" for col in cols)
            yield (
                table,
                fk,
                (
                    f"FROM {quote_table(table.qualified)} c WHERE {present} "
                    f"AND NOT EXISTS (SELECT 1 FROM {quote_table(fk.ref_table)} r WHERE {join})"
                ),
            )


def for_gx(query: str) -> str:
    """A query for UnexpectedRowsExpectation: braces doubled (GX formats the text with str.format), and the
    {batch} placeholder GX insists on kept in a comment. The batch is a constant query (gx_runner); our
    queries name their own tables, quoted, because several span tables (foreign keys, sequences)."""
    return query.replace("{", "{{").replace("}", "}}") + " /* {batch} */"


__all__ = [
    "foreign_keys",
    "for_gx",
    "literal",
    "not_static",
    "quote_ident",
    "quote_table",
    "regclass",
    "regex_literal",
    "static_condition",
]
