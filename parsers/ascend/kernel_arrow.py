"""The fast reader of kernel CSVs: pyarrow's CSV reader with a type for every column.

`kernel_csv.load_kernels` reads a kernel table here first. Every cell must then fit its column's
type as written: integers, µs times with at most 3 decimals (whole ns, so no rounding), numbers in
the metric columns, `N/A` or empty for missing. The torch_npu and msprof files seen so far all do.
A file that does not (a sub-ns time, text in a number column, a short row) makes `read_kernels`
return None, and the file is read again by DuckDB's tolerant path, whose every-column-as-text
conversions give the same `kd` rows for the files both can read.

Durations are read as doubles and made exact ns by `arrownp.whole_ns_array`; start times (16
integer digits and more) as decimals. Text columns come as dictionaries, so cleaning them (quotes
around shapes, upper-casing the core) touches each distinct value once, and the store's writers
take the dictionaries over.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ..arrownp import (
    POOL,
    arrow_array,
    decimal_units_array,
    null_where,
    nullable_numpy,
    numpy_column,
    python_array,
    whole_ns_array,
)
from .csv_util import UINT32_MAX
from .kernel_columns import COMM_CORES, KERNEL_COLUMNS, METRIC_PREFIX, KernelColumn

_TEXT = pa.dictionary(pa.int32(), pa.string())
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_START = pa.decimal128(38, 3)  # absolute µs: 16 integer digits and more
_STRIP = ' \t\r\n"'
# µs durations as doubles: exact as whole ns for up to 3 decimals (`whole_ns_array`) and cheaper
# to read than decimals (1 M kernel rows: 1.7 instead of 2.0 CPU-s).
_READ_AS = {"int": pa.int64(), "int32": pa.int64(), "ns": pa.float64(), "ratio": pa.float64(), "start": pa.string()}
_INVALID_ID = arrow_array(np.array([UINT32_MAX], dtype=np.int64))[0]  # a scalar: pa.scalar imports pandas
_NULL_TEXT = pa.nulls(1, pa.string())[0]
_NULLS = {"int32": pa.int32(), "ratio": pa.float64(), "yes_no": pa.bool_(), "text": _TEXT, "shape": _TEXT}


def read_kernels(
    paths: list[Path], names: list[str], found: dict[str, str | None], metrics: list[str]
) -> pa.Table | None:
    """The `kd` table of kernel CSV parts with columns `names` (`found`: `kd` column -> header
    column), `metrics` as `metric:<name>` doubles; None when a cell does not fit its type."""
    try:
        return _kd(read_typed(paths, names, column_types(names, found, metrics)), found, metrics)
    except (pa.ArrowInvalid, ValueError):
        return None


def column_types(names: list[str], found: dict[str, str | None], metrics: list[str]) -> dict[str, pa.DataType]:
    """The type each column is read as (ArrowInvalid from the reader where a cell does not fit)."""
    types: dict[str, pa.DataType] = dict.fromkeys(names, pa.string())
    for column in KERNEL_COLUMNS:
        if header := found.get(column.name):
            types[header] = _READ_AS.get(column.kind, _TEXT)
    types.update(dict.fromkeys(metrics, pa.float64()))
    return types


def read_typed(paths: list[Path], names: list[str], types: dict[str, pa.DataType]) -> pa.Table:
    """The CSV parts as read, each column as `types` says, before any cleaning."""
    return pa.concat_tables(_read(path, names, types) for path in paths)


def _read(path: Path, names: list[str], types: dict[str, pa.DataType]) -> pa.Table:
    return pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 20),
        parse_options=pa_csv.ParseOptions(delimiter=",", quote_char='"', double_quote=True, newlines_in_values=False),
        convert_options=pa_csv.ConvertOptions(
            column_types=types,
            null_values=["N/A", ""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
        memory_pool=POOL,
    )


def _kd(raw: pa.Table, found: dict[str, str | None], metrics: list[str]) -> pa.Table:
    rows = raw.num_rows

    def convert(column: KernelColumn) -> pa.Array | pa.ChunkedArray:
        header = found.get(column.name)
        return _convert(column.kind, raw.column(header) if header else None, rows)

    # Columns convert independently, mostly in numpy and Arrow kernels that release the GIL.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        kd = dict(zip([c.name for c in KERNEL_COLUMNS], pool.map(convert, KERNEL_COLUMNS), strict=True))
    kd["is_comm"] = _is_comm(kd["core"])
    kd["slice_id"] = pa.nulls(rows, pa.int64())
    for name in metrics:  # a JSON number later: finite, else null
        values = raw.column(name)
        kd[METRIC_PREFIX + name] = null_where(values, pc.invert(pc.is_finite(values)))
    return pa.table(kd)


def _convert(kind: str, values: pa.ChunkedArray | None, rows: int) -> pa.Array | pa.ChunkedArray:
    """One column of `kd` from its column as read (None: the file lacks it)."""
    if values is None:
        return pa.nulls(rows, _NULLS.get(kind, pa.int64()))
    if kind in ("int", "int32"):
        numbers = null_where(values, pc.equal(values, _INVALID_ID))  # the profilers' invalid id
        if kind == "int32":  # a value past INTEGER is no id either
            outside = pc.or_(pc.less(numbers, _INT32_MIN), pc.greater(numbers, _INT32_MAX))
            return null_where(numbers, outside).cast(pa.int32())
        return numbers
    if kind == "start":
        return decimal_units_array(pc.cast(pc.utf8_trim(values, _STRIP), _START))
    if kind == "ns":
        return whole_ns_array(values)
    if kind == "shape":
        return _trimmed_shapes(values)
    if kind == "yes_no":
        return _map_dictionary(values, _yes_no)
    return values  # ratio, text: as read


def _unified(values: pa.ChunkedArray) -> tuple[pa.Array, list[pa.Array]]:
    """A dictionary column's one dictionary (shared by all its chunks) and each chunk's indices."""
    unified = pa.table({"values": values}).unify_dictionaries().column(0)
    if not unified.num_chunks:
        return pa.array([], unified.type.value_type), []
    return unified.chunk(0).dictionary, [chunk.indices for chunk in unified.chunks]


def _map_dictionary(values: pa.ChunkedArray, mapping: Callable[[pa.Array], pa.Array]) -> pa.ChunkedArray:
    """`mapping` (an Arrow array to one of as many values) applied once to the column's dictionary,
    then taken by each chunk's indices: work per distinct value, not per row."""
    dictionary, indices = _unified(values)
    mapped = mapping(dictionary)
    return pa.chunked_array([mapped.take(chunk) for chunk in indices], type=mapped.type)


