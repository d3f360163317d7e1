"""Timeline JSON (`trace_view.json`, msprof `msprof_*.json`) into staging tables.

The file is a bare array of Chrome trace events. Ascend-specific reading:
* pids are synthetic (`pid << 10 | sort_index << 5 | device`) and the sort index moved between
  versions, so tracks are identified by their `process_name` metadata only;
* `ts` is a string of µs with 3 decimals, read as DECIMAL (exact ns);
* the communication sub-tasks on `Plane N` threads are the same device tasks as on the
  `Ascend Hardware` streams; their details are merged into those tasks, not counted twice;
* `Overlap Analysis` intervals are derived by the profiler from the tasks, and are not kept.

Result tables on the staging connection: `xe` (duration events with a role), `flow_bound` (flow
points bound to the event they start or end in), counters and metadata rows.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .. import jsonscan
from ..counters import counter_rows_sql
from ..errors import TraceFormatError
from .csv_util import quote
from .staging import Staging

_COLUMNS = (
    "{'ph': 'VARCHAR', 'cat': 'VARCHAR', 'name': 'VARCHAR', 'pid': 'VARCHAR', 'tid': 'VARCHAR',"
    " 'ts': 'DECIMAL(38,9)', 'dur': 'DECIMAL(38,9)', 'id': 'VARCHAR', 'bp': 'VARCHAR', 'args': 'JSON'}"
)
_API_PREFIX = "^(AscendCL|Runtime|Node|Model|Hccl|Communication|GE|acl_to_npu|Mstx)@"
_ROLE_SQL = f"""
CASE
  WHEN p.pname = 'Ascend Hardware' THEN 'task'
  WHEN p.pname IN ('HCCL', 'Communication') THEN CASE WHEN t.tname LIKE 'Plane%' THEN 'hccl_task' ELSE 'comm' END
  WHEN p.pname = 'Overlap Analysis' THEN 'overlap'
  WHEN p.pname = 'CANN' OR regexp_matches(e.name, '{_API_PREFIX}') THEN 'api'
  WHEN p.label LIKE 'NPU%' THEN 'device_other'
  ELSE 'host'
