"""The order of the rows of `slices` on disk: grouped by what reads them.

Analyses read one kind of slice at a time: device tasks, launch calls, framework ops. Stored in
file order these kinds are interleaved in every Parquet row group, so each of those reads decodes
the whole table. Stored in groups, each row group holds one group only, its min/max statistics
say so, and DuckDB skips the row groups of the other groups (it also compresses better: one
group's names and args repeat within a row group).

Within a group, rows keep slice_id order. A parser writes its slices through `row_groups` (from an Arrow
stream with a `GROUP_SQL` column) or orders them by `GROUP_SQL` (a DuckDB query), in row groups
of `row_group_rows(slices)` rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrownp import POOL, arrow_array, numpy_column

ROW_GROUP_ROWS = 122_880  # DuckDB's default row group size, used from about 2 M slices up
_SMALLEST_ROW_GROUP = 16_384
_ROW_GROUPS_WANTED = 16

# group number -> what it holds; a slice takes the first group it matches
GROUPS = (
    "device work (device_type other than cpu)",
    "launch calls (kind runtime or driver)",
    "framework operators (kind cpu_op)",
    "other host slices (python functions, annotations, steps, ...)",
)

GROUP_SQL = (
    "CAST(CASE WHEN device_type <> 'cpu' THEN 0 WHEN kind IN ('runtime', 'driver') THEN 1"
    " WHEN kind = 'cpu_op' THEN 2 ELSE 3 END AS TINYINT)"
)


def row_group_rows(slices: int) -> int:
    """Rows per row group for a trace of `slices` slices: DuckDB's default for large traces, fewer
    for smaller ones, so that they still get about 16 row groups. Each group's last rows wait for
    the end of the stream before they are written; small row groups keep that tail short."""
    wanted = -(-max(slices, 1) // _ROW_GROUPS_WANTED)
    return min(ROW_GROUP_ROWS, max(_SMALLEST_ROW_GROUP, -(-wanted // 2048) * 2048))


class _Pending:
    """Rows of one group waiting for a full row group."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.parts: list[pa.RecordBatch] = []
        self.rows = 0

    def add(self, part: pa.RecordBatch) -> None:
        self.parts.append(part)
        self.rows += part.num_rows

    def take(self, rows: int) -> pa.Table:
        """The first `rows` rows, in the batches they are held in."""
        table = pa.Table.from_batches(self.parts, schema=self.schema)
        head, rest = table.slice(0, rows), table.slice(rows)
        self.parts, self.rows = rest.to_batches(), rest.num_rows
        return head


def row_groups(
    reader: pa.RecordBatchReader, column: str, rows_per_group: int = ROW_GROUP_ROWS, emit_every: int | None = None
) -> Iterator[pa.Table]:
    """The rows of `reader` regrouped by the group numbers in `column` (`GROUP_SQL`, no nulls): one
    table per Parquet row group, holding one group's rows in the order they came; `rows_per_group`
    rows each, except for the last rows of each group, at the end.

    Full row groups are handed out, group by group, after each batch of `reader`, or with `emit_every`
    after each `emit_every` rows whatever the batches' sizes: the row groups then come in the order that
    batches of `emit_every` rows give, from a reader of smaller batches (which holds less memory).

    Memory stays bounded: at most one row group per group is held back, in copies of its rows (a
    slice of a batch would keep the whole batch alive), plus the rows read since the last hand-out.
    """
    pending = [_Pending(reader.schema) for _ in GROUPS]
    read = 0
    for batch in reader:
        for piece in _cut_at(batch, read, emit_every):
            _split(piece, column, pending)
            read += piece.num_rows
            if emit_every is None or read % emit_every == 0:
                yield from _full_groups(pending, rows_per_group)
    yield from _full_groups(pending, rows_per_group)
    for group in pending:
        if group.rows:
            yield group.take(group.rows)


def _cut_at(batch: pa.RecordBatch, read: int, every: int | None) -> Iterator[pa.RecordBatch]:
    """`batch` (which follows `read` rows) in pieces that end where a multiple of `every` rows is reached."""
    start = 0
    while every and start < batch.num_rows and (read + batch.num_rows) // every > (read + start) // every:
        end = ((read + start) // every + 1) * every - read
        yield batch.slice(start, end - start)
        start = end
    if start < batch.num_rows:
        yield batch.slice(start) if start else batch


def _split(batch: pa.RecordBatch, column: str, pending: list[_Pending]) -> None:
    """Add the rows of `batch` to their groups."""
    if not batch.num_rows:
        return
    codes = numpy_column(batch.column(column))
    present = np.bincount(codes, minlength=len(GROUPS))
    for number, group in enumerate(pending):
        if not present[number]:
            continue
        # In file order the groups alternate every few rows: one filter per group, not a slice per run.
        if present[number] == batch.num_rows:
            part = batch
        else:
            part = pc.filter(batch, arrow_array(codes == number), memory_pool=POOL)
        group.add(part)


def _full_groups(pending: list[_Pending], rows_per_group: int) -> Iterator[pa.Table]:
    for group in pending:
        while group.rows >= rows_per_group:
            yield group.take(rows_per_group)
