"""The CSVs around the kernels: memory, module memory, npu_mem, step breakdown, statistics.

torch_npu and msprof write the same tables with different units in the headers (msprof KB,
torch_npu MB) and with or without a `Device_id` column; units are read from the header and
everything is normalised to bytes and ns. A file whose header is not recognised is skipped with
a warning: the rest of the dump is still worth ingesting.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import TraceFormatError
from .csv_util import (
    bytes_sql,
    clean_sql,
    ident,
    int_sql,
    load_csvs,
    ns_sql,
    pick,
    pick_prefix,
    quote,
    read_header,
    settle_scientific,
    unit_factor,
)
from .staging import Staging
from .timeline import task_kind_sql


def _load(st: Staging, paths: list[Path], table: str, required: tuple[str, ...]) -> list[str] | None:
    """Load CSV parts into `table`; None (and a warning) when a required column is missing."""
    try:
        header = read_header(paths[0])
    except TraceFormatError as exc:
        st.warnings.append(f"{paths[0].name}: {exc.problem}; skipped")
        return None
    missing = [name for name in required if pick_prefix(header, name) is None]
    if missing:
        shown = ", ".join(header[:5])
        st.warnings.append(
            f"{paths[0].name}: unrecognised header (expected {', '.join(required)}; found {shown!r}); skipped"
        )
        return None
    return load_csvs(st.con, paths, table, header)


def _required(columns: list[str], name: str) -> str:
    """A column `_load` required: the one of that name, else the one its prefix check found."""
    column = pick(columns, name) or pick_prefix(columns, name)
    if column is None:  # `_load` skips a file without it: a bug here, not bad input
        raise KeyError(f"{name!r} is not among the required columns")
    return column


def _device_sql(columns: list[str]) -> tuple[str, str]:
    """(device_type, device_id) expressions from `Device Type`/`Device` (`NPU:0`) and `Device_id`."""
    text = pick(columns, "Device Type", "Device")
    dev = clean_sql(ident(text)) if text else "NULL"
    dev_id = pick(columns, "Device_id")
    id_sql = f"TRY_CAST({int_sql(ident(dev_id))} AS INTEGER)" if dev_id else "NULL"
    device_type = f"CASE WHEN {dev} ILIKE 'CPU%' THEN 'cpu' ELSE 'npu' END"
    device_id = (
        f"coalesce(TRY_CAST(regexp_extract({dev}, '(\\d+)\\s*$', 1) AS INTEGER), {id_sql},"
        f" CASE WHEN {dev} ILIKE 'CPU%' THEN -1 END)"
    )
    return device_type, device_id


def _bytes(columns: list[str], prefix: str) -> str:
    column = pick_prefix(columns, prefix)
    if column is None:
        return "NULL"
    return bytes_sql(ident(column), unit_factor(column) or 1)


def _settle_scientific(st: Staging, table: str, path: Path, times: list[str | None], amounts: list[str | None]) -> None:
    """Read the numbers a spreadsheet wrote in scientific notation exactly, or refuse them (read as missing),
    with a warning each: times (µs) must be whole ns, byte amounts whole bytes."""
    specs = [(c, 1000, "ns") for c in times if c] + [(c, unit_factor(c) or 1, "bytes") for c in amounts if c]
    for column, multiplier, unit in specs:
        count = settle_scientific(st.con, table, column, multiplier)
        if count.read:
            st.warnings.append(
                f"{path.name}: {count.read} {column} values in scientific notation (e.g. {count.example_read})"
                " read exactly as written; a spreadsheet that wrote them may have rounded them"
            )
        if count.refused:
            st.warnings.append(
                f"{path.name}: {count.refused} {column} values in scientific notation refused"
                f" (e.g. {count.example_refused}: not a whole number of {unit}); read as missing"
            )


def memory_record(st: Staging, paths: list[Path]) -> None:
    """`memory_record.csv`: allocator totals over time, per component (PTA, GE, APP, ...)."""
    columns = _load(st, paths, "mem_raw", ("Component", "Timestamp(us)"))
    if columns is None:
        return
    time = _required(columns, "Timestamp(us)")
    amounts = [pick_prefix(columns, "Total Allocated("), pick_prefix(columns, "Total Reserved(")]
    _settle_scientific(st, "mem_raw", paths[0], [time], amounts)
    device_type, device_id = _device_sql(columns)
    stream = pick(columns, "Stream Ptr")
    st.sql(
        f"""
        INSERT INTO st_memory
        SELECT * FROM (
          SELECT {ns_sql(ident(time))} AS ts_ns, {device_type}, {device_id}, NULL, NULL,
                 {_bytes(columns, 'Total Allocated(')}, {_bytes(columns, 'Total Reserved(')},
                 {clean_sql(ident(_required(columns, 'Component')))},
                 {clean_sql(ident(stream)) if stream else 'NULL'}
          FROM mem_raw
        ) WHERE ts_ns IS NOT NULL
        """
    )
    st.sql("DROP TABLE mem_raw")


_OPERATOR_AMOUNTS = (
    "Size(",
    "Allocation Total Allocated(",
    "Allocation Total Reserved(",
    "Release Total Allocated(",
    "Release Total Reserved(",
)


def operator_memory(st: Staging, paths: list[Path]) -> None:
    """`operator_memory.csv`: one allocation per row, as an allocation and (when seen) a free."""
    columns = _load(st, paths, "opmem_raw", ("Name", "Size(", "Allocation Time(us)"))
    if columns is None:
        return
    release_col = pick(columns, "Release Time(us)")
    duration_col = pick(columns, "Duration(us)")
    amounts = [pick_prefix(columns, prefix) for prefix in _OPERATOR_AMOUNTS]
    times = [_required(columns, "Allocation Time(us)"), release_col, duration_col]
    _settle_scientific(st, "opmem_raw", paths[0], times, amounts)
    device_type, device_id = _device_sql(columns)
    alloc = ns_sql(ident(_required(columns, "Allocation Time(us)")))
    if release_col:
        release = ns_sql(ident(release_col))
    elif duration_col:
        release = f"{alloc} + {ns_sql(ident(duration_col))}"
    else:
        release = "NULL"
    size = _bytes(columns, "Size(")
    name = clean_sql(ident(_required(columns, "Name")))
    component = f"CASE WHEN {name} LIKE 'aten::%' THEN 'PTA' WHEN {name} LIKE 'cann::%' THEN 'GE' END"
    st.sql(
        f"""
        INSERT INTO st_memory
        SELECT ts_ns, device_type, device_id, NULL, bytes, total_allocated, total_reserved, pid, tid FROM (
          SELECT rowid AS r, 0 AS side, {alloc} AS ts_ns, {device_type} AS device_type, {device_id} AS device_id,
                 {size} AS bytes, {_bytes(columns, 'Allocation Total Allocated(')} AS total_allocated,
                 {_bytes(columns, 'Allocation Total Reserved(')} AS total_reserved, {component} AS pid, {name} AS tid
          FROM opmem_raw
          UNION ALL
          SELECT rowid, 1, {release}, {device_type}, {device_id}, -({size}),
                 {_bytes(columns, 'Release Total Allocated(')}, {_bytes(columns, 'Release Total Reserved(')},
                 {component}, {name}
          FROM opmem_raw WHERE {release} IS NOT NULL
        ) WHERE ts_ns IS NOT NULL ORDER BY r, side
        """
    )
    st.sql("DROP TABLE opmem_raw")


def npu_module_mem(st: Staging, paths: list[Path]) -> None:
    """`npu_module_mem.csv`: memory reserved per CANN module, as counters `module_mem/<module>`."""
    columns = _load(st, paths, "modmem_raw", ("Component", "Timestamp(us)", "Total Reserved("))
    if columns is None:
        return
    time = _required(columns, "Timestamp(us)")
    _settle_scientific(st, "modmem_raw", paths[0], [time], [pick_prefix(columns, "Total Reserved(")])
    _, device_id = _device_sql(columns)
    reserved = _bytes(columns, "Total Reserved(")
    st.sql(
        f"""
        INSERT INTO st_counters
        SELECT {ns_sql(ident(time))}, CAST({device_id} AS VARCHAR),
               'module_mem/' || {clean_sql(ident(_required(columns, 'Component')))}, 'bytes', {reserved}, 'bytes'
        FROM modmem_raw WHERE {reserved} >= 0 AND {ns_sql(ident(time))} IS NOT NULL
        """
    )
    st.sql("DROP TABLE modmem_raw")


def npu_mem(st: Staging, paths: list[Path]) -> None:
    """msprof `npu_mem_*.csv` (KB): process and device memory, as counters `APP/HBM`, ... like the timeline."""
    columns = _load(st, paths, "npumem_raw", ("event", "timestamp(us)"))
    if columns is None:
        return
    time = _required(columns, "timestamp(us)")
    kinds = (("ddr(", "DDR"), ("hbm(", "HBM"), ("memory(", "Memory"))
    _settle_scientific(st, "npumem_raw", paths[0], [time], [pick_prefix(columns, prefix) for prefix, _ in kinds])
    event = clean_sql(ident(_required(columns, "event")))
    dev = pick(columns, "Device_id")
    pid = f"CAST({int_sql(ident(dev))} AS VARCHAR)" if dev else "NULL"
    ts = ns_sql(ident(time))
    parts = []
    for prefix, label in kinds:
        if pick_prefix(columns, prefix):
            parts.append(
                f"SELECT {ts}, {pid}, {event} || '/{label}', 'bytes', {_bytes(columns, prefix)}, 'bytes'"
                f" FROM npumem_raw WHERE {ts} IS NOT NULL"
            )
    if parts:
        st.sql("INSERT INTO st_counters " + " UNION ALL ".join(parts))
    st.sql("DROP TABLE npumem_raw")


_STEP_COLUMNS = (
    ("computing_ns", "Computing"),
    ("communication_not_overlapped_ns", "Communication(Not Overlapped)"),
    ("overlapped_ns", "Overlapped"),
    ("communication_ns", "Communication"),
    ("free_ns", "Free"),
    ("stage_ns", "Stage"),
    ("bubble_ns", "Bubble"),
    ("communication_not_overlapped_exclude_receive_ns", "Communication(Not Overlapped and Exclude Receive)"),
    ("preparing_ns", "Preparing"),
)


def step_trace_time(st: Staging, paths: list[Path]) -> None:
    """`step_trace_time.csv`: the profiler's per-step breakdown (µs) into the steps table."""
    columns = _load(st, paths, "steps_raw", ("Step", "Computing"))
    if columns is None:
        return
    values = ", ".join(
        f"{ns_sql(ident(column)) if (column := pick(columns, header)) else 'NULL'} AS {name}"
        for name, header in _STEP_COLUMNS
    )
    dev = pick(columns, "Device_id")
    st.sql(
        f"""
        INSERT INTO st_steps BY NAME
        SELECT TRY_CAST(regexp_extract({clean_sql(ident(_required(columns, 'Step')))}, '(\\d+)', 1) AS BIGINT) AS step,
               {f'CAST({int_sql(ident(dev))} AS INTEGER)' if dev else 'NULL'} AS device_id, {values},
               {quote(paths[0].name)} AS source
        FROM steps_raw
        """
    )
    st.sql("DROP TABLE steps_raw")


