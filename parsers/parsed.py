"""What a parser hands to the application: trace info plus the model's tables as Arrow sources."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .arrownp import arrow_array, repeated_string
from .prefetch import read_ahead
from .redact import DictionaryCache, duckdb_redacted, redact_array, redact_columns, register_duckdb

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    pa.list_(pa.string()): "VARCHAR[]",
    pa.list_(pa.int32()): "INTEGER[]",
}


class TableSource(Protocol):
    """Rows of one model table: readable as Arrow, writable as Parquet.

    A source may also have `background = True`: the store then writes it on another thread, beside
    the other tables (for a write that leaves a core idle next to the others, e.g. two pyarrow
    writes, each on one thread: Ascend kernel metrics beside their slices).
    """

    schema: pa.Schema

    def reader(self) -> pa.RecordBatchReader:
        """Stream the rows as Arrow record batches of `schema`."""
        ...

    def write_parquet(self, path: Path) -> int:
        """Write the rows to a zstd Parquet file; return the row count."""
        ...


def arrow_cursor(con: duckdb.DuckDBPyConnection, arrow: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    """A new cursor of `con` on which the Arrow tables `arrow` are queryable by name (views
    registered on a connection do not carry over to its cursors)."""
    cursor = con.cursor()
    for name, table in arrow.items():
        cursor.register(name, table)
    return cursor


def table_row_groups(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    """`table` in pieces of `rows` rows, one per Parquet row group of a `RowGroupSource`."""
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


@dataclass
class ArrowSource:
    """A table given as Arrow data (a Table, or a function returning a reader)."""

    schema: pa.Schema
    data: pa.Table | Callable[[], pa.RecordBatchReader]

    def reader(self) -> pa.RecordBatchReader:
        if isinstance(self.data, pa.Table):
            return pa.RecordBatchReader.from_batches(self.schema, _redacted(self.data.cast(self.schema)).to_batches())
        batches = self.data()
        return pa.RecordBatchReader.from_batches(batches.schema, (_redacted(batch) for batch in batches))

    def write_parquet(self, path: Path) -> int:
        rows = 0
        with pq.ParquetWriter(path, self.schema, compression="zstd") as writer:
            for batch in self.reader():
                if batch.num_rows:
                    writer.write_batch(batch.cast(self.schema) if batch.schema != self.schema else batch)
                    rows += batch.num_rows
        return rows


@dataclass
class DuckDBSource:
    """A table given as a DuckDB query; `COPY ... TO` writes it natively and in parallel.

    The query must yield the schema's columns after trace_id and rank, in order; those two
    are added here.
    """

    schema: pa.Schema
    con: duckdb.DuckDBPyConnection
    query: str
    trace_id: str
    rank: int
    # Rows per Parquet row group (DuckDB's default when None). Wide rows write faster in smaller
    # groups: an ordered write short of memory for two groups in flight encodes on one thread.
    row_group_rows: int | None = None
    # False: rows are written in whatever order DuckDB's threads finish them. An ordered write of wide
    # rows waits for each row group in turn (1 M Ascend kernel metrics rows: 2.2-3.2 s instead of 1.6 s).
    keep_order: bool = True
    # Arrow tables the query reads by name (registered on the cursor that runs it: `arrow_cursor`).
    arrow: dict[str, pa.Table] = field(default_factory=dict)
    # Written by the store on a thread beside the other tables (see TableSource).
    background: bool = False

    def _select(self) -> str:
        casts = [f"{_cast(f)} AS {_quote_ident(f.name)}" for f in list(self.schema)[2:]]
        trace_id = self.trace_id.replace("'", "''")
        return (
            f"SELECT '{trace_id}'::VARCHAR AS trace_id, {int(self.rank)}::INTEGER AS rank, {', '.join(casts)}"
            f" FROM ({self.query}) q"
        )

    def __post_init__(self) -> None:
        # Here, on the parser's thread: the store may write two sources of one connection at once.
        register_duckdb(self.con)

    def reader(self) -> pa.RecordBatchReader:
        return arrow_cursor(self.con, self.arrow).sql(self._select()).to_arrow_reader()

    def write_parquet(self, path: Path) -> int:
        target = "'" + str(path).replace("'", "''") + "'"
        options = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"
        if self.row_group_rows:
            options += f", ROW_GROUP_SIZE {int(self.row_group_rows)}"
        if not self.keep_order:
            options += ", PRESERVE_ORDER false"
        cursor = arrow_cursor(self.con, self.arrow)
        copy = f"COPY ({self._select()}) TO {target} ({options})"
        return int(cursor.execute(copy).fetchall()[0][0])


def _cast(column_field: pa.Field) -> str:
    """SQL for a column cast to its schema type; text with secrets redacted (`parsers.redact`)."""
    cast = f"CAST({_quote_ident(column_field.name)} AS {_DUCK_TYPES[column_field.type]})"
    return duckdb_redacted(cast) if column_field.type == pa.string() else cast


def _redacted(data: pa.Table | pa.RecordBatch) -> pa.Table | pa.RecordBatch:
    """`data` with secrets redacted in every text column but `trace_id` (which the store made)."""
    return redact_columns(data, skip=("trace_id",))


@dataclass
class RowGroupSource:
    """A table given as a stream of Arrow tables, one per Parquet row group, holding the schema's
    columns after trace_id and rank (those two are added here, the rest cast to the schema).

    pyarrow's Parquet writer encodes each table as it comes, while the next ones are made on another
    thread. It spends half the CPU of DuckDB's COPY on the same rows: the 3.0 M slices of a 1 GB
    Kineto trace were written in 2.5 s instead of 4.0 s, with 4.2 CPU-s instead of 6.8.
    """

    schema: pa.Schema
    row_groups: Callable[[], Iterator[pa.Table]]
    trace_id: str
    rank: int
    # String columns of mostly distinct values (JSON args): no dictionary, whose building would be
    # wasted, and no min/max statistics, which no query filters on.
    free_text: tuple[str, ...] = ()
    # String columns given as dictionaries are written as they are: the Parquet writer takes over
    # a dictionary shared by the row groups instead of hashing every value again (1 M Ascend
    # kernel metrics rows: 0.68 instead of 0.80 CPU-s). The file then keeps no Arrow schema, so that
    # readers see plain strings, as in the files DuckDB writes.
    dictionaries: bool = False
    # Written by the store on a thread beside the other tables (see TableSource).
    background: bool = False
    # The columns given min/max statistics (None: all but `free_text`).
    statistics: tuple[str, ...] | None = None

    def _complete(self, table: pa.Table, dictionaries: DictionaryCache, keep_dictionaries: bool = False) -> pa.Table:
        rows = table.num_rows
        columns = [repeated_string(self.trace_id, rows), arrow_array(np.full(rows, self.rank, dtype=np.int32))]
        for column_field in list(self.schema)[2:]:
            column = table.column(column_field.name)
            if column.type != column_field.type and not (keep_dictionaries and _is_dictionary_of(column, column_field)):
                column = column.cast(column_field.type)
            columns.append(column)
        columns[2:] = [
            redact_array(column, repetitive=name not in self.free_text, dictionaries=dictionaries)
            for name, column in zip(self.schema.names[2:], columns[2:], strict=True)
        ]
        schema = self.schema
        if keep_dictionaries:  # the schema's fields, with the dictionary types where kept
            fields = [f.with_type(c.type) for f, c in zip(self.schema, columns, strict=True)]
            schema = pa.schema(fields, self.schema.metadata)
        return pa.Table.from_arrays(columns, schema=schema)

    def reader(self) -> pa.RecordBatchReader:
        dictionaries: DictionaryCache = {}
        batches = (batch for table in self.row_groups() for batch in self._complete(table, dictionaries).to_batches())
        return pa.RecordBatchReader.from_batches(self.schema, batches)

    def write_parquet(self, path: Path) -> int:
        options = parquet_options(self.schema, self.free_text, self.statistics)
        if self.dictionaries:
            options["store_schema"] = False
        rows = 0
        writer: pq.ParquetWriter | None = None
        try:
            dictionaries: DictionaryCache = {}
            tables = (self._complete(t, dictionaries, self.dictionaries) for t in self.row_groups() if t.num_rows)
            for table in read_ahead(tables):
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema, **options)
                writer.write_table(table, row_group_size=table.num_rows)
                rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            pq.ParquetWriter(path, self.schema, **options).close()
        return rows


def _is_dictionary_of(column: pa.ChunkedArray | pa.Array, column_field: pa.Field) -> bool:
    return pa.types.is_dictionary(column.type) and column.type.value_type == column_field.type


def parquet_options(
    schema: pa.Schema, free_text: tuple[str, ...] = (), statistics: tuple[str, ...] | None = None
) -> dict:
    """pyarrow `ParquetWriter` options for a table of the store.

    zstd; dictionaries for the strings but `free_text`; integers delta-encoded (ids, times and
    durations mostly grow within a row group: on the 3.0 M slices of a 1 GB trace the file is 37
    instead of 44 MB, written in 1.53 instead of 1.75 s, and DuckDB sums six integer columns of it
    in 0.05 instead of 0.12 s); statistics on the `statistics` columns, else on every column but
    `free_text`.
    """
    strings = [f.name for f in schema if f.type == pa.string() and f.name not in free_text]
    if statistics is None:
        statistics = tuple(f.name for f in schema if f.name not in free_text)
    integers = [f.name for f in schema if pa.types.is_integer(f.type)]
    return {
        "compression": "zstd",
        "compression_level": 1,
        "use_dictionary": strings,
        "column_encoding": dict.fromkeys(integers, "DELTA_BINARY_PACKED") or None,
        "write_statistics": list(statistics),
    }


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table of `schema` with no rows (`schema.empty_table()` imports pandas through pyarrow's shim)."""
    return pa.table([pa.nulls(0, field.type) for field in schema], schema=schema)


