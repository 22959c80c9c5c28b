"""The scrub of one MySQL/MariaDB table: rows out as text, vector forms over Arrow batches, new values back
into a staging table, applied by one UPDATE joined on the table's key.

1. A reader session streams `SELECT <one CSV line per row> FROM t WHERE <not static>` through an unbuffered
   cursor (PyMySQL's SSCursor: memory stays a few batches whatever the table's size). The server builds the
   line: the key columns as text it reads back as the same key (textforms.key_sql), then each column the
   vector forms read as PostgreSQL's `::text` would give it (textforms.read_sql), each quoted CSV style, NULL
   as an empty unquoted field. One string per row reaches Python; lines are joined per batch and read by
   pyarrow's CSV reader into string columns: no Python call per value.
2. deid.vector.apply.transform gives each rewritten column's new values for the batch (as text).
3. The keys and the new values go into a temporary staging table of the scrubbing session by multi-row
   INSERTs whose literals are built by Arrow compute (escaped and joined per batch, one statement each).
4. `UPDATE t JOIN staging USING (key) SET c = <c's new text, as c's type>, ...`: one statement, in the
   transaction that also notes the table in the ledger. Columns with ON UPDATE CURRENT_TIMESTAMP are set
   to themselves, so production's value stays.

Rows kept as static test data are never read, so never written. The salt stays in this process.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from operator import itemgetter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pymysql.cursors
import sqlalchemy as sa

from deid.backends.mysql import textforms
from deid.backends.mysql.quoting import quote_identifier
from deid.errors import TerminalError
from deid.plan import TablePlan
from deid.schema import Column, Kind, Table
from deid.vector.apply import StreamedColumn, read_columns, streamed_columns, transform, unvectorized
from deid.vector.prf import Key
from deid.vector.tally import Tally

STAGING = "_deid_stream"  # a temporary table of the scrubbing session
# CSV bytes per batch (a few thousand rows of a typical table): the INSERT of a batch's outputs stays far
# below max_allowed_packet (16 MB on MariaDB, 64 MB on MySQL 8)
BATCH_BYTES = 1 << 20
FETCH_ROWS = 1000  # rows per fetch of the unbuffered cursor
_KEY = "_deid_k{}"
_VALUE = "_deid_v{}"


@dataclass(frozen=True)
class Streamed:
    """How the stream rewrites a table: its key, the columns transformed and the static rows' condition."""

    table: Table
    key: tuple[Column, ...]
    columns: list[StreamedColumn]
    keep_rows_where: str | None  # MySQL's SQL of it (scrub.condition_sql)

    @property
    def sql(self) -> str:
        return quote_identifier(self.table.name)


def rewritten_columns(table: Table, table_plan: TablePlan) -> list[StreamedColumn]:
    """The table's rewritten columns, each with its vector form; TerminalError naming table.column when one
    has none (there are no SQL forms on this engine)."""
    held = unvectorized(table, table_plan.actions)
    if held:
        named = ", ".join(f"{table_plan.table}.{c}" for c in held)
        raise TerminalError(
            f"{named}: the transformer has no vector form, and the MySQL/MariaDB scrub has no SQL forms to "
            "fall back on; choose a transformer with a vector form (deid transformers) for it"
        )
    # the vector forms read PostgreSQL's spelling of each type (real or double precision, numeric(p,s))
    spelled = replace(
        table, columns=tuple(replace(c, data_type=textforms.vector_type(c)) for c in table.columns)
    )
    return streamed_columns(spelled, table_plan.actions)


def usable_key(table: Table) -> tuple[Column, ...] | None:
    """The key the UPDATE finds rows by (row_key), unless a column of it has no text the server reads back
    as the same value (BIT, geometries): None when there is none (the table is rebuilt instead)."""
    key = row_key(table)
    if key is None or any(textforms.key_refused(c) for c in key):
        return None
    return key


def row_key(table: Table) -> tuple[Column, ...] | None:
    """The columns that find a row: the primary key, else the first unique key whose columns are NOT NULL."""
    for names in (table.primary_key, *(k.columns for k in table.unique_keys), *table.unique):
        columns = [table.column(n) for n in names]
        if names and all(c is not None and (not c.nullable or names == table.primary_key) for c in columns):
            return tuple(c for c in columns if c is not None)
    return None


def stream_into_staging(
    writer: sa.Connection, reader: sa.Connection, stream: Streamed, key: Key, tally: Tally
) -> int:
    """Every row to scrub from `reader`, through the vector forms, into the staging table of `writer` (its
    key and its new values); returns the rows staged, counted in `tally`."""
    columns = stream.columns
    names = read_columns(columns)
    keys = [_KEY.format(i) for i in range(len(stream.key))]
    values = [_VALUE.format(i) for i in range(len(columns))]
    _create_staging(writer, stream, keys, values)
    fields = [textforms.key_sql(c) for c in stream.key]
    fields += [textforms.read_sql(stream.table.column(n)) for n in names]  # type: ignore[arg-type]
    where = f" WHERE ({stream.keep_rows_where}) IS NOT TRUE" if stream.keep_rows_where else ""
    select = f"SELECT CONCAT_WS(',', {', '.join(csv_field(f) for f in fields)}) FROM {stream.sql}{where}"
    insert = f"INSERT INTO {STAGING} ({', '.join([*keys, *values])}) VALUES "
    hexed = [c.kind is Kind.BYTEA for c in stream.key]
    rows = 0
    for batch in batches(reader, select, [*keys, *names]):
        new = transform(batch, columns, key)
        for c, out in zip(columns, new, strict=True):
            tally.add(c.name, batch.column(c.name), out)
        quoted = [literals(batch.column(k), h) for k, h in zip(keys, hexed, strict=True)]
        quoted += [literals(out) for out in new]
        execute(writer, insert + rows_sql(quoted))
        rows += batch.num_rows
    pa.default_memory_pool().release_unused()
    return rows


