"""The CSVs of a torch_npu text export (Jan-2025 torch_npu Level1 layout).

Headers, column order and quirks follow the real export in the corpus
(`ascend/torch_npu_2025_text/level1/rank0_ascend_pt`): no `Device_id` column, `Block Dim`
headers, timestamps ending in a TAB, shapes with literal quotes, CRLF for the CSVs torch_npu
writes itself and LF for the CANN copy (op_statistic).
"""

from __future__ import annotations

import csv
import io
import random
from typing import Any

from .kernels import Kernel
from .timeline import MIB, Run, StepRun

PID_OFFSET, INDEX_OFFSET = 10, 5
SORT_INDEX = {"Ascend Hardware": 13, "NPU MEM": 19, "CANN": 7, "Overlap Analysis": 23}
STREAM = 2
NA = "N/A"
UINT32_MAX = 4294967295
AIC_CORES, AIV_CORES, FREQ_MHZ = 24, 48, 1800
APP_OVERHEAD = 1_650 * MIB  # process HBM besides the PyTorch allocator
DEVICE_OVERHEAD = 240 * MIB
MEM_SAMPLE_NS = 20_000_000
STREAM_PTR = 187651269574656

KERNEL_HEADER = (
    "Step Id,Model ID,Task ID,Stream ID,Name,Type,OP State,Accelerator Core,Start Time(us),"
    "Duration(us),Wait Time(us),Block Dim,Mix Block Dim,HF32 Eligible,Input Shapes,"
    "Input Data Types,Input Formats,Output Shapes,Output Data Types,Output Formats,Context ID,"
    "aicore_time(us),aic_total_cycles,aic_mac_time(us),aic_mac_ratio,aic_scalar_time(us),"
    "aic_scalar_ratio,aic_mte1_time(us),aic_mte1_ratio,aic_mte2_time(us),aic_mte2_ratio,"
    "aic_fixpipe_time(us),aic_fixpipe_ratio,aic_icache_miss_rate,aiv_time(us),aiv_total_cycles,"
    "aiv_vec_time(us),aiv_vec_ratio,aiv_scalar_time(us),aiv_scalar_ratio,aiv_mte2_time(us),"
    "aiv_mte2_ratio,aiv_mte3_time(us),aiv_mte3_ratio,aiv_icache_miss_rate,cube_utilization(%)"
).split(",")
MEMORY_RECORD_HEADER = (
    "Component,Timestamp(us),Total Allocated(MB),Total Reserved(MB),Total Active(MB),Stream Ptr,Device Type"
).split(",")
OPERATOR_MEMORY_HEADER = (
    "Name,Size(KB),Allocation Time(us),Release Time(us),Active Release Time(us),Duration(us),"
    "Active Duration(us),Allocation Total Allocated(MB),Allocation Total Reserved(MB),"
    "Allocation Total Active(MB),Release Total Allocated(MB),Release Total Reserved(MB),"
    "Release Total Active(MB),Stream Ptr,Device Type"
).split(",")
STEP_TRACE_HEADER = (
    "Step,Computing,Communication(Not Overlapped),Overlapped,Communication,Free,Stage,Bubble,"
    "Communication(Not Overlapped and Exclude Receive),Preparing"
).split(",")
OP_STATISTIC_HEADER = ("OP Type,Core Type,Count,Total Time(us),Min Time(us),Avg Time(us),Max Time(us),Ratio(%)").split(
    ","
)


def us(ns: int) -> str:
    """Exact ns as microseconds with three decimals."""
    return f"{ns // 1000}.{ns % 1000:03d}"


def num(x: float) -> str:
    """torch_npu's float cells: rounded to ns, Python float text."""
    return str(round(x, 3))


def mb(nbytes: int) -> str:
    """Bytes as torch_npu's MB cells."""
    return repr(nbytes / MIB)