END
"""
def host_kind_sql(name: str, cat: str) -> str:
    """Kind of a host event from its name and category."""
    return f"""
    CASE
      WHEN {name} LIKE 'ProfilerStep#%' THEN 'step'
      WHEN lower({cat}) IN ('cpu_op', 'operator') THEN 'cpu_op'
      WHEN lower({cat}) = 'python_function' THEN 'python'
      WHEN lower({cat}) IN ('user_annotation', 'mstx', 'msprof_tx', 'msproftx') THEN 'annotation'
      ELSE 'other'
    END
    """


def task_kind_sql(task_type: str, name: str, have_kernel_table: bool) -> str:
    """Kind of a device task from its hardware task type; compute tasks are kernels only where no
    kernel table (kernel_details / op_summary / COMPUTE_TASK_INFO) says which tasks are kernels."""
    tt = f"upper(replace(coalesce({task_type}, ''), ' ', '_'))"
    compute = "'other'" if have_kernel_table else "'kernel'"
    return f"""
    CASE
      WHEN {tt} LIKE '%MEMCPY%' OR {tt} LIKE '%DMA%' OR upper({name}) LIKE 'MEMCPY%' THEN 'memcpy'
      WHEN {tt} LIKE '%EVENT%' OR {tt} LIKE '%NOTIFY%' OR {tt} LIKE 'WRITE_VALUE%' OR {tt} LIKE '%BARRIER%'
           OR {tt} LIKE 'STREAM_WAIT%' OR {tt} LIKE '%SYNC%' THEN 'sync'
      WHEN {tt} LIKE 'PLACE_HOLDER%' OR {tt} LIKE 'PROFILING%' OR {tt} LIKE '%MAINTENANCE%' OR {tt} LIKE 'MODEL_%'
           THEN 'other'
      ELSE {compute}
    END
    """


def load_timelines(st: Staging, paths: list[Path]) -> None:
    """Read one timeline (or the slices of a sliced msprof timeline) into `ev`, then derive `xe`."""
    st.sql(
        "CREATE TABLE ev (eid BIGINT, ph VARCHAR, cat VARCHAR, name VARCHAR, pid VARCHAR, tid VARCHAR,"
        " ts DECIMAL(38,9), dur DECIMAL(38,9), id VARCHAR, bp VARCHAR, args JSON)"
    )
    offset = 0
    for path in paths:
        offset += _load_one(st, path, offset)
    st.event_count += offset
    _derive(st)


def _load_one(st: Staging, path: Path, offset: int) -> int:
    try:
        extracted = jsonscan.extract_events(path, st.scratch)
    except TraceFormatError as exc:
        problem = exc.problem.replace("a Chrome/Kineto JSON trace", "an Ascend timeline (a JSON array of trace events)")
        raise TraceFormatError(path, problem) from exc
    if extracted.form != "array" and not extracted.top_level and extracted.json_bytes < 16:
        raise TraceFormatError(path, "expected a JSON array of trace events, found an empty object")
    events_path = extracted.events_path
    st.warnings += [f"{path.name}: {w}" for w in extracted.warnings]
    damaged = not extracted.complete
    if not damaged:
        try:
            _insert(st, events_path, offset)
        except duckdb.Error:
            damaged = True
    if damaged:
        st.sql("DELETE FROM ev WHERE eid >= ?", [offset])
        rec = jsonscan.recover_events(events_path, st.scratch / f"{path.name}.recovered.json")
        events_path.unlink(missing_ok=True)
        events_path = rec.events_path
        _insert(st, events_path, offset)
        if rec.kept == 0:
            raise TraceFormatError(path, "expected a JSON array of trace events, found a truncated file with none")
        where = f" at byte {rec.damage_offset} of the event array" if rec.damage_offset is not None else ""
        st.warnings.append(f"{path.name}: timeline is truncated or damaged{where}: kept {rec.kept} complete events")
        if rec.skipped:
            st.warnings.append(f"{path.name}: {rec.skipped} malformed events were skipped")
    events_path.unlink(missing_ok=True)
    count = int(st.scalar(f"SELECT count(*) FROM ev WHERE eid >= {offset}"))
    if count and not int(st.scalar(f"SELECT count(ph) FROM ev WHERE eid >= {offset}")):
        raise TraceFormatError(path, "expected trace events with a 'ph' field, found JSON objects without one")
    return count


def _insert(st: Staging, events_path: Path, offset: int) -> None:
    st.sql(
        f"CREATE OR REPLACE TEMP TABLE ev_part AS SELECT * FROM read_json({quote(events_path)}, format='array',"
        f" records=true, ignore_errors=true, columns={_COLUMNS})"
    )
    st.sql(f"INSERT INTO ev SELECT rowid + {offset}, ph, cat, name, pid, tid, ts, dur, id, bp, args FROM ev_part")
    st.sql("DROP TABLE ev_part")


def _derive(st: Staging) -> None:
    st.sql(
        """
        CREATE TABLE procs AS
        SELECT pid,
               any_value(json_extract_string(args, '$.name')) FILTER (WHERE name = 'process_name') AS pname,
               any_value(json_extract_string(args, '$.labels')) FILTER (WHERE name = 'process_labels') AS label
        FROM ev WHERE ph = 'M' GROUP BY pid
        """
    )
    st.sql(
        """
        CREATE TABLE threads AS
        SELECT pid, tid, any_value(json_extract_string(args, '$.name')) AS tname
        FROM ev WHERE ph = 'M' AND name = 'thread_name' GROUP BY pid, tid
        """
    )
    args = (
        "['$.\"Task Type\"', '$.\"Physic Stream Id\"', '$.\"Stream Id\"', '$.\"Task Id\"', '$.\"Subtask Id\"',"
        " '$.connection_id', '$.\"stream id\"', '$.\"task id\"', '$.\"context id\"', '$.level',"
        " '$.\"Input Dims\"', '$.\"Input type\"']"
    )
    st.sql(
        f"""
        CREATE TABLE xe AS
        WITH a AS (
          SELECT e.eid, e.name, e.cat, e.pid, e.tid, e.ts, e.dur, e.args, p.pname, p.label, t.tname,
                 {_ROLE_SQL} AS role, json_extract_string(e.args, {args}) AS av
          FROM ev e LEFT JOIN procs p USING (pid) LEFT JOIN threads t USING (pid, tid)
          WHERE e.ph = 'X' AND e.ts IS NOT NULL
        )
        SELECT eid, CAST(round(ts * 1000) AS BIGINT) AS ts_ns, CAST(round(coalesce(dur, 0) * 1000) AS BIGINT) AS dur_ns,
               name, cat, pid, tid, CAST(coalesce(args, '{{}}') AS VARCHAR) AS args, pname, label, tname, role,
               av[1] AS task_type,
               coalesce(TRY_CAST(av[2] AS BIGINT), TRY_CAST(av[3] AS BIGINT), TRY_CAST(av[7] AS BIGINT),
                        CASE WHEN role = 'task' THEN TRY_CAST(tid AS BIGINT) END) AS stream,
               coalesce(TRY_CAST(av[4] AS BIGINT), TRY_CAST(av[8] AS BIGINT)) AS task_id,
               coalesce(TRY_CAST(av[5] AS BIGINT), TRY_CAST(av[9] AS BIGINT)) AS subtask_id,
               TRY_CAST(av[6] AS BIGINT) AS connection_id,
               av[10] AS level, av[11] AS input_dims, av[12] AS input_types,
               coalesce(TRY_CAST(regexp_extract(label, 'NPU\\s*(\\d+)', 1) AS INTEGER),
                        CASE WHEN TRY_CAST(pid AS BIGINT) >= 1024
                             THEN CAST(TRY_CAST(pid AS BIGINT) & 31 AS INTEGER) END) AS device_id
        FROM a
        """
    )
    skipped = int(st.scalar("SELECT count(*) FROM ev WHERE ph = 'X' AND ts IS NULL"))
    if skipped:
        st.warnings.append(f"{skipped} timeline events had no usable ts and were skipped")
    _bind_flows(st)
    _counters(st)
    _metadata(st)


def _bind_flows(st: Staging) -> None:
    st.sql(
        """
        CREATE TABLE flow_points AS
        SELECT eid, ph, cat, id, pid, tid, CAST(round(ts * 1000) AS BIGINT) AS ts_ns
        FROM ev WHERE ph IN ('s', 't', 'f') AND ts IS NOT NULL
        """
    )
    st.sql(
        """
        CREATE TABLE flow_bound AS
        SELECT f.*, CASE WHEN x.ts_ns + x.dur_ns >= f.ts_ns THEN x.eid END AS bound_eid
        FROM flow_points f ASOF LEFT JOIN (SELECT eid, pid, tid, ts_ns, dur_ns FROM xe WHERE role <> 'overlap') x
          ON f.pid = x.pid AND f.tid = x.tid AND f.ts_ns >= x.ts_ns
        """
    )


def _counters(st: Staging) -> None:
    # NPU MEM counters are KB and HBM/LLC bandwidths MB/s (binary prefixes); normalised to bytes and bytes/s.
    rows = counter_rows_sql("ev", "eid", "CAST(round(e.ts * 1000) AS BIGINT)", binary=True, unit_as_series=True)
    st.sql(f"INSERT INTO st_counters SELECT * FROM ({rows}) WHERE value IS NOT NULL")


def _metadata(st: Staging) -> None:
    st.sql(
        """
        INSERT INTO st_metadata
        SELECT CASE WHEN name LIKE 'thread%' THEN 'thread' WHEN name LIKE 'process%' THEN 'process' ELSE 'other' END,
               pid, tid, name,
               coalesce(json_extract_string(args, ['$.name', '$.labels', '$.sort_index'])
                          .list_filter(lambda v: v IS NOT NULL)[1], CAST(args AS VARCHAR))
        FROM ev WHERE ph = 'M' ORDER BY eid
        """
    )
    st.sql(
        """
        INSERT INTO st_instants
        SELECT CAST(round(ts * 1000) AS BIGINT), name, cat, pid, tid, 't', CAST(coalesce(args, '{}') AS VARCHAR)
        FROM ev WHERE ph IN ('i', 'I', 'R') AND ts IS NOT NULL ORDER BY eid
        """
    )


def has_counter_track(st: Staging, process_name: str) -> bool:
    """True when the timeline holds counters of the named process (e.g. `NPU MEM`)."""
    return bool(
        st.scalar(
            f"SELECT count(*) FROM ev e JOIN procs p USING (pid) WHERE e.ph = 'C' AND p.pname = {quote(process_name)}"
        )
    )
