"""msprof collections (`PROF_*`): text deliverables, sliced CSVs, the pre-CANN-8.0 layout and the
`msprof_*.db` export.

The corpus holds no real `mindstudio_profiler_output/`, so these fixtures are written here, into
tmp_path, following `../shared/reference/ascend-formats.md` byte for byte; each writer names the
section whose header it copies. Times are built from integer ns, so expected values are exact.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ascend_support import query, snapshot

from traceview import parsers
from traceview.store import ingest

TS14 = "20230628101510"
PROF = "PROF_000001_20230628101435646_FKFLNPEPPRRCFCBA"
T0 = 1687918510_000_000_000  # 2023-06-28 in ns
DEVICE = 3
HOST_PID = 2001
# formatPid = pid << 10 | sort_index << 5 | device (§3.2); host tracks use device 31.
CANN_PID = HOST_PID << 10 | 7 << 5 | 31
HW_PID = HOST_PID << 10 | 13 << 5 | DEVICE
COMM_PID = HOST_PID << 10 | 15 << 5 | DEVICE
MEM_PID = HOST_PID << 10 | 19 << 5 | DEVICE
HBM_PID = HOST_PID << 10 | 17 << 5 | DEVICE

# §2.1: BASE + TENSOR headers (`Block Num` naming, 2026) + PipeUtilization PMU columns.
OP_SUMMARY_HEADER = (
    "Device_id,Model ID,Task ID,Stream ID,Op Name,OP Type,OP State,Task Type,Task Start Time(us),"
    "Task Duration(us),Task Wait Time(us),Block Num,Mix Block Num,HF32 Eligible,Input Shapes,Input Data Types,"
    "Input Formats,Output Shapes,Output Data Types,Output Formats,Context ID,aicore_time(us),aic_total_cycles,"
    "aic_mac_time(us),aic_mac_ratio,aic_scalar_time(us),aic_scalar_ratio,aic_mte1_time(us),aic_mte1_ratio,"
    "aic_mte2_time(us),aic_mte2_ratio,aic_fixpipe_time(us),aic_fixpipe_ratio,aic_icache_miss_rate,aiv_time(us),"
    "aiv_total_cycles,aiv_vec_time(us),aiv_vec_ratio,aiv_scalar_time(us),aiv_scalar_ratio,aiv_mte2_time(us),"
    "aiv_mte2_ratio,aiv_mte3_time(us),aiv_mte3_ratio,aiv_icache_miss_rate,cube_utilization(%)"
)
PMU_COLUMNS = OP_SUMMARY_HEADER.count(",") + 1 - 21

# (name, op type, task type, stream, task id, start offset ns, duration ns, block num, shapes)
KERNELS = [
    ("aclnnMatmul_MatMulV3Common_MatMulV3", "MatMulV3", "AI_CORE", 2, 61653, 1_000, 185_504, 20, "81920,4096;8192,512"),
    ("aclnnAdd_AddAiCore_Add", "Add", "AI_VECTOR_CORE", 2, 61654, 190_000, 12_345, 40, "4096,512;4096,512"),
    ("aclnnFlashAttentionScore_FlashAttentionScore", "FlashAttentionScore", "MIX_AIC", 2, 61655, 210_000,
     1_234_567, 24, "1,32,4096,128;1,32,4096,128"),
    ("aclnnCast_CastAiCore_Cast", "Cast", "AI_VECTOR_CORE", 2, 61656, 1_450_000, 7_891, 8, "4096,512"),
]
COMM = ("hcom_allReduce__271_0_1", "hcom_allReduce_", 1_500_000, 2_209_224)


def _us(ns: int) -> str:
    return f"{ns // 1000}.{ns % 1000:03d}"


def write_op_summary(path: Path, kernels: list[tuple], comm: bool = True) -> None:
    """§2.1 op_summary rows: timestamps with a trailing TAB, shapes written with literal quotes,
    a COMMUNICATION row with `N/A` ids (GenerateHcclBody), 4294967295 as the invalid Model ID."""
    lines = [OP_SUMMARY_HEADER]
    prev_end = None
    for name, op_type, core, stream, task, start, dur, block, shapes in kernels:
        wait = 0 if prev_end is None else max(0, start - prev_end)
        pmu = ",".join(["0.0"] * PMU_COLUMNS)
        lines.append(
            f'{DEVICE},4294967295,{task},{stream},{name},{op_type},dynamic,{core},{_us(T0 + start)}\t,{_us(dur)},'
            f'{_us(wait)},{block},0,NO,"{shapes}",DT_BF16,ND,"{shapes.split(";")[0]}",DT_BF16,ND,N/A,{pmu}'
        )
        prev_end = start + dur
    if comm:
        name, op_type, start, dur = COMM
        rest = ",".join(["N/A"] * (8 + PMU_COLUMNS))
        lines.append(
            f"{DEVICE},4294967295,N/A,N/A,{name},{op_type},N/A,COMMUNICATION,{_us(T0 + start)}\t,{_us(dur)},0,0,{rest}"
        )
    path.write_text("\n".join(lines) + "\n")


def write_task_time(path: Path) -> None:
    """§2.5 task_time (current layout): every device task, start/stop with a trailing TAB."""
    lines = ["Device_id,kernel_name,kernel_type,stream_id,task_id,task_time(us),task_start(us),task_stop(us)"]
    for name, _, core, stream, task, start, dur, _, _ in KERNELS:
        lines.append(f"{DEVICE},{name},{core},{stream},{task},{_us(dur)},{_us(T0 + start)}\t,{_us(T0 + start + dur)}\t")
    lines.append(f"{DEVICE},MEMCPY_ASYNC,MEMCPY_ASYNC,2,61650,{_us(5_000)},{_us(T0 - 10_000)}\t,{_us(T0 - 5_000)}\t")
    lines.append(f"{DEVICE},EVENT_RECORD,EVENT_RECORD,2,61657,0.020,{_us(T0 + 1_460_000)}\t,{_us(T0 + 1_460_020)}\t")
    path.write_text("\n".join(lines) + "\n")


def write_side_csvs(out: Path) -> None:
    """§2.7 (msprof variants, KB), §2.8 hbm, §2.3 op_statistic, §2.4 api_statistic."""
    (out / f"npu_mem_{TS14}.csv").write_text(
        "Device_id,event,ddr(KB),hbm(KB),memory(KB),timestamp(us)\n"
        f"{DEVICE},APP,0,2160232,2160232,{_us(T0)}\t\n{DEVICE},Device,0,2402736,2402736,{_us(T0)}\t\n"
    )
    (out / f"memory_record_{TS14}.csv").write_text(
        "Device_id,Component,Timestamp(us),Total Allocated(KB),Total Reserved(KB),Device\n"
        f"{DEVICE},GE,{_us(T0 + 500)}\t,1024.5,2048,NPU:{DEVICE}\n"
    )
    (out / f"operator_memory_{TS14}.csv").write_text(
        "Device_id,Name,Size(KB),Allocation Time(us),Duration(us),Allocation Total Allocated(KB),"
        "Allocation Total Reserved(KB),Release Total Allocated(KB),Release Total Reserved(KB),Device\n"
        f"{DEVICE},cann::Graph_70,192,{_us(T0 + 600)}\t,36.730,256,2048,64,2048,NPU:{DEVICE}\n"
    )
    (out / f"npu_module_mem_{TS14}.csv").write_text(
        "Device_id,Component,Timestamp(us),Total Reserved(KB),Device\n"
        f"{DEVICE},HCCL,{_us(T0 + 700)}\t,4096,NPU:{DEVICE}\n{DEVICE},SLOG,{_us(T0 + 700)}\t,-1,NPU:{DEVICE}\n"
    )
    (out / f"hbm_{TS14}.csv").write_text("Device_id,Metric,Read(MB/s),Write(MB/s)\n" f"{DEVICE},0,1234.5,678.25\n")
    (out / f"op_statistic_{TS14}.csv").write_text(
        "Device_id,OP Type,Core Type,Count,Total Time(us),Min Time(us),Avg Time(us),Max Time(us),Ratio(%)\n"
        f"{DEVICE},MatMulV3,AI_CORE,1,185.504,185.504,185.504,185.504,12.5\n"
    )
    (out / f"api_statistic_{TS14}.csv").write_text(
        "Device_id,Level,API Name,Time(us),Count,Avg(us),Min(us),Max(us),Variance\n"
        "host,acl,aclnnMatmul,12.5,1,12.5,12.5,12.5,0\n"
    )


def write_timeline(path: Path) -> None:
    """§3 msprof_{ts}.json: a bare array, string `ts`, float `dur`, formatted pids, HostToDevice flows
    with the current `connectionId << 32` ids (§3.5), NPU MEM (KB) and HBM (MB/s) counters (§3.3)."""
    events: list[dict] = [
        {"name": "process_name", "pid": CANN_PID, "tid": 0, "args": {"name": "CANN"}, "ph": "M"},
        {"name": "process_name", "pid": HW_PID, "tid": 0, "args": {"name": "Ascend Hardware"}, "ph": "M"},
        {"name": "process_labels", "pid": HW_PID, "tid": 0, "args": {"labels": f"NPU {DEVICE}"}, "ph": "M"},
        {"name": "thread_name", "pid": HW_PID, "tid": 2, "args": {"name": "Stream 2"}, "ph": "M"},
        {"name": "process_name", "pid": COMM_PID, "tid": 0, "args": {"name": "Communication"}, "ph": "M"},
        {"name": "thread_name", "pid": COMM_PID, "tid": 0, "args": {"name": "Group hccl_world Communication"},
         "ph": "M"},
        {"name": "process_name", "pid": MEM_PID, "tid": 0, "args": {"name": "NPU MEM"}, "ph": "M"},
        {"name": "process_name", "pid": HBM_PID, "tid": 0, "args": {"name": "HBM"}, "ph": "M"},
        {"name": "APP/HBM", "ts": _us(T0), "pid": MEM_PID, "tid": 0, "args": {"KB": 2160232.0}, "ph": "C"},
        {"name": "HBM 0/Read", "ts": _us(T0), "pid": HBM_PID, "tid": 0, "args": {"Read(MB/s)": 1.5}, "ph": "C"},
    ]
    for conn, (name, _, _core, stream, task, start, dur, _, _) in enumerate(KERNELS, start=100):
        launch = T0 + start - 50_000
        events.append({"name": "Node@launch", "pid": CANN_PID, "tid": 4242, "ts": _us(launch), "dur": 12.5,
                       "args": {"Thread Id": 4242, "Mode": "launch", "level": "node", "id": name, "item_id": "0",
                                "connection_id": conn}, "ph": "X"})
        events.append({"name": f"HostToDevice{conn << 32}", "ph": "s", "cat": "HostToDevice", "id": str(conn << 32),
                       "pid": CANN_PID, "tid": 4242, "ts": _us(launch)})
        # The timeline's dur carries sub-ns digits the CSV rounds away: the CSV's must win.
        events.append({"name": name, "pid": HW_PID, "tid": stream, "ts": _us(T0 + start), "dur": dur / 1000 + 0.0001,
                       "args": {"Model Id": 4294967295, "Task Type": "AI_CORE", "Physic Stream Id": stream,
                                "Task Id": task, "Batch Id": 0, "Subtask Id": 4294967295, "connection_id": conn},
                       "ph": "X"})
        events.append({"name": f"HostToDevice{conn << 32}", "ph": "f", "id": str(conn << 32), "ts": _us(T0 + start),
                       "cat": "HostToDevice", "pid": HW_PID, "tid": stream, "bp": "e"})
    name, _, start, dur = COMM
    events.append({"name": name, "pid": COMM_PID, "tid": 0, "ts": _us(T0 + start), "dur": dur / 1000,
                   "args": {"connection_id": 900, "model id": 4294967295, "data_type": "FP32",
                            "alg_type": "MESH-RING", "count": 4097000, "rank_size": 8}, "ph": "X"})
    path.write_text("[" + ", ".join(json.dumps(e) for e in events) + "]")


def _kernels_total() -> tuple[int, int]:
    return len(KERNELS), sum(k[6] for k in KERNELS)


def _trace_kernels(store: Path) -> tuple[int, int]:
    row = query(store, "SELECT count(*), sum(dur_ns) FROM slices WHERE kind = 'kernel' AND device_type = 'npu'")[0]
    return int(row[0]), int(row[1] or 0)


def test_msprof_text_collection(tmp_path: Path) -> None:
    prof = tmp_path / PROF
    out = prof / "mindstudio_profiler_output"
    out.mkdir(parents=True)
    (prof / "host" / "data").mkdir(parents=True)  # raw data: ignored
    write_op_summary(out / f"op_summary_{TS14}.csv", KERNELS)
    write_op_summary(out / "op_summary_20230101000000.csv", KERNELS[:1], comm=False)  # an older export
    write_timeline(out / f"msprof_{TS14}.json")
    write_side_csvs(out)
    assert parsers.trace_files(tmp_path) == [(prof, "msprof")]
    before = snapshot(tmp_path)
    store = ingest([tmp_path], tmp_path.parent / f"{tmp_path.name}.traceview").store
    assert snapshot(tmp_path) == before
    assert _trace_kernels(store) == _kernels_total()
    first = KERNELS[0]
    assert query(store, "SELECT ts_ns, dur_ns, device_id, stream, core, correlation FROM slices"
                        f" WHERE name = '{first[0]}'") == [(T0 + first[5], first[6], DEVICE, 2, "AI_CORE", 100)]
    metrics = query(store, f"SELECT block_dim, input_shapes, output_shapes, wait_ns FROM npu_kernel_metrics"
                           f" WHERE name = '{KERNELS[1][0]}'")
    assert metrics == [(40, "4096,512;4096,512", "4096,512", 190_000 - 186_504)]
    assert query(store, "SELECT name, core, tid FROM slices WHERE kind = 'comm'") == [
        (COMM[0], "COMMUNICATION", "Group hccl_world Communication")
    ]
    assert query(store, "SELECT count(*) FROM npu_kernel_metrics") == [(len(KERNELS) + 1,)]
    flows = query(store, "SELECT count(*) FROM flows f JOIN slices s ON s.slice_id = f.dst_slice_id"
                         " WHERE f.kind = 'HostToDevice' AND s.kind = 'kernel'")
    assert flows == [(len(KERNELS),)]
    counters = dict(query(store, "SELECT name, value FROM counters WHERE name IN ('APP/HBM', 'HBM 0/Read')"))
    assert counters == {"APP/HBM": 2160232 * 1024, "HBM 0/Read": 1.5 * 1048576}, "the timeline's, in bytes"
    assert query(store, "SELECT count(*) FROM counters WHERE name = 'APP/HBM'") == [(1,)], "npu_mem.csv not twice"
    assert query(store, "SELECT pid, total_allocated, total_reserved, device_id FROM memory WHERE bytes IS NULL") == [
        ("GE", 1049088, 2097152, DEVICE)
    ]
    assert query(store, "SELECT bytes, ts_ns FROM memory WHERE bytes IS NOT NULL ORDER BY ts_ns") == [
        (192 * 1024, T0 + 600), (-192 * 1024, T0 + 600 + 36_730)
    ]
    assert query(store, "SELECT name, value FROM counters WHERE name LIKE 'module_mem/%'") == [
        ("module_mem/HCCL", 4096 * 1024)
    ]
    kinds = dict(query(store, "SELECT kind, count(*) FROM metadata GROUP BY 1"))
    assert kinds["hbm_summary"] == 1 and kinds["op_statistic"] == 1 and kinds["api_statistic"] == 1
    assert query(store, "SELECT format FROM traces") == [("msprof",)]


def test_msprof_sliced_csv_and_task_time_without_timeline(tmp_path: Path) -> None:
    """CSVs over 1,000,000 rows are split into `name_slice_{i}_{ts}.csv` (§1.1 Slicing)."""
    out = tmp_path / PROF / "mindstudio_profiler_output"
    out.mkdir(parents=True)
    write_op_summary(out / f"op_summary_slice_0_{TS14}.csv", KERNELS[:2], comm=False)
    write_op_summary(out / f"op_summary_slice_1_{TS14}.csv", KERNELS[2:])
    write_task_time(out / f"task_time_{TS14}.csv")
    write_side_csvs(out)
    store = ingest([tmp_path / PROF], tmp_path / "s.traceview").store
    assert _trace_kernels(store) == _kernels_total()
    others = query(store, "SELECT name, kind, dur_ns FROM slices WHERE kind NOT IN ('kernel', 'comm') ORDER BY ts_ns")
    assert others == [("MEMCPY_ASYNC", "memcpy", 5_000), ("EVENT_RECORD", "sync", 20)]
    # No timeline: the npu_mem CSV (KB) gives the memory counters.
    assert dict(query(store, "SELECT name, value FROM counters WHERE name LIKE 'APP/%'")) == {
        "APP/DDR": 0, "APP/HBM": 2160232 * 1024, "APP/Memory": 2160232 * 1024
    }


def test_msprof_pre_cann8_device_layout(tmp_path: Path) -> None:
    """CANN 7.0: `device_{n}/summary/op_summary_{dev}_{model}_{ts14}.csv` and `device_{n}/timeline/`
    (§1.1, older layouts table)."""
    prof = tmp_path / PROF
    (prof / "device_0" / "summary").mkdir(parents=True)
    (prof / "device_0" / "timeline").mkdir(parents=True)
    write_op_summary(prof / "device_0" / "summary" / f"op_summary_0_1_{TS14}.csv", KERNELS)
    write_timeline(prof / "device_0" / "timeline" / f"msprof_0_1_{TS14}.json")
    assert parsers.trace_files(tmp_path) == [(prof, "msprof")]
    store = ingest([tmp_path], tmp_path.parent / f"{tmp_path.name}-legacy.traceview").store
    assert _trace_kernels(store) == _kernels_total()
    assert query(store, "SELECT count(*) FROM slices WHERE kind = 'runtime'") == [(len(KERNELS),)]


def _write_db(path: Path) -> None:
    """§4.1 msprof_{ts}.db, current column lists (schema 1.2.0: blockNum/mixBlockNum, plus SIMT
    gridDim/blockDim), with an extra table of a kind MindStudio Insight adds."""
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE STRING_IDS (id INTEGER PRIMARY KEY, value TEXT);
        CREATE TABLE META_DATA (name TEXT, value TEXT);
        CREATE TABLE ENUM_API_TYPE (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE TASK (startNs INTEGER, endNs INTEGER, deviceId INTEGER, connectionId INTEGER,
            globalTaskId INTEGER, globalPid INTEGER, taskType INTEGER, contextId INTEGER, streamId INTEGER,
            taskId INTEGER, modelId INTEGER);
        CREATE TABLE COMPUTE_TASK_INFO (name INTEGER, globalTaskId INTEGER PRIMARY KEY, blockNum INTEGER,
            mixBlockNum INTEGER, taskType INTEGER, opType INTEGER, inputFormats INTEGER, inputDataTypes INTEGER,
            inputShapes INTEGER, outputFormats INTEGER, outputDataTypes INTEGER, outputShapes INTEGER,
            attrInfo INTEGER, opState INTEGER, hf32Eligible INTEGER, gridDim INTEGER, blockDim INTEGER);
        CREATE TABLE COMMUNICATION_OP (opName INTEGER, startNs INTEGER, endNs INTEGER, connectionId INTEGER,
            groupName INTEGER, opId INTEGER PRIMARY KEY, relay INTEGER, retry INTEGER, dataType INTEGER,
            algType INTEGER, count NUMERIC, opType INTEGER, deviceId INTEGER, rankSize INTEGER);
        CREATE TABLE CANN_API (startNs INTEGER, endNs INTEGER, type INTEGER, globalTid INTEGER,
            connectionId INTEGER PRIMARY KEY, name INTEGER);
        CREATE TABLE NPU_MEM (type INTEGER, ddr NUMERIC, hbm NUMERIC, timestampNs INTEGER, deviceId INTEGER);
        CREATE TABLE HBM (deviceId INTEGER, timestampNs INTEGER, bandwidth NUMERIC, hbmId INTEGER, type INTEGER);
        CREATE TABLE status_info (id INTEGER, name TEXT, value TEXT);
        """
    )
    strings = ["KERNEL_AICORE", "AI_CORE", "MatMulV3", '"81920,4096;8192,512"', "DT_BF16", "ND", "dynamic", "NO",
               "hcom_allReduce__1_0_1", "group0", "allReduce", "app", "read", "aclnnMatmul", "MESH-RING"]
    con.executemany("INSERT INTO STRING_IDS VALUES (?, ?)", list(enumerate(strings)))
    con.executemany("INSERT INTO META_DATA VALUES (?, ?)", [("SCHEMA_VERSION", "1.2.0")])
    con.executemany("INSERT INTO ENUM_API_TYPE VALUES (?, ?)", [(20000, "acl"), (5500, "communication")])
    for i in range(3):
        start = T0 + i * 100_000
        con.execute("INSERT INTO TASK VALUES (?, ?, ?, ?, ?, 2001, 0, 0, 2, ?, 4294967295)",
                    (start, start + 50_000 + i, DEVICE, 10 + i, i, 500 + i))
        con.execute("INSERT INTO COMPUTE_TASK_INFO VALUES (2, ?, 24, 0, 1, 2, 5, 4, 3, 5, 4, 3, NULL, 6, 7, 128, 256)",
                    (i,))
        con.execute("INSERT INTO CANN_API VALUES (?, ?, 20000, ?, ?, 13)",
                    (start - 9_000, start - 1_000, (2001 << 32) | 2002, 10 + i))
    con.execute("INSERT INTO COMMUNICATION_OP VALUES (8, ?, ?, 99, 9, 1, 0, 0, 4, 14, 4097000, 10, ?, 8)",
                (T0 + 400_000, T0 + 900_000, DEVICE))
    con.execute("INSERT INTO NPU_MEM VALUES (11, 0, 2212077568, ?, ?)", (T0, DEVICE))
    con.execute("INSERT INTO HBM VALUES (?, ?, 1572864.5, 0, 12)", (DEVICE, T0))
    con.commit()
    con.close()


