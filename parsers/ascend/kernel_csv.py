"""`kernel_details.csv` (torch_npu) and `op_summary_*.csv` (msprof): one row per device kernel or
communication op, with its hardware metrics.

The rows become `kd`, an Arrow table registered in the staging connection under that name: one row
per kernel in file order, the columns of `kernel_columns.KERNEL_COLUMNS` (columns the file lacks are
null), `is_comm`, `slice_id`, and the header's other columns as `metric:<header>` doubles. It is
read by pyarrow with typed columns (`kernel_arrow`) where the file allows, else by DuckDB with
every cell converted on its own (`_read_sql`); both give the same rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrownp import arrow_array, nullable_numpy, numpy_column, python_array, repeated_string
from ..errors import TraceFormatError
from ..model import TABLES
from ..parsed import arrow_cursor
from ..stagetime import timed_stage
from . import kernel_arrow
from .csv_util import (
    col_or_null,
    column_names,
    csv_source,
    float_sql,
    ident,
    int_sql,
    json_number_sql,
    ns_sql,
    pick,
    read_header,
    shape_sql,
    text_sql,
)
from .kernel_columns import COMM_CORES, KERNEL_COLUMNS, METRIC_PREFIX, REQUIRED
from .staging import Staging

_HEADERS = {column.name: column.headers for column in KERNEL_COLUMNS}
_METRICS_COLUMNS = [f.name for f in TABLES["npu_kernel_metrics"]][2:-1]  # all but trace_id, rank, metrics


def load_kernels(st: Staging, paths: list[Path], first_slice_id: int = 0) -> bool:
    """Read kernel CSV parts into `kd`, their slice ids counting from `first_slice_id` in file order;
    False when it has no usable row."""
    header, columns, found, rest = kernel_header(paths[0])
    with timed_stage(st.timings, "read_kernels"):
        kd = kernel_arrow.read_kernels(paths, columns, found, rest)
    if kd is None:
        with timed_stage(st.timings, "read_kernels_duckdb"):
            kd = _read_sql(st, paths, header, found, rest)
    usable = pc.and_(pc.is_valid(kd.column("ts_ns")), pc.is_valid(kd.column("dur_ns")))
    usable = pc.and_(usable, pc.is_valid(kd.column("name")))
    bad = kd.num_rows - int(numpy_column(usable).sum()) if kd.num_rows else 0
    if bad:
        st.warnings.append(f"{paths[0].name}: {bad} rows without a usable name, start or duration were skipped")
        kd = kd.filter(usable)
    ids = arrow_array(np.arange(first_slice_id, first_slice_id + kd.num_rows, dtype=np.int64))
    st.register("kd", kd.set_column(kd.schema.get_field_index("slice_id"), "slice_id", ids))
    return kd.num_rows > 0


def kernel_header(path: Path) -> tuple[list[str], list[str], dict[str, str | None], list[str]]:
    """A kernel CSV's header, its column names made unique, the header column of each `kd` column
    (None where missing) and the other columns; TraceFormatError without name, start or duration."""
    header = read_header(path)
    found = {key: pick(header, *names) for key, names in _HEADERS.items()}
    missing = [_HEADERS[key][0] for key in REQUIRED if found[key] is None]
    if missing:
        shown = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "")
        raise TraceFormatError(
            path,
            f"expected a kernel_details.csv / op_summary header with {', '.join(_HEADERS[k][0] for k in REQUIRED)},"
            f" found columns {shown!r} (missing {', '.join(missing)})",
        )
    columns = column_names(header)
    used = {c for c in found.values() if c}
    return header, columns, found, [c for c in columns if c not in used]


def _read_sql(
    st: Staging, paths: list[Path], header: list[str], found: dict[str, str | None], rest: list[str]
) -> pa.Table:
    """`kd` by DuckDB: every column read as text, then each cell cleaned and converted on its own (a
    cell that does not convert is null), for the files `kernel_arrow` cannot read as typed."""
    source, _ = csv_source(paths, header)
    c = {key: col_or_null(col) for key, col in found.items()}
    converted = ",\n".join(f"{_convert_sql(column.kind, c[column.name])} AS {column.name}" for column in KERNEL_COLUMNS)
    core = text_sql(c["core"])
    # The other columns stay numbers; `metrics_query` turns them into the JSON at write time.
    metric_columns = "".join(f", {json_number_sql(ident(col))} AS {ident(METRIC_PREFIX + col)}" for col in rest)
    query = f"""
        SELECT {converted},
               coalesce(upper({core}) IN {COMM_CORES}, false) AS is_comm,
               NULL::BIGINT AS slice_id{metric_columns}
        FROM {source}
    """
    return st.con.sql(query).to_arrow_table()


def _convert_sql(kind: str, col: str) -> str:
    if kind == "int":
        return int_sql(col)
    if kind == "int32":
        return f"TRY_CAST({int_sql(col)} AS INTEGER)"
    if kind == "start":
        return ns_sql(col)
    if kind == "ns":
        return ns_sql(col, small=True)
    if kind == "ratio":
        return float_sql(col)
    if kind == "shape":
        return shape_sql(col)
    if kind == "yes_no":
        return f"CASE upper({text_sql(col)}) WHEN 'YES' THEN true WHEN 'NO' THEN false END"
    return text_sql(col)


def create_empty(st: Staging) -> None:
    """An empty `kd`, for units without a kernel table."""
    st.sql(
        """CREATE TABLE kd (step BIGINT, device_id INTEGER, task_id BIGINT, stream BIGINT, name VARCHAR,
           op_type VARCHAR, op_state VARCHAR, core VARCHAR, is_comm BOOLEAN, ts_ns BIGINT, dur_ns BIGINT,
           input_shapes VARCHAR, input_dtypes VARCHAR, slice_id BIGINT)"""
    )


def set_kernel_ids(st: Staging, rows: np.ndarray, slice_ids: np.ndarray, devices: np.ndarray) -> None:
    """Give the `kd` rows at positions `rows` other slice ids (their timeline events') and, where the
    row names no device, the device in `devices` (-1: none)."""
    kd = st.arrow["kd"]
    ids = numpy_column(kd.column("slice_id")).copy()
    ids[rows] = slice_ids
    st.register("kd", kd.set_column(kd.schema.get_field_index("slice_id"), "slice_id", arrow_array(ids)))
    fallback = np.full(kd.num_rows, -1, dtype=np.int64)
    fallback[rows] = devices
    fill_devices(st, fallback)


def fill_devices(st: Staging, fallback: np.ndarray | None = None) -> None:
    """`kd.device_id` where null: `fallback` at that row where it is not -1, else 0."""
    kd = st.arrow["kd"]
    column = kd.column("device_id")
    if not column.null_count:
        return
    devices, valid = nullable_numpy(column)
    if fallback is not None:
        devices = np.where(~valid & (fallback >= 0), fallback, devices)
    kd = kd.set_column(kd.schema.get_field_index("device_id"), "device_id", arrow_array(devices.astype(np.int32)))
    st.register("kd", kd)


def metrics_query(st: Staging) -> str:
    """The npu_kernel_metrics rows of `kd`, read straight from it; the `metrics` JSON is built here
    from the `metric:` columns that `load_kernels` kept."""
    return f"SELECT {', '.join(_METRICS_COLUMNS)}, {_metrics_json(st.arrow['kd'])} AS metrics FROM kd"


def metrics_table(st: Staging) -> pa.Table:
    """The npu_kernel_metrics rows of `kd` as Arrow, its text columns still dictionaries (one per
    column, shared by all rows). For kernel tables without a timeline: nothing else gives their
    rows a step or a device."""
    kd = st.arrow["kd"]
    if any(name.startswith(METRIC_PREFIX) for name in kd.column_names):
        query = f"SELECT {_metrics_json(kd)} AS metrics FROM kd"  # in kd's order: insertion order is kept
        metrics = arrow_cursor(st.con, {"kd": kd}).sql(query).to_arrow_table().column(0)
    else:
        metrics = repeated_string("{}", kd.num_rows)
    return kd.select(_METRICS_COLUMNS).append_column("metrics", metrics).unify_dictionaries()


def _metrics_json(kd: pa.Table) -> str:
    kept = [name for name in kd.column_names if name.startswith(METRIC_PREFIX)]
    pairs = ", ".join(f"{ident(name[len(METRIC_PREFIX):])} := {ident(name)}" for name in kept)
    return f"CAST(to_json(struct_pack({pairs})) AS VARCHAR)" if kept else "'{}'"


def kd_slices(kd: pa.Table) -> pa.Table:
    """The slices of `kd` rows, with the columns of st_slices (text as dictionaries, built per
    distinct value). Rows without a device are on device 0. Communication ops are on the
    `Communication` track of their device; kernels on their stream's, else their core's, else `NPU`."""
    kd = kd.unify_dictionaries()
    rows = kd.num_rows
    comm = numpy_column(kd.column("is_comm"))
    devices, has_device = nullable_numpy(kd.column("device_id"))
    devices = np.where(has_device, devices, 0).astype(np.int32)
    device_codes = pc.dictionary_encode(arrow_array(devices))
    streams = pc.dictionary_encode(kd.column("stream").combine_chunks())
    stream_codes, has_stream = nullable_numpy(streams.indices)
    core = _one_dictionary(kd.column("core"))
    core_codes, has_core = nullable_numpy(core.indices)
    stream_count, core_count = len(streams.dictionary), len(core.dictionary)
    tid_codes = np.where(
        comm,
        stream_count + core_count + 1,
        np.where(has_stream, stream_codes, np.where(has_core, stream_count + core_codes, stream_count + core_count)),
    )
    tid_names = pa.concat_arrays(
        [streams.dictionary.cast(pa.string()), core.dictionary, python_array(["NPU", "Communication"], pa.string())]
    )
    columns = {
        "slice_id": kd.column("slice_id"),
        "ts_ns": kd.column("ts_ns"),
        "dur_ns": kd.column("dur_ns"),
        "name": kd.column("name"),
        "cat": core,
        "kind": _labelled(comm.astype(np.int32), ["kernel", "comm"]),
        "device_type": _labelled(np.zeros(rows, dtype=np.int32), ["npu"]),
        "device_id": arrow_array(devices),
        "pid": pa.DictionaryArray.from_arrays(device_codes.indices, device_codes.dictionary.cast(pa.string())),
        "tid": pa.DictionaryArray.from_arrays(arrow_array(tid_codes.astype(np.int32)), tid_names),
        "stream": kd.column("stream"),
        "core": core,
        "correlation": pa.nulls(rows, pa.int64()),
        "external_id": pa.nulls(rows, pa.int64()),
        "step": kd.column("step"),
        "input_dims": kd.column("input_shapes"),
        "input_types": kd.column("input_dtypes"),
        "args": repeated_string("{}", rows),
    }
    return pa.table(columns)


def _one_dictionary(column: pa.ChunkedArray) -> pa.DictionaryArray:
    """A text column of `kd` (unified dictionaries) as one dictionary array."""
    if pa.types.is_dictionary(column.type):
        return column.combine_chunks()
    return pc.dictionary_encode(column.combine_chunks())


def _labelled(codes: np.ndarray, labels: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(arrow_array(codes), python_array(labels, pa.string()))
