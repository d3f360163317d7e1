"""SQLite exports into the model: torch_npu `ascend_pytorch_profiler_N.db` and msprof `msprof_*.db`.

Times are integer ns, memory bytes, bandwidth bytes/s; strings are interned in STRING_IDS.
Kernels are TASK rows with a COMPUTE_TASK_INFO row; communication ops are COMMUNICATION_OP;
TASK rows with COMMUNICATION_TASK_INFO are the ops' sub-tasks. Launches link to tasks through
`connectionId`, framework ops through CONNECTION_IDS. Tables and columns we do not know
(MindStudio Insight adds some) are ignored; missing ones are NULL.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import TraceFormatError
from .csv_util import UINT32_MAX, ns_sql
from .kernel_columns import KERNEL_COLUMNS
from .sqlite_reader import SqliteSource, open_readonly
from .staging import Staging
from .timeline import task_kind_sql

KNOWN = (
    "TASK",
    "COMPUTE_TASK_INFO",
    "CANN_API",
    "COMMUNICATION_OP",
    "PYTORCH_API",
    "MEMORY_RECORD",
    "OP_MEMORY",
    "NPU_MEM",
    "NPU_MODULE_MEM",
    "HBM",
    "STEP_TIME",
    "MSTX_EVENTS",
)

_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "db_strings": ("STRING_IDS", {"id": "int", "value": "text"}),
    "db_meta": ("META_DATA", {"name": "text", "value": "text"}),
    "db_task": (
        "TASK",
        {
            "startNs": "int", "endNs": "int", "deviceId": "int", "connectionId": "int", "globalTaskId": "int",
            "globalPid": "int", "taskType": "int", "contextId": "int", "streamId": "int", "taskId": "int",
            "modelId": "int",
        },
    ),
    "db_cti": (
        "COMPUTE_TASK_INFO",
        {
            "name": "int", "globalTaskId": "int", "blockNum": "int", "mixBlockNum": "int", "blockDim": "int",
            "mixBlockDim": "int", "taskType": "int", "opType": "int", "inputFormats": "int",
            "inputDataTypes": "int", "inputShapes": "int", "outputFormats": "int", "outputDataTypes": "int",
            "outputShapes": "int", "attrInfo": "int", "opState": "text", "hf32Eligible": "text", "waitNs": "int",
        },
    ),
    "db_comm_op": (
        "COMMUNICATION_OP",
        {
            "opName": "int", "startNs": "int", "endNs": "int", "connectionId": "int", "groupName": "int",
            "opId": "int", "relay": "int", "retry": "int", "dataType": "int", "algType": "int", "count": "float",
            "opType": "int", "deviceId": "int", "rankSize": "int",
        },
    ),
    "db_comm_task": (
        "COMMUNICATION_TASK_INFO",
        {
            "name": "int", "globalTaskId": "int", "taskType": "int", "planeId": "int", "groupName": "int",
            "notifyId": "int", "srcRank": "int", "dstRank": "int", "transportType": "int", "size": "int",
            "dataType": "int", "linkType": "int", "opId": "int",
        },
    ),
    "db_cann": (
        "CANN_API",
        {"startNs": "int", "endNs": "int", "type": "int", "globalTid": "int", "connectionId": "int", "name": "int"},
    ),
    "db_torch": (
        "PYTORCH_API",
        {
            "startNs": "int", "endNs": "int", "globalTid": "int", "connectionId": "int", "name": "int",
            "sequenceNumber": "int", "fwdThreadId": "int", "inputDtypes": "int", "inputShapes": "int",
            "callchainId": "int", "type": "int",
        },
    ),
    "db_callchains": ("PYTORCH_CALLCHAINS", {"id": "int", "stack": "int", "stackDepth": "int"}),
    "db_conn_ids": ("CONNECTION_IDS", {"id": "int", "connectionId": "int"}),
    "db_api_type": ("ENUM_API_TYPE", {"id": "int", "name": "text"}),
    "db_module": ("ENUM_MODULE", {"id": "int", "name": "text"}),
    "db_hccl_dtype": ("ENUM_HCCL_DATA_TYPE", {"id": "int", "name": "text"}),
    "db_hccl_link": ("ENUM_HCCL_LINK_TYPE", {"id": "int", "name": "text"}),
    "db_hccl_transport": ("ENUM_HCCL_TRANSPORT_TYPE", {"id": "int", "name": "text"}),
    "db_memory": (
        "MEMORY_RECORD",
        {
            "component": "int", "timestamp": "int", "totalAllocated": "int", "totalReserved": "int",
            "totalActive": "int", "streamPtr": "int", "deviceId": "int",
        },
    ),
    "db_op_memory": (
        "OP_MEMORY",
        {
            "name": "int", "size": "int", "allocationTime": "int", "releaseTime": "int",
            "allocationTotalAllocated": "int", "allocationTotalReserved": "int", "releaseTotalAllocated": "int",
            "releaseTotalReserved": "int", "streamPtr": "int", "deviceId": "int",
        },
    ),
    "db_npu_mem": ("NPU_MEM", {"type": "int", "ddr": "float", "hbm": "float", "timestampNs": "int", "deviceId": "int"}),
    "db_module_mem": (
        "NPU_MODULE_MEM", {"moduleId": "int", "timestampNs": "int", "totalReserved": "float", "deviceId": "int"}
    ),
    "db_hbm": (
        "HBM", {"deviceId": "int", "timestampNs": "int", "bandwidth": "float", "hbmId": "int", "type": "int"}
    ),
    "db_freq": ("AICORE_FREQ", {"deviceId": "int", "timestampNs": "int", "freq": "float"}),
    "db_step_time": ("STEP_TIME", {"id": "int", "startNs": "int", "endNs": "int"}),
    "db_pmu": ("TASK_PMU_INFO", {"globalTaskId": "int", "name": "int", "value": "float"}),
    "db_npu_info": ("NPU_INFO", {"id": "int", "name": "text"}),
    "db_host_info": ("HOST_INFO", {"hostUid": "text", "hostName": "text"}),
    "db_rank_map": ("RANK_DEVICE_MAP", {"rankId": "int", "deviceId": "int"}),
    "db_mstx": (
        "MSTX_EVENTS",
        {"startNs": "int", "endNs": "int", "message": "int", "globalTid": "int", "connectionId": "int"},
    ),
}

_PMU_COLUMNS = {
    # the per-pipe times (ns here, µs in the text export) and ratios of the PipeUtilization set
    **{
        column.name: (column.headers[0].removesuffix("(us)"), column.kind == "ns")
        for column in KERNEL_COLUMNS
        if column.name.startswith(("aic_", "aiv_")) and column.kind in ("ns", "ratio")
    },
    "aicore_ns": ("aic_total_time", True),
    "aic_total_cycles": ("aic_total_cycles", True),
    "aiv_ns": ("aiv_total_time", True),
    "aiv_total_cycles": ("aiv_total_cycles", True),
    "cube_utilization": ("cube_utilization", False),
}
_API_LEVELS = (
    "CASE lower(a.name) WHEN 'acl' THEN 'AscendCL' WHEN 'runtime' THEN 'Runtime' WHEN 'node' THEN 'Node'"
    " WHEN 'model' THEN 'Model' WHEN 'hccl' THEN 'Hccl' WHEN 'communication' THEN 'Communication'"
    " ELSE coalesce(a.name, 'CANN') END"
)


def _s(column: str) -> str:
    """The interned string of a STRING_IDS id."""
    return f"(SELECT value FROM db_strings WHERE id = {column})"


def _shape(column: str) -> str:
    """A shape list without the literal quotes msprof stores around it."""
    return f"NULLIF(replace({_s(column)}, '\"', ''), 'N/A')"


def _text(column: str) -> str:
    return f"NULLIF({_s(column)}, 'N/A')"


def load_database(st: Staging, path: Path, info: dict) -> None:
    """Copy the known tables of `path` into DuckDB and build the staging tables from them."""
    con = open_readonly(path, st.scratch)
    try:
        source = SqliteSource(con)
        if not any(t in source.tables for t in KNOWN):
            shown = ", ".join(sorted(source.tables)[:6]) or "none"
            expected = "an Ascend profiler database (TASK, COMPUTE_TASK_INFO, CANN_API, ...)"
            raise TraceFormatError(path, f"expected {expected}, found tables {shown}")
        present = {target: source.copy(st, table, target, cols) for target, (table, cols) in _TABLES.items()}
    finally:
        con.close()
    st.sql("CREATE INDEX IF NOT EXISTS strings_id ON db_strings (id)")
    _info(st, info)
    _tasks(st, bool(present["db_cti"]))
    _host(st)
    _links(st)
    _metrics(st)
    _memory_and_counters(st)
    if present["db_step_time"]:
        st.sql("INSERT INTO st_step_ranges SELECT id, startNs, endNs FROM db_step_time")
    st.event_count += int(st.scalar("SELECT count(*) FROM st_slices"))


def load_analysis(st: Staging, path: Path) -> None:
    """`analysis.db` StepTraceTime (µs, despite the docs saying ms) into the steps table."""
    try:
        con = open_readonly(path, st.scratch)
    except TraceFormatError as exc:
        st.warnings.append(f"{path.name}: {exc.problem}; skipped")
        return
    try:
        source = SqliteSource(con)
        names = ("computing", "communication_not_overlapped", "overlapped", "communication", "free", "stage",
                 "bubble", "communication_not_overlapped_and_exclude_receive", "preparing")
        wanted = {"deviceId": "int", "step": "text", **{n: "text" for n in names}}
        if not source.copy(st, "StepTraceTime", "db_step_trace", wanted):
            return
    finally:
        con.close()
    targets = [f"{n}_ns" for n in names]
    targets[-2] = "communication_not_overlapped_exclude_receive_ns"
    values = ", ".join(f"{ns_sql(n)} AS {t}" for n, t in zip(names, targets, strict=True))
    st.sql(
        f"""INSERT INTO st_steps BY NAME
            SELECT TRY_CAST(regexp_extract(step, '(\\d+)', 1) AS BIGINT) AS step, deviceId AS device_id, {values},
                   'analysis.db' AS source
            FROM db_step_trace"""
    )


def _info(st: Staging, info: dict) -> None:
    st.sql(
        "INSERT INTO st_metadata SELECT 'trace', NULL, NULL, name, value FROM db_meta"
        " UNION ALL SELECT 'device', NULL, NULL, CAST(id AS VARCHAR), name FROM db_npu_info"
    )
    names = [r[0] for r in st.con.execute("SELECT name FROM db_npu_info WHERE name IS NOT NULL").fetchall()]
    info["device_names"] = info.get("device_names") or names
    host = st.scalar("SELECT hostName FROM db_host_info LIMIT 1")
    info["host"] = info.get("host") or host
    schema = st.scalar("SELECT value FROM db_meta WHERE name = 'SCHEMA_VERSION'")
    if schema:
        info.setdefault("tool_versions", {})["db_schema"] = schema
    ranks = st.con.execute("SELECT DISTINCT rankId FROM db_rank_map WHERE rankId BETWEEN 0 AND 2147483647").fetchall()
    if not info.get("rank_known") and len(ranks) == 1:
        info["rank"] = int(ranks[0][0])
        info["rank_known"] = True
    comm = st.scalar("SELECT count(*) FROM db_api_type WHERE lower(name) = 'hccl'")
    st.sql(f"CREATE TABLE unit_props AS SELECT {'HCCL' if comm else 'COMMUNICATION'!r} AS comm_core")


def _tasks(st: Staging, has_cti: bool) -> None:
    st.sql(
        """CREATE TABLE conn_ext AS SELECT connectionId, min(id) AS ext FROM db_conn_ids
           WHERE connectionId IS NOT NULL GROUP BY connectionId"""
    )
    st.sql(
        f"""
        CREATE TABLE dtask AS
        SELECT t.rowid AS slice_id, t.*, {_s('t.taskType')} AS task_type,
               c.globalTaskId IS NOT NULL AS is_kernel, h.globalTaskId IS NOT NULL AS is_hccl,
               {_s('c.name')} AS k_name, {_s('c.taskType')} AS core, {_shape('c.inputShapes')} AS shapes,
               {_text('c.inputDataTypes')} AS dtypes, {_s('h.name')} AS h_name, {_s('h.taskType')} AS h_type,
               h.planeId, {_s('h.groupName')} AS h_group, h.srcRank, h.dstRank, h.size AS h_size,
               (SELECT name FROM db_hccl_transport WHERE id = h.transportType) AS h_transport,
               (SELECT name FROM db_hccl_link WHERE id = h.linkType) AS h_link,
               (SELECT name FROM db_hccl_dtype WHERE id = h.dataType) AS h_dtype, h.notifyId, h.opId AS h_op
        FROM db_task t
        LEFT JOIN db_cti c USING (globalTaskId)
        LEFT JOIN (SELECT DISTINCT ON (globalTaskId) * FROM db_comm_task ORDER BY globalTaskId) h USING (globalTaskId)
        """
    )
    kind = task_kind_sql("task_type", "task_type", has_cti)
    st.sql(
        f"""
        INSERT INTO st_slices BY NAME
        SELECT slice_id, startNs AS ts_ns, endNs - startNs AS dur_ns,
               CASE WHEN is_kernel THEN coalesce(k_name, task_type) ELSE task_type END AS name,
               CASE WHEN is_hccl THEN 'hccl_task' ELSE task_type END AS cat,
               CASE WHEN is_kernel THEN 'kernel' ELSE {kind} END AS kind,
               'npu' AS device_type, deviceId AS device_id, CAST(deviceId AS VARCHAR) AS pid,
               CAST(streamId AS VARCHAR) AS tid, streamId AS stream, CASE WHEN is_kernel THEN core END AS core,
               connectionId AS correlation, e.ext AS external_id,
               CASE WHEN is_kernel THEN shapes END AS input_dims, CASE WHEN is_kernel THEN dtypes END AS input_types,
               CAST(json_object('Task Id', taskId, 'Context Id', contextId, 'Model Id', modelId,
                                'Global Task Id', globalTaskId) AS VARCHAR) AS args
        FROM dtask LEFT JOIN conn_ext e USING (connectionId)
        """
    )
    st.sql(
        """
        UPDATE st_slices SET args = CAST(json_merge_patch(st_slices.args, json_object('hccl', json_object(
               'name', h_name, 'task type', h_type, 'plane id', planeId, 'group', h_group, 'src rank', srcRank,
               'dst rank', dstRank, 'size(Byte)', h_size, 'transport type', h_transport, 'link type', h_link,
               'data type', h_dtype, 'notify id', notifyId, 'op id', h_op))) AS VARCHAR)
        FROM dtask WHERE dtask.is_hccl AND st_slices.slice_id = dtask.slice_id
        """
    )
    base = st.next_slice_id()
    st.sql(
        f"""
        INSERT INTO st_slices BY NAME
        SELECT {base} + o.rowid AS slice_id, o.startNs AS ts_ns, o.endNs - o.startNs AS dur_ns,
               {_s('o.opName')} AS name, 'communication_op' AS cat, 'comm' AS kind, 'npu' AS device_type,
               coalesce(o.deviceId, t.device, 0) AS device_id,
               CAST(coalesce(o.deviceId, t.device, 0) AS VARCHAR) AS pid,
               coalesce({_s('o.groupName')}, 'Communication') AS tid, t.stream,
               (SELECT comm_core FROM unit_props) AS core, o.connectionId AS correlation, e.ext AS external_id,
               CAST(json_object('group', {_s('o.groupName')}, 'alg_type', {_s('o.algType')},
                    'data_type', (SELECT name FROM db_hccl_dtype WHERE id = o.dataType), 'count', o.count,
                    'op_type', {_s('o.opType')}, 'relay', o.relay, 'retry', o.retry, 'rank_size', o.rankSize,
                    'op_id', o.opId, 'connection_id', o.connectionId) AS VARCHAR) AS args
        FROM db_comm_op o
        LEFT JOIN (SELECT connectionId, min(streamId) AS stream, min(deviceId) AS device FROM db_task
                   GROUP BY connectionId) t USING (connectionId)
        LEFT JOIN conn_ext e USING (connectionId)
        """
    )
    st.sql(f"CREATE TABLE comm_ids AS SELECT {base} + rowid AS slice_id, opId FROM db_comm_op")
    compute_type = task_kind_sql("task_type", "task_type", False)
    stray_sql = f"SELECT count(*) FROM dtask WHERE NOT is_kernel AND NOT is_hccl AND {compute_type} = 'kernel'"
    stray = int(st.scalar(stray_sql)) if has_cti else 0
    if stray:
        st.warnings.append(
            f"{stray} device tasks of compute type have no COMPUTE_TASK_INFO row: kept as kind 'other'"
        )
    orphans = int(st.scalar("SELECT count(*) FROM db_cti WHERE globalTaskId NOT IN (SELECT globalTaskId FROM db_task)"))
    if orphans:
        st.warnings.append(f"{orphans} COMPUTE_TASK_INFO rows have no TASK row (no times): metrics kept, no slice")


def _host(st: Staging) -> None:
    base = st.next_slice_id()
    st.sql(
        f"""
        INSERT INTO st_slices BY NAME
        SELECT {base} + c.rowid AS slice_id, c.startNs AS ts_ns, c.endNs - c.startNs AS dur_ns,
               {_API_LEVELS} || '@' || coalesce({_s('c.name')}, '?') AS name,
               a.name AS cat, 'runtime' AS kind, 'cpu' AS device_type,
               CAST(c.globalTid >> 32 AS VARCHAR) AS pid, CAST(c.globalTid & 4294967295 AS VARCHAR) AS tid,
               c.connectionId AS correlation, e.ext AS external_id,
               CAST(json_object('connection_id', c.connectionId, 'level', a.name) AS VARCHAR) AS args
        FROM db_cann c LEFT JOIN db_api_type a ON a.id = c.type LEFT JOIN conn_ext e USING (connectionId)
        """
    )
    base = st.next_slice_id()
    st.sql(
        f"""
        CREATE TABLE stacks AS
        SELECT c.id, string_agg({_s('c.stack')}, ';\r\n' ORDER BY c.stackDepth) AS stack
        FROM db_callchains c GROUP BY c.id
        """
    )
    st.sql(
        f"""
        INSERT INTO st_slices BY NAME
        SELECT {base} + p.rowid AS slice_id, p.startNs AS ts_ns, p.endNs - p.startNs AS dur_ns, n.value AS name,
               CASE lower(a.name) WHEN 'op' THEN 'cpu_op' WHEN 'trace' THEN 'python_function'
                    WHEN 'queue' THEN lower(split_part(n.value, '@', 1)) ELSE a.name END AS cat,
               CASE WHEN n.value LIKE 'ProfilerStep#%' THEN 'step' WHEN lower(a.name) = 'op' THEN 'cpu_op'
                    WHEN lower(a.name) = 'trace' THEN 'python' WHEN lower(a.name) = 'mstx' THEN 'annotation'
                    ELSE 'other' END AS kind,
               'cpu' AS device_type, CAST(p.globalTid >> 32 AS VARCHAR) AS pid,
               CAST(p.globalTid & 4294967295 AS VARCHAR) AS tid, p.connectionId AS external_id,
               {_s('p.inputShapes')} AS input_dims, {_s('p.inputDtypes')} AS input_types,
               CAST(json_object('Sequence number', p.sequenceNumber, 'Fwd thread id', p.fwdThreadId,
                                'Call stack', s.stack) AS VARCHAR) AS args
        FROM db_torch p LEFT JOIN db_strings n ON n.id = p.name LEFT JOIN db_api_type a ON a.id = p.type
        LEFT JOIN stacks s ON s.id = p.callchainId
        """
    )
    base = st.next_slice_id()
    st.sql(
        f"""
        INSERT INTO st_slices BY NAME
        SELECT {base} + m.rowid AS slice_id, m.startNs AS ts_ns, greatest(m.endNs - m.startNs, 0) AS dur_ns,
               coalesce({_s('m.message')}, 'mstx') AS name, 'mstx' AS cat, 'annotation' AS kind, 'cpu' AS device_type,
               CAST(m.globalTid >> 32 AS VARCHAR) AS pid, CAST(m.globalTid & 4294967295 AS VARCHAR) AS tid,
               m.connectionId AS correlation, '{{}}' AS args
        FROM db_mstx m WHERE m.startNs IS NOT NULL
        """
    )


def _links(st: Staging) -> None:
    """Flows like the timeline's: CANN launch -> task (HostToDevice), framework op -> task (async_npu)."""
    st.sql(
        """
        INSERT INTO st_flows
        SELECT 'HostToDevice', CAST(d.correlation AS VARCHAR), h.slice_id, d.slice_id
        FROM st_slices d JOIN st_slices h ON h.kind = 'runtime' AND h.correlation = d.correlation
        WHERE d.device_type = 'npu' AND d.correlation IS NOT NULL
        """
    )
    st.sql(
        """
        INSERT INTO st_flows
        SELECT 'async_npu', CAST(o.external_id AS VARCHAR), o.slice_id, d.slice_id
        FROM st_slices d JOIN st_slices o ON o.device_type = 'cpu' AND o.kind <> 'runtime'
         AND o.external_id = d.external_id
        WHERE d.device_type = 'npu' AND d.external_id IS NOT NULL
        """
    )