def apply_staging(writer: sa.Connection, stream: Streamed) -> None:
    """The UPDATE that writes the staged values into the table, ON UPDATE columns kept as they are."""
    on = " AND ".join(f"t.{quote_identifier(c.name)} = s.{_KEY.format(i)}" for i, c in enumerate(stream.key))
    sets = [
        f"t.{quote_identifier(c.name)} = "
        + textforms.write_sql(stream.table.column(c.name), f"s.{_VALUE.format(i)}")  # type: ignore[arg-type]
        for i, c in enumerate(stream.columns)
    ]
    rewritten = {c.name for c in stream.columns}
    sets += [
        f"t.{quote_identifier(c.name)} = t.{quote_identifier(c.name)}"
        for c in stream.table.columns
        if c.on_update and c.name not in rewritten
    ]
    execute(writer, f"UPDATE {stream.sql} AS t JOIN {STAGING} AS s ON {on} SET {', '.join(sets)}")


def drop_staging(writer: sa.Connection) -> None:
    execute(writer, f"DROP TEMPORARY TABLE IF EXISTS {STAGING}")


def _create_staging(writer: sa.Connection, stream: Streamed, keys: list[str], values: list[str]) -> None:
    """The staging table: the key columns with the table's own types (so the join compares like with like
    and uses the table's primary key), the new values as text."""
    drop_staging(writer)
    listed = ", ".join(f"{quote_identifier(c.name)} AS {k}" for c, k in zip(stream.key, keys, strict=True))
    texts = ", ".join(f"{v} longtext CHARACTER SET utf8mb4 NULL" for v in values)
    execute(
        writer,
        f"CREATE TEMPORARY TABLE {STAGING} (PRIMARY KEY ({', '.join(keys)}), {texts}) ENGINE = InnoDB "
        f"AS SELECT {listed} FROM {stream.sql} LIMIT 0",
    )


def csv_field(sql: str) -> str:
    """A CSV field of the value of `sql`: quoted, quotes doubled; NULL as an empty unquoted field."""
    return f"IFNULL(CONCAT('\"', REPLACE(CONVERT({sql} USING utf8mb4), '\"', '\"\"'), '\"'), '')"


def literals(values: pa.Array, hexed: bool = False) -> pa.Array:
    """Each value as an SQL string literal (backslash escapes, as the session's sql_mode reads them), NULL
    as NULL; a key of a binary column from its hex text."""
    text = pc.cast(values, pa.string())
    if hexed:
        quoted = pc.binary_join_element_wise("UNHEX('", text, "')", "")
    else:
        for bad, escaped in (("\\", "\\\\"), ("'", "\\'"), ("\0", "\\0")):
            text = pc.replace_substring(text, bad, escaped)
        quoted = pc.binary_join_element_wise("'", text, "'", "")
    return pc.fill_null(quoted, "NULL")


def rows_sql(quoted: list[pa.Array]) -> str:
    """`(a, b), (c, d), ...` of the columns' literals, joined by Arrow."""
    rows = pc.binary_join_element_wise("(", pc.binary_join_element_wise(*quoted, ", "), ")", "")
    listed = pa.ListArray.from_arrays(pa.array([0, len(rows)], pa.int32()), rows)
    return pc.binary_join(listed, ", ")[0].as_py()


def execute(connection: sa.Connection, sql: str) -> None:
    """A statement through the driver's own cursor, without parameters (a value's % is no placeholder)."""
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(sql)


@contextmanager
def _arrow_errors_retold() -> Iterator[None]:
    """Arrow's errors quote the rows they choke on: retold by their kind alone."""
    try:
        yield
    except pa.ArrowException as exc:
        raise TerminalError(
            f"the scrub's stream failed reading or writing rows ({type(exc).__name__}; the message is not "
            "shown, as it quotes row values)"
        ) from None


def batches(reader: sa.Connection, select: str, names: list[str]) -> Iterator[pa.RecordBatch]:
    """The rows of `select` (one CSV line each) as record batches of string columns named `names`."""
    cursor = reader.connection.dbapi_connection.cursor(pymysql.cursors.SSCursor)
    try:
        cursor.execute(select)
        pending: list[str] = []
        size = 0
        while True:
            rows = cursor.fetchmany(FETCH_ROWS)
            if rows:
                chunk = "\n".join(map(itemgetter(0), rows))
                pending.append(chunk)
                size += len(chunk)
            if pending and (size >= BATCH_BYTES or not rows):
                with _arrow_errors_retold():
                    yield _parsed("\n".join(pending).encode(), names)
                pending, size = [], 0
            if not rows:
                return
    finally:
        cursor.close()  # an unbuffered cursor closed early reads the rest of its rows first


def _parsed(data: bytes, names: list[str]) -> pa.RecordBatch:
    table = pcsv.read_csv(
        io.BytesIO(data),
        read_options=pcsv.ReadOptions(column_names=names, block_size=len(data) + 1, use_threads=False),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )
    return table.combine_chunks().to_batches()[0]
