"""The streamed scrub of one table on PostgreSQL: rows out as CSV, vector forms over Arrow batches, new
values back in, applied in one UPDATE.

The keyed transforms cost about 1 µs a value as SQL (the PRF inside the expression evaluator) and a tenth of
that over Arrow buffers, so the database only moves rows:

1. a reader session (on the scrubbing transaction's exported snapshot, so it reads exactly what that
   transaction sees) runs `COPY (SELECT tableoid, ctid, <columns read> FROM t WHERE <not static>) TO STDOUT`;
   pyarrow's streaming CSV reader turns it into batches of text columns (memory: a few batches, whatever the
   table's size);
2. each batch goes through deid.vector.apply (no Python call per value), and is written as CSV to
   `COPY pg_temp.<staging> FROM STDIN` in the scrubbing session: the server casts the text to the
   columns' types there, so a value the type refuses fails the scrub, naming the column;
3. one `UPDATE t SET c = s.c ... FROM staging s WHERE t.tableoid = s.rel AND t.ctid = s.src`, with the
   indexes set aside and the triggers as the plan says, exactly as the SQL-form rewrite.

Rows kept as static test data are never read, so they are never written. The salt stays in this process:
the database never sees the key.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import sqlalchemy as sa

from deid import rawsql
from deid.backends.postgresql.forms.support import dbapi_connection
from deid.backends.postgresql.quoting import quote_ident, quote_table
from deid.backends.postgresql.textforms import set_statements
from deid.errors import TerminalError
from deid.plan import TablePlan
from deid.schema import Table
from deid.vector.apply import StreamedColumn, read_columns, transform
from deid.vector.prf import Key
from deid.vector.tally import Tally

STAGING = "_deid_stream"  # a temporary table of the scrubbing session
# the vector forms release the GIL (numba nogil, Arrow compute), so batches transform in parallel while this
# thread reads the next one and sends the last (sent from here: a psycopg writer thread would queue batches
# without bound when the server is slower than the transforms)
TRANSFORM_THREADS = 2
# CSV bytes per batch (about 5,000 rows of users). The process holds several batches' worth of Arrow arrays,
# keyed matrices and CSV (about 35 MB at its peak per MB of batch): at 1M users 1 MB peaked at 364-405 MB
# RSS against 479 for 2 MB and 552 for 4 MB, and streamed as fast (5.8-7.1 s against 5.5-6.7, alternating)
BATCH_BYTES = 1 << 20
_REL, _SRC = "_deid_rel", "_deid_src"
_KEEP = "_deid_static"  # the row condition's value, when the table has one


@dataclass(frozen=True)
class Streamed:
    """How the stream rewrites a table: columns transformed in deid's process, and columns without a vector
    form (json, arrays) computed by their SQL forms in the query that streams the rows out."""

    table: Table
    columns: list[StreamedColumn]
    sql_side: dict[str, str]


def stream_into_staging(
    scrubbing: sa.Connection,
    reader: sa.Connection,
    table_plan: TablePlan,
    streamed: Streamed,
    key: Key,
    tally: Tally,
) -> int:
    """Stream the rows to scrub from `reader` through the vector forms into a staging table of `scrubbing`
    (where they are, and their new values; `sql_side`'s columns computed by their SQL forms in the query);
    returns the rows staged, counted in `tally` (new_tally). Static rows are not read."""
    columns, sql_side = streamed.columns, streamed.sql_side
    names = read_columns(columns)
    types = {a.column: a.data_type for a in table_plan.actions}
    written = [*(c.name for c in columns), *sql_side]
    staged = ", ".join(f"{quote_ident(n)} {types[n]}" for n in written)
    rawsql.execute(scrubbing, f"DROP TABLE IF EXISTS pg_temp.{STAGING}")
    rawsql.execute(
        scrubbing, f"CREATE TEMP TABLE {STAGING} ({_REL} oid, {_SRC} tid, {staged}) ON COMMIT DROP"
    )
    where = f" WHERE ({table_plan.keep_rows_where}) IS NOT TRUE" if table_plan.keep_rows_where else ""
    computed = _computed(sql_side)
    listed = ", ".join([*(_as_text(n) for n in names), *(f"{sql} AS {a}" for a, sql in computed.values())])
    select = f"SELECT tableoid, ctid, {listed} FROM {quote_table(table_plan.table)}{where}"
    read = [_REL, _SRC, *names, *(a for a, _ in computed.values())]

    def outputs(batch: pa.RecordBatch) -> list[pa.Array]:
        new = transform(batch, columns, key)
        for c, values in zip(columns, new, strict=True):
            tally.add(c.name, batch.column(c.name), values)
        engine = [batch.column(a) for a, _ in computed.values()]
        return [batch.column(_REL), batch.column(_SRC), *new, *engine]

    into = f"pg_temp.{STAGING} ({', '.join([_REL, _SRC, *(quote_ident(n) for n in written)])})"
    return _stream(scrubbing, reader, select, read, into, outputs)


def stream_into_table(
    scrubbing: sa.Connection,
    reader: sa.Connection,
    table_plan: TablePlan,
    streamed: Streamed,
    key: Key,
    into_sql: str,
    tally: Tally,
    blocks: tuple[int, int | None] | None = None,
) -> int:
    """Stream every row of the table from `reader` into the table `into_sql` of `scrubbing`, with the
    streamed columns' new values; static rows pass through unchanged. Returns the rows written, counted in
    `tally` (new_tally). `blocks`: only the rows stored in blocks [first, end) (one part of a split table,
    written into a table an earlier transaction made); else every row, into a table new in this one."""
    columns = streamed.columns
    names = [c.name for c in streamed.table.columns if not c.generated]  # generated ones are computed again
    condition = table_plan.keep_rows_where
    keep = f", ({condition}) IS TRUE" if condition else ""
    keyed = set(read_columns(columns))
    computed = _computed(streamed.sql_side)

    def selected(name: str) -> str:
        if name in computed:  # its SQL form, static rows as they are
            sql = computed[name][1]
            if condition:
                sql = f"CASE WHEN ({condition}) IS TRUE THEN {quote_ident(name)} ELSE {sql} END"
            return f"{sql} AS {quote_ident(name)}"
        return _as_text(name) if name in keyed else quote_ident(name)

    listed = ", ".join(selected(n) for n in names)
    select = f"SELECT {listed}{keep} FROM {quote_table(table_plan.table)}"
    if blocks is not None:
        first, end = blocks
        select += f" WHERE ctid >= '({first},0)'::tid" + (f" AND ctid < '({end},0)'::tid" if end else "")
    read = [*names, _KEEP] if keep else names
    position = {c.name: i for i, c in enumerate(columns)}

    def outputs(batch: pa.RecordBatch) -> list[pa.Array]:
        new = transform(batch, columns, key)
        static = pc.equal(batch.column(_KEEP), "t") if keep else None
        for c, values in zip(columns, new, strict=True):
            tally.add(c.name, batch.column(c.name), values, static)
        out = []
        for name in names:
            if name not in position:
                out.append(batch.column(name))
            elif static is None:
                out.append(new[position[name]])
            else:  # fill_null: a NULL condition is never a static row
                out.append(pc.if_else(pc.fill_null(static, False), batch.column(name), new[position[name]]))
        return out

    into = f"{into_sql} ({', '.join(quote_ident(n) for n in names)})"
    # FREEZE (when the table is new in this transaction): rows written frozen and all-visible, so the first
    # readers of the published copy do not rewrite every page for hint bits, nor a vacuum later to freeze them
    return _stream(scrubbing, reader, select, read, into, outputs, freeze=blocks is None)


def _computed(sql_side: dict[str, str]) -> dict[str, tuple[str, str]]:
    """column -> (an alias of its own, its SQL form), for the columns the streaming query computes."""
    return {name: (f"_deid_sql_{i}", sql) for i, (name, sql) in enumerate(sql_side.items())}


def _as_text(name: str) -> str:
    """A column the vector forms read, as `::text` gives it: the text the SQL forms key on. It is the column's
    output text except where a cast drops something the value does not hold (char(n)'s padding; inet's
    /32, which `::text` shows and output omits), and it reads back into the column as the same value."""
    return f"{quote_ident(name)}::text AS {quote_ident(name)}"


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


@_arrow_errors_retold()
def _stream(
    scrubbing: sa.Connection,
    reader: sa.Connection,
    select: str,
    read: list[str],
    into: str,
    outputs: Callable[[pa.RecordBatch], list[pa.Array]],
    freeze: bool = False,
) -> int:
    """COPY (select) out of `reader`, each batch (columns named `read`) through `outputs`, COPY into `into`
    on `scrubbing`; returns the rows moved."""
    for statement in set_statements():
        rawsql.execute(scrubbing, statement)
        rawsql.execute(reader, statement)
    rows = 0
    with _copy_out(reader, f"COPY ({select}) TO STDOUT (FORMAT csv)") as source:
        if not source.peek(1):  # no row (an empty table, or a part's empty block range): Arrow refuses it
            return 0
        batches = pcsv.open_csv(source, **_csv_options(read))
        copy_in = f"COPY {into} FROM STDIN (FORMAT csv{', FREEZE' if freeze else ''})"
        with (
            dbapi_connection(scrubbing).cursor() as cursor,
            cursor.copy(copy_in) as sink,
            ThreadPoolExecutor(max_workers=TRANSFORM_THREADS) as pool,
        ):
            # batches in order (the new table keeps the old one's row order); at most a few in flight, so
            # memory stays a few batches whatever the table's size
            in_flight: deque = deque()
            for batch in batches:
                in_flight.append(pool.submit(_encoded, outputs, batch))
                rows += batch.num_rows
                if len(in_flight) > TRANSFORM_THREADS:
                    sink.write(in_flight.popleft().result())
            while in_flight:
                sink.write(in_flight.popleft().result())
    # the batches' memory back to the system: Arrow's allocator keeps freed pages for reuse, and what the
    # process does next (the next table, validation's imports) would come on top of them
    pa.default_memory_pool().release_unused()
    return rows


def _encoded(outputs: Callable[[pa.RecordBatch], list[pa.Array]], batch: pa.RecordBatch) -> memoryview:
    """A batch's output columns as CSV, as COPY FROM reads it."""
    out = outputs(batch)
    buffer = io.BytesIO()
    table = pa.Table.from_arrays(out, names=[f"c{i}" for i in range(len(out))])
    pcsv.write_csv(table, buffer, pcsv.WriteOptions(include_header=False))
    return buffer.getbuffer()


def apply_staging(scrubbing: sa.Connection, table_plan: TablePlan, names: list[str]) -> int:
    """The UPDATE that writes the staged values of columns `names` into the table; returns the rows."""
    rawsql.execute(scrubbing, f"ANALYZE pg_temp.{STAGING}")  # so the planner joins by hash, not by guess
    sets = ", ".join(f"{quote_ident(n)} = s.{quote_ident(n)}" for n in names)
    table = quote_table(table_plan.table)
    return rawsql.execute(
        scrubbing,
        f"UPDATE {table} AS t SET {sets} FROM pg_temp.{STAGING} AS s "
        f"WHERE t.tableoid = s.{_REL} AND t.ctid = s.{_SRC}",
    ).rowcount


def _csv_options(names: list[str]) -> dict:
    """Every column as text; an unquoted empty field is NULL and a quoted one the empty string, as COPY's
    CSV writes them; values may hold newlines."""
    return {
        "read_options": pcsv.ReadOptions(column_names=names, block_size=BATCH_BYTES, use_threads=False),
        "parse_options": pcsv.ParseOptions(newlines_in_values=True),
        "convert_options": pcsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    }


class _CopyReader(io.RawIOBase):
    """A COPY TO STDOUT as a readable file, for pyarrow's streaming CSV reader."""

    def __init__(self, chunks: Iterator[memoryview]):
        self._chunks, self._pending = chunks, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


@contextmanager
def _copy_out(reader: sa.Connection, statement: str) -> Iterator[io.BufferedReader]:
    with dbapi_connection(reader).cursor() as cursor, cursor.copy(statement) as copy:
        yield io.BufferedReader(_CopyReader(iter(copy)), buffer_size=1 << 20)