def _metrics(st: Staging) -> None:
    def pick(metric: str, is_int: bool) -> str:
        value = f"max(value) FILTER (WHERE metric = '{metric}')"
        return f"CAST(round({value}) AS BIGINT)" if is_int else value

    wide = ", ".join(f"{pick(metric, is_int)} AS {column}" for column, (metric, is_int) in _PMU_COLUMNS.items())
    known = ", ".join(f"'{metric}'" for metric, _ in _PMU_COLUMNS.values())
    st.sql(
        """CREATE TABLE pmu_long AS
           SELECT p.globalTaskId, s.value AS metric, p.value FROM db_pmu p JOIN db_strings s ON s.id = p.name"""
    )
    st.sql(
        f"""
        CREATE TABLE pmu AS
        WITH w AS (SELECT globalTaskId, {wide} FROM pmu_long GROUP BY globalTaskId),
             r AS (SELECT globalTaskId, json_group_object(metric, value) AS rest FROM pmu_long
                   WHERE metric NOT IN ({known}) GROUP BY globalTaskId)
        SELECT * FROM w LEFT JOIN r USING (globalTaskId)
        """
    )
    st.sql(
        """
        CREATE TABLE items AS
        SELECT t.slice_id, t.deviceId AS device_id, t.startNs AS ts_ns, t.endNs - t.startNs AS dur_ns,
               c.globalTaskId, c.waitNs, false AS is_comm
        FROM db_cti c LEFT JOIN dtask t USING (globalTaskId)
        UNION ALL
        SELECT i.slice_id, s.device_id, s.ts_ns, s.dur_ns, NULL, NULL, true
        FROM comm_ids i JOIN st_slices s USING (slice_id)
        """
    )
    # op_summary's Wait Time: gap to the previous kernel or communication op on the device.
    st.sql(
        """
        CREATE TABLE waits AS
        SELECT slice_id, coalesce(waitNs, greatest(0, ts_ns - lag(ts_ns + dur_ns) OVER w), 0) AS wait_ns
        FROM items WHERE slice_id IS NOT NULL
        WINDOW w AS (PARTITION BY device_id ORDER BY ts_ns, slice_id)
        """
    )
    st.sql(
        f"""
        INSERT INTO st_metrics BY NAME
        SELECT t.slice_id, t.deviceId AS device_id, {_s('c.name')} AS name,
               NULLIF({_s('c.opType')}, 'N/A') AS op_type, NULLIF({_s('c.taskType')}, 'N/A') AS core,
               t.streamId AS stream, t.taskId AS task_id,
               coalesce({_s('TRY_CAST(c.opState AS BIGINT)')}, c.opState) AS op_state,
               coalesce(c.blockNum, c.blockDim) AS block_dim,
               CASE WHEN c.blockNum IS NOT NULL THEN c.mixBlockNum ELSE c.mixBlockDim END AS mix_block_dim,
               CASE upper(coalesce({_s('TRY_CAST(c.hf32Eligible AS BIGINT)')}, c.hf32Eligible))
                    WHEN 'YES' THEN true WHEN 'NO' THEN false END AS hf32_eligible,
               {_shape('c.inputShapes')} AS input_shapes, {_text('c.inputDataTypes')} AS input_dtypes,
               {_text('c.inputFormats')} AS input_formats, {_shape('c.outputShapes')} AS output_shapes,
               {_text('c.outputDataTypes')} AS output_dtypes, {_text('c.outputFormats')} AS output_formats,
               w.wait_ns, {", ".join(f"p.{name}" for name in _PMU_COLUMNS)},
               NULLIF(t.modelId, {UINT32_MAX}) AS model_id, NULLIF(t.contextId, {UINT32_MAX}) AS context_id,
               CAST(json_merge_patch(coalesce(p.rest, '{{}}'), json_object('attrInfo', {_s('c.attrInfo')}))
                    AS VARCHAR) AS metrics
        FROM db_cti c LEFT JOIN dtask t USING (globalTaskId) LEFT JOIN pmu p USING (globalTaskId)
        LEFT JOIN waits w ON w.slice_id = t.slice_id
        ORDER BY t.startNs
        """
    )
    st.sql(
        """
        INSERT INTO st_metrics BY NAME
        SELECT s.slice_id, s.device_id, s.name, json_extract_string(s.args, '$.op_type') AS op_type, s.core,
               s.stream, w.wait_ns, '{}' AS metrics
        FROM comm_ids i JOIN st_slices s USING (slice_id) LEFT JOIN waits w USING (slice_id)
        ORDER BY s.ts_ns
        """
    )


