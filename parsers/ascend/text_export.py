"""Text exports into the model: torch_npu `ASCEND_PROFILER_OUTPUT/`, msprof
`mindstudio_profiler_output/`, or a single timeline or kernel CSV.

Device kernels are the rows of the kernel table (kernel_details.csv / op_summary): its times are
exact ns text, while the timeline's `dur` is a float. Each kernel row is matched to its timeline
event (same name, start within 2 ns) to pick up the stream, the launch's connection id and the
flows; rows without a timeline event still become slices.
"""

from __future__ import annotations

from ..arrownp import arrow_array, numpy_column
from ..errors import TraceFormatError
from . import kernel_csv, msprof_csv
from .layout import Sources
from .staging import Staging
from .timeline import has_counter_track, host_kind_sql, load_timelines, task_kind_sql

MATCH_TOLERANCE_NS = 2
_DEVICE_ROLES = "('task', 'comm', 'hccl_task', 'device_other')"


def parse_text(st: Staging, sources: Sources) -> None:
    """Fill the staging tables from the text files of a unit."""
    has_timeline = bool(sources.timelines)
    base = 0  # slice ids of kernel rows without a timeline event count from here
    if has_timeline:
        load_timelines(st, sources.timelines)
        base = int(st.scalar("SELECT coalesce(max(eid), -1) + 1 FROM ev"))
    if sources.kernels:
        try:
            kernel_csv.load_kernels(st, sources.kernels, base)
        except TraceFormatError as exc:
            if not (has_timeline or sources.files):
                raise
            st.warnings.append(f"{sources.kernels[0].name}: {exc.problem}; kernels taken from the timeline only")
    kernel_table = "kd" in st.arrow
    if has_timeline:
        _timeline_slices(st, kernel_table, base)
        if kernel_table:
            st.metrics_query = kernel_csv.metrics_query(st)
    elif kernel_table:
        kernel_csv.fill_devices(st)
        kd = st.arrow["kd"]
        st.add_device_slices(lambda: kernel_csv.kd_slices(kd), kd.num_rows)
        if paths := sources.files.get("task_time"):
            msprof_csv.task_time(st, paths)
        st.metrics_arrow = lambda: kernel_csv.metrics_table(st)
    if kernel_table:
        st.event_count += int(st.scalar("SELECT count(*) FROM kd"))
    parse_side_files(st, sources, has_timeline)