def test_msprof_database(tmp_path: Path) -> None:
    prof = tmp_path / PROF
    prof.mkdir()
    db = prof / f"msprof_{TS14}.db"
    _write_db(db)
    before = snapshot(tmp_path)
    store = ingest([tmp_path], tmp_path.parent / f"{tmp_path.name}-db.traceview").store
    assert snapshot(tmp_path) == before, "nothing may be written next to the database"
    assert _trace_kernels(store) == (3, 3 * 50_000 + 0 + 1 + 2)
    assert query(store, "SELECT DISTINCT block_dim, input_shapes, op_state, hf32_eligible FROM npu_kernel_metrics"
                        " WHERE core = 'AI_CORE'") == [(24, "81920,4096;8192,512", "dynamic", False)]
    assert query(store, "SELECT name, core, device_id FROM slices WHERE kind = 'comm'") == [
        ("hcom_allReduce__1_0_1", "COMMUNICATION", DEVICE)
    ]
    assert query(store, "SELECT count(*) FROM slices k JOIN slices r ON r.correlation = k.correlation"
                        " WHERE k.kind = 'kernel' AND r.kind = 'runtime'") == [(3,)]
    assert query(store, "SELECT name FROM slices WHERE kind = 'runtime' LIMIT 1") == [("AscendCL@aclnnMatmul",)]
    counters = dict(query(store, "SELECT name || ':' || series, value FROM counters"))
    assert counters["APP/HBM:bytes"] == 2212077568 and counters["HBM 0/Read:bytes/s"] == 1572864.5
    waits = [w for (w,) in query(store, "SELECT wait_ns FROM npu_kernel_metrics WHERE core = 'AI_CORE' ORDER BY 1")]
    assert waits == [0, 49_999, 50_000], "op_summary's Task Wait Time, recomputed"


def test_msprof_database_in_wal_mode_is_read_from_a_copy(tmp_path: Path) -> None:
    db = tmp_path / f"msprof_{TS14}.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("CREATE TABLE TASK (startNs INTEGER, endNs INTEGER, deviceId INTEGER, connectionId INTEGER,"
                " globalTaskId INTEGER, globalPid INTEGER, taskType INTEGER, contextId INTEGER, streamId INTEGER,"
                " taskId INTEGER, modelId INTEGER)")
    con.execute("CREATE TABLE STRING_IDS (id INTEGER PRIMARY KEY, value TEXT)")
    con.execute("INSERT INTO STRING_IDS VALUES (0, 'MEMCPY_ASYNC')")
    con.execute("INSERT INTO TASK VALUES (?, ?, 0, 1, 0, 1, 0, 0, 2, 7, 0)", (T0, T0 + 5_000))
    con.commit()
    wal = db.with_name(db.name + "-wal")
    assert wal.stat().st_size > 0, "the rows are still in the WAL"
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    store = ingest([db], tmp_path.parent / f"{tmp_path.name}-wal.traceview").store
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    con.close()
    assert query(store, "SELECT name, kind, dur_ns FROM slices") == [("MEMCPY_ASYNC", "memcpy", 5_000)]