def _memory_and_counters(st: Staging) -> None:
    st.sql(
        f"""
        INSERT INTO st_memory
        SELECT timestamp, 'npu', deviceId, NULL, NULL, totalAllocated, totalReserved, {_s('component')},
               CAST(streamPtr AS VARCHAR)
        FROM db_memory ORDER BY timestamp
        """
    )
    st.sql(
        f"""
        INSERT INTO st_memory
        SELECT ts, 'npu', deviceId, NULL, bytes, ta, tr, pid, tid FROM (
          SELECT rowid AS r, 0 AS side, allocationTime AS ts, deviceId, size AS bytes, allocationTotalAllocated AS ta,
                 allocationTotalReserved AS tr, {_s('name')} AS tid FROM db_op_memory
          UNION ALL
          SELECT rowid, 1, releaseTime, deviceId, -size, releaseTotalAllocated, releaseTotalReserved, {_s('name')}
          FROM db_op_memory WHERE releaseTime IS NOT NULL
        ) m, LATERAL (SELECT CASE WHEN m.tid LIKE 'aten::%' THEN 'PTA' WHEN m.tid LIKE 'cann::%' THEN 'GE' END AS pid)
        WHERE ts IS NOT NULL ORDER BY r, side
        """
    )
    kind = f"CASE lower({_s('type')}) WHEN 'app' THEN 'APP' WHEN 'device' THEN 'Device' ELSE {_s('type')} END"
    st.sql(
        f"""
        INSERT INTO st_counters
        SELECT timestampNs, CAST(deviceId AS VARCHAR), k || suffix, 'bytes', v, 'bytes' FROM (
          SELECT timestampNs, deviceId, {kind} AS k, ddr, hbm FROM db_npu_mem
        ), LATERAL (VALUES ('/DDR', ddr), ('/HBM', hbm), ('/Memory', ddr + hbm)) AS x(suffix, v)
        WHERE v IS NOT NULL ORDER BY timestampNs
        """
    )
    st.sql(
        """
        INSERT INTO st_counters
        SELECT m.timestampNs, CAST(m.deviceId AS VARCHAR),
               'module_mem/' || coalesce(e.name, CAST(m.moduleId AS VARCHAR)), 'bytes', m.totalReserved, 'bytes'
        FROM db_module_mem m LEFT JOIN db_module e ON e.id = m.moduleId WHERE m.totalReserved >= 0
        ORDER BY m.timestampNs
        """
    )
    st.sql(
        f"""
        INSERT INTO st_counters
        SELECT timestampNs, CAST(deviceId AS VARCHAR),
               'HBM ' || hbmId || '/' || CASE lower({_s('type')}) WHEN 'read' THEN 'Read' WHEN 'write' THEN 'Write'
                                              ELSE {_s('type')} END,
               'bytes/s', bandwidth, 'bytes/s'
        FROM db_hbm ORDER BY timestampNs
        """
    )
    st.sql(
        """INSERT INTO st_counters SELECT timestampNs, CAST(deviceId AS VARCHAR), 'AI Core Freq', 'MHz', freq, 'MHz'
           FROM db_freq ORDER BY timestampNs"""
    )