def _trimmed_shapes(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Shapes without their quotes, `N/A` and empty as null; still a dictionary (of distinct values)."""
    dictionary, indices = _unified(values)
    trimmed = pc.utf8_trim(dictionary, '"')
    kept = pc.if_else(pc.is_in(trimmed, value_set=python_array(["N/A", ""], pa.string())), _NULL_TEXT, trimmed)
    distinct = pc.unique(kept.drop_null())
    position = pc.index_in(kept, value_set=distinct)  # null where missing
    return pa.chunked_array(
        [pa.DictionaryArray.from_arrays(position.take(chunk), distinct) for chunk in indices], type=_TEXT
    )


def _yes_no(dictionary: pa.Array) -> pa.Array:
    upper = pc.utf8_upper(dictionary)
    yes = pc.is_in(upper, value_set=python_array(["YES"], pa.string()))
    no = pc.is_in(upper, value_set=python_array(["NO"], pa.string()))
    return arrow_array(numpy_column(yes), ~(numpy_column(yes) | numpy_column(no)))


def _is_comm(core: pa.ChunkedArray) -> pa.Array:
    def comm(dictionary: pa.Array) -> pa.Array:
        return pc.is_in(pc.utf8_upper(dictionary), value_set=python_array(list(COMM_CORES), pa.string()))

    flags, _ = nullable_numpy(_map_dictionary(core, comm))  # null core: not communication
    return arrow_array(flags)
