"""`kernel_details.csv` (torch_npu) and `op_summary_*.csv` (msprof): one row per device kernel or
communication op, with its hardware metrics.

The two files share a layout under different header names (torch_npu renames `Op Name` to
`Name`, `Task Type` to `Accelerator Core`, ...), and headers moved across CANN versions
(`Block Dim` became `Block Num`, `Device_id` and `OP State` appeared). Columns are found by any
of their names; the ones without a place in the model go to the `metrics` JSON.
"""

from __future__ import annotations

from pathlib import Path

from parsers.ascend.csv_util import (
    col_or_null,
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
from parsers.ascend.staging import Staging
from parsers.errors import TraceFormatError

COMM_CORES = ("HCCL", "COMMUNICATION")

# model column -> accepted header names, newest first
ALIASES: dict[str, tuple[str, ...]] = {
    "step": ("Step Id",),
    "device_id": ("Device_id",),
    "task_id": ("Task ID",),
    "stream": ("Stream ID",),
    "name": ("Name", "Op Name"),
    "op_type": ("Type", "OP Type"),
    "op_state": ("OP State",),
    "core": ("Accelerator Core", "Task Type"),
    "start": ("Start Time(us)", "Task Start Time(us)"),
    "dur": ("Duration(us)", "Task Duration(us)"),
    "wait": ("Wait Time(us)", "Task Wait Time(us)"),
    "block_dim": ("Block Num", "Block Dim"),
    "mix_block_dim": ("Mix Block Num", "Mix Block Dim"),
    "hf32": ("HF32 Eligible",),
    "input_shapes": ("Input Shapes",),
    "input_dtypes": ("Input Data Types",),
    "input_formats": ("Input Formats",),
    "output_shapes": ("Output Shapes",),
    "output_dtypes": ("Output Data Types",),
    "output_formats": ("Output Formats",),
    "aicore": ("aicore_time(us)", "aic_total_time(us)"),
    "aic_total_cycles": ("aic_total_cycles",),
    "aic_mac_ratio": ("aic_mac_ratio",),
    "aic_mte2_ratio": ("aic_mte2_ratio",),
    "aiv": ("aiv_time(us)", "aiv_total_time(us)"),
    "aiv_total_cycles": ("aiv_total_cycles",),
    "aiv_vec_ratio": ("aiv_vec_ratio",),
    "aiv_mte2_ratio": ("aiv_mte2_ratio",),
    "cube_utilization": ("cube_utilization(%)",),
}
REQUIRED = ("name", "start", "dur")
# `kd` columns holding the header's other (unmodelled) columns, as numbers, until they become JSON
METRIC_PREFIX = "metric:"


def load_kernels(st: Staging, paths: list[Path]) -> bool:
    """Read kernel CSV parts into table `kd` (one normalised row per kernel, in file order, so
    `kd.rowid` is the row's index); False when it has no usable row."""
    header = read_header(paths[0])
    found = {key: pick(header, *names) for key, names in ALIASES.items()}
    missing = [ALIASES[key][0] for key in REQUIRED if found[key] is None]
    if missing:
        shown = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "")
        raise TraceFormatError(
            paths[0],
            f"expected a kernel_details.csv / op_summary header with {', '.join(ALIASES[k][0] for k in REQUIRED)},"
            f" found columns {shown!r} (missing {', '.join(missing)})",
        )
    source, columns = csv_source(paths, header)
    used = {c for c in found.values() if c}
    rest = [c for c in columns if c not in used]
    # The other columns stay numbers in `kd`; `metrics_query` turns them into the JSON at write time,
    # in parallel with the Parquet encoding (as JSON text in `kd` they would be most of its memory).
    metric_columns = "".join(f", {json_number_sql(ident(c))} AS {ident(METRIC_PREFIX + c)}" for c in rest)
    c = {key: col_or_null(col) for key, col in found.items()}
    core = text_sql(c["core"])
    st.sql(
        f"""
        CREATE TABLE kd AS
        SELECT {int_sql(c['step'])} AS step,
               CAST({int_sql(c['device_id'])} AS INTEGER) AS device_id,
               {int_sql(c['task_id'])} AS task_id,
               {int_sql(c['stream'])} AS stream,
               {text_sql(c['name'])} AS name,
               {text_sql(c['op_type'])} AS op_type,
               {text_sql(c['op_state'])} AS op_state,
               {core} AS core,
               coalesce(upper({core}) IN {COMM_CORES}, false) AS is_comm,
               {ns_sql(c['start'])} AS ts_ns,
               {ns_sql(c['dur'], small=True)} AS dur_ns,
               {ns_sql(c['wait'], small=True)} AS wait_ns,
               {int_sql(c['block_dim'])} AS block_dim,
               {int_sql(c['mix_block_dim'])} AS mix_block_dim,
               CASE upper({text_sql(c['hf32'])}) WHEN 'YES' THEN true WHEN 'NO' THEN false END AS hf32_eligible,
               {shape_sql(c['input_shapes'])} AS input_shapes,
               {text_sql(c['input_dtypes'])} AS input_dtypes,
               {text_sql(c['input_formats'])} AS input_formats,
               {shape_sql(c['output_shapes'])} AS output_shapes,
               {text_sql(c['output_dtypes'])} AS output_dtypes,
               {text_sql(c['output_formats'])} AS output_formats,
               {ns_sql(c['aicore'], small=True)} AS aicore_ns,
               {int_sql(c['aic_total_cycles'])} AS aic_total_cycles,
               {float_sql(c['aic_mac_ratio'])} AS aic_mac_ratio,
               {float_sql(c['aic_mte2_ratio'])} AS aic_mte2_ratio,
               {ns_sql(c['aiv'], small=True)} AS aiv_ns,
               {int_sql(c['aiv_total_cycles'])} AS aiv_total_cycles,
               {float_sql(c['aiv_vec_ratio'])} AS aiv_vec_ratio,
               {float_sql(c['aiv_mte2_ratio'])} AS aiv_mte2_ratio,
               {float_sql(c['cube_utilization'])} AS cube_utilization,
               NULL::BIGINT AS slice_id{metric_columns}
        FROM {source}
        """
    )
    bad = int(st.scalar("SELECT count(*) FROM kd WHERE ts_ns IS NULL OR dur_ns IS NULL OR name IS NULL"))
    if bad:
        st.warnings.append(f"{paths[0].name}: {bad} rows without a usable name, start or duration were skipped")
        st.sql("DELETE FROM kd WHERE ts_ns IS NULL OR dur_ns IS NULL OR name IS NULL")
        st.sql("CREATE OR REPLACE TABLE kd AS SELECT * FROM kd")  # dense rowids again
    return int(st.scalar("SELECT count(*) FROM kd")) > 0