def statistics(st: Staging, paths: list[Path], kind: str, key_names: tuple[str, ...]) -> None:
    """Summary CSVs (op_statistic, api_statistic, hbm) as metadata rows: key = the row's name, value = JSON."""
    columns = _load(st, paths, "stat_raw", ())
    if columns is None:
        return
    key = pick(columns, *key_names)
    key_sql = clean_sql(ident(key)) if key else "CAST(rowid AS VARCHAR)"
    st.sql(
        f"INSERT INTO st_metadata SELECT {quote(kind)}, NULL, NULL, {key_sql}, CAST(to_json(t) AS VARCHAR)"
        " FROM stat_raw t"
    )
    st.sql("DROP TABLE stat_raw")


def task_time(st: Staging, paths: list[Path]) -> None:
    """msprof `task_time_*.csv`, read when there is no timeline: every device task. Tasks that are
    kernel rows (same name, start within 2 ns) are already slices; the others (memcpy, event
    record/wait, ...) are added."""
    columns = _load(st, paths, "tt_raw", ("kernel_name", "task_start(us)"))
    if columns is None:
        return
    dev = pick(columns, "Device_id")
    stop = pick(columns, "task_stop(us)")
    time = pick(columns, "task_time(us)")
    start = ns_sql(ident(_required(columns, "task_start(us)")))
    duration = f"{ns_sql(ident(stop))} - {start}" if stop else (ns_sql(ident(time)) if time else "0")
    ttype = pick(columns, "kernel_type")
    stream = pick(columns, "stream_id")
    task = pick(columns, "task_id")
    st.sql(
        f"""
        CREATE TABLE tt AS
        SELECT {clean_sql(ident(_required(columns, 'kernel_name')))} AS name,
               {clean_sql(ident(ttype)) if ttype else 'NULL'} AS task_type,
               {f'CAST({int_sql(ident(dev))} AS INTEGER)' if dev else 'NULL'} AS device_id,
               {int_sql(ident(stream)) if stream else 'NULL'} AS stream,
               {int_sql(ident(task)) if task else 'NULL'} AS task_id,
               {start} AS ts_ns, {duration} AS dur_ns
        FROM tt_raw WHERE {start} IS NOT NULL
        """
    )
    base = st.next_slice_id()
    st.sql(
        f"""
        INSERT INTO st_slices BY NAME
        WITH m AS (
          SELECT t.rowid AS r, k.ts_ns AS kts FROM tt t
          ASOF LEFT JOIN (SELECT name, ts_ns FROM kd) k ON t.name = k.name AND t.ts_ns + 2 >= k.ts_ns
        )
        SELECT {base} + t.rowid AS slice_id, t.ts_ns, t.dur_ns, t.name, t.task_type AS cat,
               {task_kind_sql('t.task_type', 't.name', True)} AS kind, 'npu' AS device_type,
               coalesce(t.device_id, 0) AS device_id, CAST(coalesce(t.device_id, 0) AS VARCHAR) AS pid,
               CAST(t.stream AS VARCHAR) AS tid, t.stream,
               CAST(json_object('Task Id', t.task_id) AS VARCHAR) AS args
        FROM tt t JOIN m ON m.r = t.rowid
        WHERE m.kts IS NULL OR t.ts_ns - m.kts > 2
        """
    )
    st.sql("DROP TABLE tt_raw")
