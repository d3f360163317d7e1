"""Columns of the same rows from several Arrow sources, zipped into one stream of batches.

The sources cut their rows into batches of different sizes (a DuckDB query result streams in
chunks of its own choosing; a table in memory is one block). Each source carries the same key
column, in the same order; every output batch is checked to line up on it, so a source that
skipped or reordered a row is an error, never a silently shifted column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa

from .arrownp import POOL


class _Rows:
    """The rows of one source, taken `n` at a time whatever its batch sizes."""

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self._batches = iter(batches)
        self._head: pa.RecordBatch | None = None

    def take(self, n: int) -> pa.Table:
        parts: list[pa.RecordBatch] = []
        while n:
            if self._head is None or self._head.num_rows == 0:
                self._head = next(self._batches, None)
                if self._head is None:
                    raise ValueError("a source ended before the others")
                continue
            part = self._head.slice(0, n)
            self._head = self._head.slice(part.num_rows)
            parts.append(part)
            n -= part.num_rows
        return pa.Table.from_batches(parts).combine_chunks(memory_pool=POOL)

    def empty(self) -> bool:
        while self._head is None or self._head.num_rows == 0:
            self._head = next(self._batches, None)
            if self._head is None:
                return True
        return False


def _batches(source: pa.RecordBatchReader | pa.Table) -> Iterable[pa.RecordBatch]:
    return source.to_batches() if isinstance(source, pa.Table) else source


def zipped_schema(sources: list[pa.RecordBatchReader | pa.Table], key: str) -> pa.Schema:
    """The output schema: every source's columns in order, `key` once (from the first)."""
    fields = list(sources[0].schema)
    for source in sources[1:]:
        fields += [field for field in source.schema if field.name != key]
    return pa.schema(fields)


def zip_rows(sources: list[pa.RecordBatchReader | pa.Table], key: str) -> pa.RecordBatchReader:
    """One reader over the rows of `sources` side by side, batched like the first source."""
    schema = zipped_schema(sources, key)

    def batches() -> Iterator[pa.RecordBatch]:
        lead, rest = iter(_batches(sources[0])), [_Rows(_batches(s)) for s in sources[1:]]
        for batch in lead:
            if not batch.num_rows:
                continue
            keys = batch.column(key)
            arrays = list(batch.columns)
            for rows in rest:
                part = rows.take(batch.num_rows)
                if not part.column(key).chunk(0).equals(keys):
                    raise ValueError(f"sources are not aligned on {key!r}")
                arrays += [part.column(name).chunk(0) for name in part.column_names if name != key]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        if not all(rows.empty() for rows in rest):
            raise ValueError("a source has more rows than the first")

    return pa.RecordBatchReader.from_batches(schema, batches())