def rows_table(schema: pa.Schema, rows: list[dict]) -> pa.Table:
    """A table of `schema` from Python values (dicts keyed by column name), converted by DuckDB.

    pyarrow's conversions of Python values import pandas, about 0.3 s even for one row.
    """
    if not rows:
        return empty_table(schema)
    row = "(" + ", ".join(f"CAST(? AS {_DUCK_TYPES[f.type]})" for f in schema) + ")"
    names = ", ".join(_quote_ident(f.name) for f in schema)
    values = [r.get(field.name) for r in rows for field in schema]
    query = f"SELECT * FROM (VALUES {', '.join([row] * len(rows))}) AS t({names})"
    with _converter().cursor() as cursor:
        return cursor.sql(query, params=values).to_arrow_table().cast(schema)


@functools.cache
def _converter() -> duckdb.DuckDBPyConnection:
    """One in-memory database per process for `rows_table` (opening one takes about 20 ms)."""
    return duckdb.connect()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class ParsedTrace:
    """One parsed trace file (or rank dump).

    `tables` maps a model table name to a TableSource; tables a parser does not produce are
    simply absent. `info` holds the fields of the `traces` row that only the parser knows.
    Call `close()` once the tables have been written.
    """

    info: dict
    tables: dict[str, TableSource]
    warnings: list[str] = field(default_factory=list)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release the parser's resources (database handles, scratch files)."""
        for closer in self._closers:
            closer()
        self._closers.clear()
