"""PostgreSQL's leak-check queries (deid.expect.leaks says what is compared and what passes): a sample of
the copy's rows spread over the table (TABLESAMPLE), production's counts for the same keys (the sample
bound as arrays and unnested), and the sampled digests looked up in production's whole column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from deid.backends.postgresql.validation.names import keyed, quote_ident, quote_table
from deid.expect.digests import KEY_PARAM
from deid.expect.leaks import Compared
from deid.expect.sql import not_static
from deid.plan import TablePlan
from deid.schema import Column, Kind, Table


def _sample_sql(table: Table, table_plan: TablePlan, compared: Sequence[Compared], size: int) -> str:
    keys = [f"({quote_ident(k)})::text" for k in table.primary_key]
    values = [
        f"({quote_ident(c.action.column)})::text" if c.relative else keyed(quote_ident(c.action.column))
        for c in compared
    ]
    sample = ""
    if table.row_estimate > 10 * size:
        # whole random blocks, spread over the table, instead of the first rows by key (often the oldest)
        percent = min(100.0, 300.0 * size / table.row_estimate)
        sample = f" TABLESAMPLE SYSTEM ({percent:.6f}) REPEATABLE (0)"
    return (
        f"SELECT {', '.join(keys + values)} FROM {quote_table(table.qualified)}{sample} "
        f"{not_static(table_plan)} LIMIT {size}"
    )


def leak_sample(
    work: sa.Connection,
    table: Table,
    table_plan: TablePlan,
    compared: Sequence[Compared],
    size: int,
    key: bytes,
) -> list[tuple]:
    return [
        tuple(r)
        for r in work.execute(sa.text(_sample_sql(table, table_plan, compared, size)), {KEY_PARAM: key})
    ]


def leak_counts(
    production: sa.Connection, table: Table, compared: Sequence[Compared], rows: list[tuple], key: bytes
) -> tuple[int, ...]:
    width = len(table.primary_key)
    params: dict[str, object] = {KEY_PARAM: key}
    unnest, names = [], []
    for i, name in enumerate(table.primary_key):
        column = table.column(name)
        assert column is not None
        params[f"k{i}"] = [r[i] for r in rows]
        unnest.append(f"CAST(:k{i} AS {column.data_type}[])")
        names.append(f"k{i}")
    for j, c in enumerate(compared):
        params[f"v{j}"] = [r[width + j] for r in rows]
        unnest.append(f"CAST(:v{j} AS {'text' if c.relative else 'bytea'}[])")
        names.append(f"v{j}")
    join = " AND ".join(f"t.{quote_ident(k)} = s.k{i}" for i, k in enumerate(table.primary_key))
    counts = ["count(*)"]
    for j, c in enumerate(compared):
        value = f"t.{quote_ident(c.action.column)}"
        counts.append(f"count({value})")
        counts.append(_broken(c, value, f"s.v{j}"))
    query = (
        f"SELECT {', '.join(counts)} FROM unnest({', '.join(unnest)}) AS s({', '.join(names)}) "
        f"JOIN {quote_table(table.qualified)} AS t ON {join}"
    )
    return tuple(production.execute(sa.text(query), params).one())


def _broken(c: Compared, value: str, sampled: str) -> str:
    """count(...) of sampled rows where the scrubbed value breaks the promise relative to production's."""
    if not c.relative:
        return f"count(*) FILTER (WHERE {keyed(value)} = {sampled})"
    window = c.window
    scrubbed = f"CAST({sampled} AS {c.column.data_type})"
    presence = f"(({value}) IS NULL) <> ({sampled} IS NULL)"
    if window.days is not None:
        days = (
            f"({scrubbed} - {value})"
            if c.column.kind is Kind.DATE
            else f"(extract(epoch FROM {scrubbed} - {value}) / 86400)"
        )
        inside = f"abs({days}) BETWEEN 1 AND {window.days} AND {days} = trunc({days})"
    else:  # |scrubbed - value| <= factor * |value| + slack
        inside = (
            f"abs(({scrubbed})::numeric - ({value})::numeric) "
            f"<= {window.factor!r} * abs(({value})::numeric) + {window.slack!r}"
        )
    return f"count(*) FILTER (WHERE {presence} OR ({value} IS NOT NULL AND NOT ({inside})))"


def found_in_production(
    production: sa.Connection,
    table: Table,
    table_plan: TablePlan,
    columns: Mapping[int, Column],
    pairs: Sequence[tuple[int, bytes]],
    key: bytes,
) -> dict[int, int]:
    values = ", ".join(f"({j}, {keyed('t.' + quote_ident(c.name))})" for j, c in columns.items())
    query = (
        f"SELECT v._deid_col, count(DISTINCT v._deid_d) FROM {quote_table(table.qualified)} AS t "
        f"CROSS JOIN LATERAL (VALUES {values}) AS v(_deid_col, _deid_d) "
        f"JOIN unnest(CAST(:cols AS int[]), CAST(:digests AS bytea[])) AS s(_deid_col, _deid_d) "
        f"ON s._deid_col = v._deid_col AND s._deid_d = v._deid_d {not_static(table_plan)} "
        "GROUP BY v._deid_col"
    )
    params = {KEY_PARAM: key, "cols": [p[0] for p in pairs], "digests": [p[1] for p in pairs]}
    return dict(production.execute(sa.text(query), params).all())
