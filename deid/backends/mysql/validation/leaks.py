"""MySQL's and MariaDB's leak-check queries (deid.expect.leaks says what is compared and what passes).

These servers bind no arrays: the sampled keys and digests reach production as a derived table of bound
values (`SELECT :k0_0 AS k0, ... UNION ALL SELECT ...`, which the server joins to the table by its primary
key), and the digests looked up in production's column as an IN list of bound values (the server sorts
the list and searches it). Production's session stays read-only: no temporary table, no privilege beyond
SELECT. A large table's sample is spread over it by a seeded RAND() (no TABLESAMPLE here): the same rows
every run, read until `size` are found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from deid.backends.mysql.validation.names import digest, key_params, keyed, quote_ident, quote_table
from deid.expect.leaks import Compared
from deid.expect.sql import not_static
from deid.plan import TablePlan
from deid.schema import Column, Kind, Table


def _binary(column: Column) -> bool:
    return column.kind is Kind.BYTEA


def leak_sample(
    work: sa.Connection,
    table: Table,
    table_plan: TablePlan,
    compared: Sequence[Compared],
    size: int,
    key: bytes,
) -> list[tuple]:
    keys = [quote_ident(k) for k in table.primary_key]
    values = [
        quote_ident(c.column.name) if c.relative else keyed(quote_ident(c.column.name), _binary(c.column))
        for c in compared
    ]
    where = not_static(table_plan)
    if table.row_estimate > 10 * size:
        # rows spread over the table instead of its first ones (often the oldest); seeded, so repeatable
        fraction = min(1.0, 3.0 * size / table.row_estimate)
        where = f"{where} AND RAND(0) < {fraction:.6f}" if where else f"WHERE RAND(0) < {fraction:.6f}"
    query = f"SELECT {', '.join(keys + values)} FROM {quote_table(table.qualified)} {where} LIMIT {size}"
    width = len(keys)
    return [
        (*r[:width], *(v if c.relative else digest(v) for c, v in zip(compared, r[width:], strict=True)))
        for r in work.execute(sa.text(query), key_params(key))
    ]


def _sampled(table: Table, compared: Sequence[Compared], rows: list[tuple]) -> tuple[str, dict[str, object]]:
    """The sample as a derived table of bound values: columns k<i> (key), v<j> (digest or value)."""
    width = len(table.primary_key)
    names = [f"k{i}" for i in range(width)] + [f"v{j}" for j in range(len(compared))]
    params: dict[str, object] = {}
    selects = []
    for r, row in enumerate(rows):
        cells = []
        for n, (name, value) in enumerate(zip(names, row, strict=True)):
            if n >= width and isinstance(value, bytes) and not compared[n - width].relative:
                value = value.hex()  # a digest, bound as the hex the server computes
            params[f"{name}_{r}"] = value
            cells.append(f":{name}_{r}" + (f" AS {name}" if r == 0 else ""))
        selects.append("SELECT " + ", ".join(cells))
    return " UNION ALL ".join(selects), params


def leak_counts(
    production: sa.Connection, table: Table, compared: Sequence[Compared], rows: list[tuple], key: bytes
) -> tuple[int, ...]:
    sampled, params = _sampled(table, compared, rows)
    params |= key_params(key)
    join = " AND ".join(f"t.{quote_ident(k)} = s.k{i}" for i, k in enumerate(table.primary_key))
    counts = ["COUNT(*)"]
    for j, c in enumerate(compared):
        value = f"t.{quote_ident(c.column.name)}"
        counts.append(f"COUNT({value})")
        counts.append(f"COALESCE(SUM(CASE WHEN {_broken(c, value, f's.v{j}')} THEN 1 ELSE 0 END), 0)")
    query = (
        f"SELECT {', '.join(counts)} FROM ({sampled}) AS s JOIN {quote_table(table.qualified)} AS t ON {join}"
    )
    return tuple(int(v) for v in production.execute(sa.text(query), params).one())


def _broken(c: Compared, value: str, sampled: str) -> str:
    """True for a sampled row whose scrubbed value breaks the promise relative to production's."""
    if not c.relative:
        return f"{keyed(value, _binary(c.column))} = {sampled}"
    window = c.window
    presence = f"(({value}) IS NULL) <> ({sampled} IS NULL)"
    if window.days is not None:
        if c.column.kind is Kind.DATE:
            days = f"DATEDIFF(CAST({sampled} AS DATE), {value})"
        else:
            days = f"(TIMESTAMPDIFF(MICROSECOND, {value}, CAST({sampled} AS DATETIME(6))) / 86400000000)"
        inside = f"ABS({days}) BETWEEN 1 AND {window.days} AND {days} = TRUNCATE({days}, 0)"
    else:  # |scrubbed - value| <= factor * |value| + slack
        exact = "DOUBLE" if c.column.kind is Kind.FLOAT else "DECIMAL(65, 30)"
        scrubbed, held = f"CAST({sampled} AS {exact})", f"CAST({value} AS {exact})"
        inside = f"ABS({scrubbed} - {held}) <= {window.factor!r} * ABS({held}) + {window.slack!r}"
    return f"({presence} OR ({value} IS NOT NULL AND NOT ({inside})))"


def found_in_production(
    production: sa.Connection,
    table: Table,
    table_plan: TablePlan,
    columns: Mapping[int, Column],
    pairs: Sequence[tuple[int, bytes]],
    key: bytes,
) -> dict[int, int]:
    params = key_params(key)
    digests, counts, binds = [], [], []
    for j, column in columns.items():
        mine = [d.hex() for i, d in pairs if i == j]
        if not mine:
            continue
        params[f"d{j}"] = mine
        binds.append(sa.bindparam(f"d{j}", expanding=True))
        digests.append(f"{keyed(quote_ident(column.name), _binary(column))} AS d{j}")
        counts.append(f"COUNT(DISTINCT CASE WHEN x.d{j} IN :d{j} THEN x.d{j} END) AS n{j}")
    if not digests:
        return {}
    query = (
        f"SELECT {', '.join(counts)} FROM (SELECT {', '.join(digests)} "
        f"FROM {quote_table(table.qualified)} {not_static(table_plan)}) AS x"
    )
    found = production.execute(sa.text(query).bindparams(*binds), params).one()
    present = [j for j in columns if f"d{j}" in params]
    return {j: int(n) for j, n in zip(present, found, strict=True)}