def _timeline_slices(st: Staging, kernel_table: bool, base: int) -> None:
    if kernel_table:
        # Each kernel row (`kd` row i has slice id base + i until matched) to its timeline event.
        st.sql(
            f"""
            CREATE TABLE kd_match AS
            WITH cand AS (
              SELECT k.slice_id - {base} AS row_idx, x.eid, abs(k.ts_ns - x.ts_ns) AS d
              FROM kd k ASOF LEFT JOIN
                   (SELECT eid, name, ts_ns FROM xe WHERE role IN ('task', 'comm')) x
                ON k.name = x.name AND k.ts_ns + {MATCH_TOLERANCE_NS} >= x.ts_ns
            )
            SELECT row_idx, eid FROM cand WHERE eid IS NOT NULL AND d <= {MATCH_TOLERANCE_NS}
            QUALIFY row_number() OVER (PARTITION BY eid ORDER BY d, row_idx) = 1
            """
        )
        matched = st.con.sql(
            "SELECT m.row_idx, m.eid, coalesce(x.device_id, -1) AS device_id FROM kd_match m JOIN xe x ON x.eid = m.eid"
        ).fetchnumpy()
        kernel_csv.set_kernel_ids(st, matched["row_idx"], matched["eid"], matched["device_id"])
        unmatched = st.arrow["kd"].num_rows - len(matched["row_idx"])
        if unmatched:
            st.warnings.append(f"{unmatched} kernel rows have no event in the timeline (kept, without flows)")
    else:
        kernel_csv.create_empty(st)
    # Communication sub-tasks on `Plane N` threads are the hardware tasks again: merge their details.
    st.sql(
        """
        CREATE TABLE twins AS
        SELECT h.eid AS plane_eid, t.eid AS task_eid, h.args AS plane_args
        FROM xe h JOIN xe t
          ON h.role = 'hccl_task' AND t.role = 'task' AND t.ts_ns = h.ts_ns AND t.stream = h.stream
         AND t.task_id = h.task_id AND coalesce(t.subtask_id, -1) = coalesce(h.subtask_id, -1)
        QUALIFY row_number() OVER (PARTITION BY h.eid ORDER BY t.eid) = 1
        """
    )
    kind_task = task_kind_sql("x.task_type", "x.name", kernel_table)
    st.sql(
        f"""
        INSERT INTO st_slices BY NAME
        WITH tw AS (SELECT DISTINCT ON (task_eid) task_eid, plane_args FROM twins ORDER BY task_eid, plane_eid)
        SELECT x.eid AS slice_id,
               coalesce(k.ts_ns, x.ts_ns) AS ts_ns, coalesce(k.dur_ns, x.dur_ns) AS dur_ns,
               coalesce(k.name, x.name) AS name,
               CASE WHEN tw.task_eid IS NOT NULL OR x.role = 'hccl_task' THEN 'hccl_task'
                    WHEN x.role = 'task' THEN coalesce(x.task_type, x.cat)
                    WHEN x.role = 'comm' THEN 'communication_op'
                    WHEN x.role = 'api' THEN coalesce(x.level, lower(split_part(x.name, '@', 1)))
                    ELSE x.cat END AS cat,
               CASE WHEN k.slice_id IS NOT NULL THEN CASE WHEN k.is_comm THEN 'comm' ELSE 'kernel' END
                    WHEN x.role = 'comm' THEN 'comm'
                    WHEN x.role = 'task' THEN {kind_task}
                    WHEN x.role = 'hccl_task' THEN {task_kind_sql("x.name", "x.name", True)}
                    WHEN x.role = 'api' THEN 'runtime'
                    WHEN x.role = 'device_other' THEN 'other'
                    ELSE {host_kind_sql('x.name', 'x.cat')} END AS kind,
               CASE WHEN x.role IN {_DEVICE_ROLES} THEN 'npu' ELSE 'cpu' END AS device_type,
               CASE WHEN x.role IN {_DEVICE_ROLES} THEN coalesce(k.device_id, x.device_id, 0) END AS device_id,
               CASE WHEN x.role IN {_DEVICE_ROLES} THEN CAST(coalesce(k.device_id, x.device_id, 0) AS VARCHAR)
                    ELSE x.pid END AS pid,
               CASE WHEN x.role = 'task' THEN coalesce(CAST(x.stream AS VARCHAR), x.tid)
                    WHEN x.role IN ('comm', 'hccl_task') THEN coalesce(x.tname, x.tid)
                    ELSE x.tid END AS tid,
               CASE WHEN x.role IN {_DEVICE_ROLES} THEN coalesce(x.stream, k.stream) END AS stream,
               CASE WHEN k.slice_id IS NOT NULL THEN k.core
                    WHEN x.role = 'comm' THEN upper(x.pname) END AS core,
               CASE WHEN x.role IN ('task', 'comm', 'hccl_task', 'api') THEN x.connection_id END AS correlation,
               k.step,
               coalesce(k.input_shapes, x.input_dims) AS input_dims,
               coalesce(k.input_dtypes, x.input_types) AS input_types,
               CASE WHEN tw.task_eid IS NOT NULL
                    THEN CAST(json_merge_patch(x.args, json_object('hccl', json(tw.plane_args))) AS VARCHAR)
                    ELSE x.args END AS args
        FROM xe x
        LEFT JOIN (SELECT * FROM kd WHERE slice_id IS NOT NULL) k ON k.slice_id = x.eid
        LEFT JOIN tw ON tw.task_eid = x.eid
        WHERE x.role <> 'overlap' AND x.eid NOT IN (SELECT plane_eid FROM twins)
        """
    )
    overlap = int(st.scalar("SELECT count(*) FROM xe WHERE role = 'overlap'"))
    if overlap:
        st.sql(
            f"""INSERT INTO st_metadata VALUES ('trace', NULL, NULL, 'overlap_analysis_events',
                '{overlap} derived intervals (Computing/Communication/Free) not kept: recompute from the slices')"""
        )
    if kernel_table:
        kd = st.arrow["kd"]
        unmatched = numpy_column(kd.column("slice_id")) >= base  # kernel rows no timeline event took
        st.add_arrow("st_slices", kernel_csv.kd_slices(kd.filter(arrow_array(unmatched))))
        stray = int(
            st.scalar(
                "SELECT count(*) FROM xe x WHERE role = 'task' AND x.eid NOT IN (SELECT slice_id FROM kd)"
                f" AND {task_kind_sql('x.task_type', 'x.name', False)} = 'kernel'"
            )
        )
        if stray:
            st.warnings.append(
                f"{stray} device tasks of compute type are not in the kernel table: kept as kind 'other'"
            )
    _flows(st)


