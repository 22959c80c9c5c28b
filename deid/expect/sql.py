"""Small SQL helpers shared by the expectation builders."""

from __future__ import annotations

from collections.abc import Iterator

from deid.plan import TablePlan
from deid.rules.targets import quote_ident, quote_table
from deid.schema import ForeignKey, Schema, Table


def literal(value: str) -> str:
    """An SQL string literal of text we wrote (patterns, names), never of row data."""
    return "'" + value.replace("'", "''") + "'"


def regex_literal(pattern: str) -> str:
    """A regular expression as a literal, for text(): a colon followed by a name (`[:alpha:]`, `2001:db8`)
    would be read as a bind parameter, so each colon is escaped; text() removes the backslash."""
    return literal(pattern.replace(":", "\\:"))


def not_static(table_plan: TablePlan) -> str:
    """A WHERE clause leaving out the static test rows, which keep production's values by design."""
    return f"WHERE ({table_plan.keep_rows_where}) IS NOT TRUE" if table_plan.keep_rows_where else ""


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


__all__ = ["foreign_keys", "for_gx", "literal", "not_static", "quote_ident", "quote_table", "regex_literal"]