def format_pid(pid: int, process: str) -> int:
    """msprof/torch_npu synthetic pid: (pid << 10) | (sort_index << 5) | device_id."""
    return (pid << PID_OFFSET) | (SORT_INDEX[process] << INDEX_OFFSET) | 0


def _csv(header: list[str], rows: list[list[Any]], crlf: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def assign_task_ids(run: Run) -> None:
    for task_id, k in enumerate((k for s in run.steps for k in s.kernels), start=11000):
        k.task_id = task_id


def _compute_kernels(run: Run) -> list[tuple[StepRun, Kernel]]:
    assign_task_ids(run)
    return [(s, k) for s in run.steps for k in s.kernels if k.kind == "kernel"]


# -- kernel_details.csv ---------------------------------------------------------------------------


def _pmu(k: Kernel, rng: random.Random) -> list[str]:
    """PipeUtilization columns consistent with the roofline (mac/vec ~ compute, mte2 ~ memory)."""
    dur_us = k.dur / 1000
    comp = min(0.95, max(0.005, k.compute_ns / k.dur))
    memr = min(0.98, max(0.01, k.memory_ns / k.dur))

    def j(lo: float, hi: float) -> float:
        return rng.uniform(lo, hi)

    zero_aic = ["0.0", "0"] + ["0.0"] * 10 + ["0.0"]
    zero_aiv = ["0.0", "0"] + ["0.0"] * 9
    core = k.names.npu_core
    if core in ("AI_CORE", "MIX_AIC"):
        t = dur_us * j(0.97, 0.995)
        cycles = int(t * FREQ_MHZ * k.block_dim)
        ratios = [comp, j(0.15, 0.35), comp * j(0.5, 0.7), memr, comp * j(0.05, 0.15)]
        aic = [num(t), str(cycles)]
        for r in ratios:
            aic += [num(t * r), num(r)]
        aic.append(num(j(0.001, 0.006)))
        cube = num(cycles / (FREQ_MHZ * AIC_CORES * dur_us) * 100)
    else:
        aic, cube = zero_aic, "0"
    if core in ("AI_VECTOR_CORE", "MIX_AIC", "MIX_AIV"):
        t = dur_us * j(0.93, 0.99)
        blocks = k.mix_block_dim if core == "MIX_AIC" else k.block_dim
        cycles = int(t * FREQ_MHZ * blocks)
        vec = comp if core == "AI_VECTOR_CORE" else comp * j(0.2, 0.4)
        ratios = [vec, j(0.05, 0.3), memr, memr * j(0.3, 0.6)]
        aiv = [num(t), str(cycles)]
        for r in ratios:
            aiv += [num(t * r), num(r)]
        aiv.append(num(j(0.01, 0.05)))
    else:
        aiv = zero_aiv
    return aic + aiv + [cube]


def kernel_details(run: Run) -> str:
    """One row per compute task, in start order."""
    rng = random.Random(f"{run.spec.seed}:pmu")
    rows = []
    prev_end = None
    for step, k in _compute_kernels(run):
        n = k.names
        wait = "0" if prev_end is None else num(max(0, k.start - prev_end) / 1000)
        prev_end = k.start + k.dur
        mix = n.npu_core.startswith("MIX")
        shapes = list(k.npu_shapes)
        rows.append(
            [
                step.number,
                UINT32_MAX,
                k.task_id,
                STREAM,
                n.npu_kernel,
                n.npu_type,
                "dynamic",
                n.npu_core,
                us(run.abs_ns(k.start)) + "\t",
                num(k.dur / 1000),
                wait,
                k.block_dim,
                k.mix_block_dim if mix else 0,
                "NO",
                *shapes,
                "0" if mix else NA,
                *_pmu(k, rng),
            ]
        )
    return _csv(KERNEL_HEADER, rows, crlf=True)


def op_statistic(run: Run) -> str:
    """Per (OP Type, core) totals, largest first; Ratio is of all compute time (CANN copy, LF)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for _, k in _compute_kernels(run):
        groups.setdefault((k.names.npu_type, k.names.npu_core), []).append(k.dur)
    total = sum(sum(v) for v in groups.values())
    rows = []
    for (typ, core), durs in sorted(groups.items(), key=lambda kv: (-sum(kv[1]), kv[0])):
        s = sum(durs)
        rows.append(
            [
                typ,
                core,
                len(durs),
                num(s / 1000),
                num(min(durs) / 1000),
                num(s / len(durs) / 1000),
                num(max(durs) / 1000),
                num(100 * s / total),
            ]
        )
    return _csv(OP_STATISTIC_HEADER, rows, crlf=False)


# -- step_trace_time.csv ----------------------------------------------------------------------------


def busy_intervals(kernels: list[Kernel]) -> list[tuple[int, int]]:
    """Union of device task intervals, merged."""
    spans = sorted((k.start, k.start + k.dur) for k in kernels)
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def step_trace_time(run: Run) -> str:
    """Computing / Free / Stage / Preparing per step, µs as Python floats."""
    rows = []
    for step in run.steps:
        ks = [k for k in step.kernels if k.kind == "kernel"]
        computing = sum(b - a for a, b in busy_intervals(ks)) / 1000
        stage = step.dur / 1000
        preparing = (min(k.start for k in ks) - step.ts) / 1000 if ks else 0.0
        rows.append([step.number, computing, 0.0, 0.0, 0.0, stage - computing, stage, 0, 0.0, preparing])
    return _csv(STEP_TRACE_HEADER, rows, crlf=True)


# -- memory_record.csv / operator_memory.csv --------------------------------------------------------


def app_samples(run: Run) -> list[tuple[int, int]]:
    """(ts, process HBM bytes) every 20 ms: allocator reserve plus runtime overhead."""
    out = []
    events = run.mem_events
    i, reserved = 0, events[0].total_reserved if events else 0
    t = run.start + 6_000
    while t < run.end:
        while i < len(events) and events[i].ts <= t:
            reserved = events[i].total_reserved
            i += 1
        out.append((t, reserved + APP_OVERHEAD))
        t += MEM_SAMPLE_NS
    return out


def memory_record(run: Run) -> str:
    """APP samples first, then a PTA and a PTA+GE row per allocator event."""
    rows: list[list[Any]] = [["APP", us(run.abs_ns(t)) + "\t", "", mb(b), "", "", "NPU:0"] for t, b in app_samples(run)]
    for ev in run.mem_events:
        cells = [
            us(run.abs_ns(ev.ts)) + "\t",
            mb(ev.total_allocated),
            mb(ev.total_reserved),
            mb(ev.total_allocated),
            STREAM_PTR,
            "NPU:0",
        ]
        rows.append(["PTA", *cells])
        rows.append(["PTA+GE", *cells])
    return _csv(MEMORY_RECORD_HEADER, rows, crlf=True)


def operator_memory(run: Run) -> str:
    """One row per allocation; release columns empty when freed outside the window."""
    rows = []
    for a in run.allocations:
        alloc = [a.name, repr(a.size / 1024), us(run.abs_ns(a.ts)) + "\t"]
        if a.release_ts is None:
            rel = ["", "", "", ""]
            after = [mb(a.allocated_after), mb(a.reserved_after), mb(a.allocated_after), "", "", ""]
        else:
            active = a.release_ts - 1_230
            rel = [
                us(run.abs_ns(a.release_ts)) + "\t",
                us(run.abs_ns(active)) + "\t",
                us(a.release_ts - a.ts) + "\t",
                us(active - a.ts) + "\t",
            ]
            after = [
                mb(a.allocated_after),
                mb(a.reserved_after),
                mb(a.allocated_after),
                mb(a.allocated_after_release),
                mb(a.reserved_after_release),
                mb(a.allocated_after_release),
            ]
        rows.append([*alloc, *rel, *after, STREAM_PTR, "NPU:0"])
    return _csv(OPERATOR_MEMORY_HEADER, rows, crlf=True)