def _flows(st: Staging) -> None:
    st.sql(
        """
        INSERT INTO st_flows
        SELECT d.cat, d.id, s.bound_eid, d.bound_eid
        FROM (SELECT * FROM flow_bound WHERE ph IN ('f', 't')) d
        LEFT JOIN (SELECT DISTINCT ON (cat, id) * FROM flow_bound WHERE ph = 's' ORDER BY cat, id, eid) s
          ON s.cat = d.cat AND s.id = d.id
        UNION ALL
        SELECT s.cat, s.id, s.bound_eid, NULL FROM flow_bound s
        WHERE s.ph = 's' AND NOT EXISTS (
          SELECT 1 FROM flow_bound d WHERE d.ph IN ('f', 't') AND d.cat = s.cat AND d.id = s.id)
        """
    )
    # Framework op -> device task (`async_npu`): the op's slice id becomes the external id of both,
    # and of the CANN launch that shares the task's connection id.
    st.sql(
        """
        CREATE TABLE fw_links AS
        SELECT DISTINCT ON (dst_slice_id) src_slice_id, dst_slice_id FROM st_flows
        WHERE kind = 'async_npu' AND src_slice_id IS NOT NULL AND dst_slice_id IS NOT NULL
        ORDER BY dst_slice_id, src_slice_id
        """
    )
    st.sql(
        """UPDATE st_slices SET external_id = f.src_slice_id FROM fw_links f
           WHERE st_slices.slice_id = f.dst_slice_id"""
    )
    st.sql(
        """UPDATE st_slices SET external_id = slice_id
           WHERE slice_id IN (SELECT src_slice_id FROM fw_links)"""
    )
    st.sql(
        """
        UPDATE st_slices SET external_id = d.external_id
        FROM (SELECT correlation, min(external_id) AS external_id FROM st_slices
              WHERE device_type = 'npu' AND external_id IS NOT NULL AND correlation IS NOT NULL
              GROUP BY correlation) d
        WHERE st_slices.kind = 'runtime' AND st_slices.correlation = d.correlation AND st_slices.external_id IS NULL
        """
    )


def parse_side_files(st: Staging, sources: Sources, has_timeline: bool = False) -> None:
    """Memory, module memory, step breakdown and statistics CSVs of a unit."""
    files = sources.files
    if paths := files.get("memory_record") or files.get("ge_memory_record"):
        msprof_csv.memory_record(st, paths)
    if paths := files.get("operator_memory") or files.get("ge_operator_memory"):
        msprof_csv.operator_memory(st, paths)
    if paths := files.get("npu_module_mem"):
        msprof_csv.npu_module_mem(st, paths)
    if (paths := files.get("npu_mem")) and not (has_timeline and has_counter_track(st, "NPU MEM")):
        msprof_csv.npu_mem(st, paths)
    if paths := files.get("step_trace_time"):
        msprof_csv.step_trace_time(st, paths)
    if paths := files.get("op_statistic"):
        msprof_csv.statistics(st, paths, "op_statistic", ("OP Type",))
    if paths := files.get("api_statistic"):
        msprof_csv.statistics(st, paths, "api_statistic", ("API Name",))
    if paths := files.get("hbm"):
        msprof_csv.statistics(st, paths, "hbm_summary", ("Metric",))