def create_empty(st: Staging) -> None:
    """An empty `kd`, for units without a kernel table."""
    st.sql(
        """CREATE TABLE kd (step BIGINT, device_id INTEGER, task_id BIGINT, stream BIGINT, name VARCHAR,
           op_type VARCHAR, op_state VARCHAR, core VARCHAR, is_comm BOOLEAN, ts_ns BIGINT, dur_ns BIGINT,
           input_shapes VARCHAR, input_dtypes VARCHAR, slice_id BIGINT)"""
    )


def metrics_query(st: Staging) -> str:
    """The npu_kernel_metrics rows of `kd`, read straight from it; the `metrics` JSON is built here
    from the `metric:` columns that `load_kernels` kept."""
    kept = [
        row[0]
        for row in st.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'kd' AND starts_with(column_name, ?)"
            " ORDER BY column_index",
            [METRIC_PREFIX],
        ).fetchall()
    ]
    pairs = ", ".join(f"{ident(name[len(METRIC_PREFIX):])} := {ident(name)}" for name in kept)
    metrics = f"CAST(to_json(struct_pack({pairs})) AS VARCHAR)" if kept else "'{}'"
    return f"""
        SELECT slice_id, device_id, step, name, op_type, core, stream, task_id, op_state, block_dim, mix_block_dim,
               hf32_eligible, input_shapes, input_dtypes, input_formats, output_shapes, output_dtypes, output_formats,
               wait_ns, aicore_ns, aic_total_cycles, aic_mac_ratio, aic_mte2_ratio, aiv_ns, aiv_total_cycles,
               aiv_vec_ratio, aiv_mte2_ratio, cube_utilization, {metrics} AS metrics
        FROM kd
    """


def kd_slices_sql(device_fallback: str = "0") -> str:
    """SELECT producing slices for `kd` rows that no timeline event matched (columns of st_slices)."""
    return f"""
        SELECT slice_id, ts_ns, dur_ns, name, core AS cat,
               CASE WHEN is_comm THEN 'comm' ELSE 'kernel' END AS kind,
               'npu' AS device_type, coalesce(device_id, {device_fallback}) AS device_id,
               CAST(coalesce(device_id, {device_fallback}) AS VARCHAR) AS pid,
               CASE WHEN is_comm THEN 'Communication' ELSE coalesce(CAST(stream AS VARCHAR), coalesce(core, 'NPU')) END
                 AS tid,
               stream, core, NULL::BIGINT AS correlation, NULL::BIGINT AS external_id, step,
               input_shapes AS input_dims, input_dtypes AS input_types, '{{}}' AS args
    """
