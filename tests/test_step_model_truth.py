"""The step model on synthetic Kineto traces with known truth, written like the real engines write them.

SGLang's step[...] labels nested in an outer execute_... range, device tasks no host call launched, a CUDA-graph
capture run, a capture-time attention call with no requests, and a serving step that waits for work (long wall
time, short active time) and what `traceview throughput` plots and prints for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import store_rows, write_kineto, x_event
from typer.testing import CliRunner

from traceview.analysis import throughput
from traceview.analysis.analyze import run_analyze
from traceview.cli import app
from traceview.engine import resolve_store
from traceview.reports import charts

BASE = 1_712_000_000_000  # µs
HEADER = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100"}]}
runner = CliRunner()


def launch(name: str, at: int, corr: int, host_dur: int = 5) -> dict[str, Any]:
    return x_event(name, at, host_dur, cat="cuda_runtime", args={"External id": corr, "correlation": corr})


def kernel(name: str, at: int, dur: int, corr: int | None, cat: str = "kernel") -> dict[str, Any]:
    args: dict[str, Any] = {"device": 0, "stream": 7}
    if corr is not None:
        args |= {"correlation": corr, "External id": corr}
    return x_event(name, at, dur, cat=cat, pid=0, tid=7, args=args)


def annotation(name: str, at: int, dur: int) -> dict[str, Any]:
    return x_event(name, at, dur, cat="user_annotation")


def phases(path: Path, cache: Path) -> pl.DataFrame:
    report = run_analyze([path], cache_dir=cache)
    assert report.errors == []
    result = report.result("phases")
    assert result is not None and result.frame is not None
    return result.frame.sort("ts_ns")


# ---------------------------------------------------------------------------------------------
# nested step labels


SGLANG_STEPS = [  # (outer execute_ range, SGLang's step label inside it, phase, requests)
    ("execute_context_1(1025)_generation_0(0)", "step[EXTEND bs=1 toks=1025 c_sqsq=1050625 c_sqsk=1050625 c_sk=1025]",
     "prefill", 1),
    ("execute_context_0(0)_generation_32(32)", "step[DECODE bs=32 g_sqsq=32 g_sqsk=33824 g_sk=33824]", "decode", 32),
    ("execute_context_0(0)_generation_32(32)", "step[DECODE bs=32 g_sqsq=32 g_sqsk=33856 g_sk=33856]", "decode", 32),
]


def _nested_trace(path: Path, profiler_steps: bool) -> Path:
    events = []
    for i, (outer, inner, _, _) in enumerate(SGLANG_STEPS):
        t = BASE + 10_000 * i
        if profiler_steps:
            events.append(annotation(f"ProfilerStep#{i + 1}", t, 9_000))
        events.append(annotation(outer, t + 10, 8_000))
        events.append(annotation(inner, t + 20, 7_900))
        events.append(launch("cudaLaunchKernel", t + 100, 10 + i))
        events.append(kernel("flash_fwd_splitkv_kernel", t + 200, 1_000, 10 + i))
    return write_kineto(path, events, header=HEADER)


@pytest.mark.parametrize("profiler_steps", [False, True])
def test_a_step_label_nested_in_an_execute_range_is_one_step(tmp_path: Path, profiler_steps: bool) -> None:
    rows = phases(_nested_trace(tmp_path / "sglang.json", profiler_steps), tmp_path / "cache")
    assert rows.height == len(SGLANG_STEPS)
    assert rows["step"].to_list() == [1, 2, 3]
    assert rows["label"].to_list() == [inner for _, inner, _, _ in SGLANG_STEPS]
    assert set(rows["label_source"]) == {"sglang step[...]"}
    assert rows["phase"].to_list() == [phase for _, _, phase, _ in SGLANG_STEPS]
    assert rows["requests"].to_list() == [reqs for _, _, _, reqs in SGLANG_STEPS]
    # the step spans the outer range (or its ProfilerStep) and holds its kernel once
    assert set(rows["dur_ns"]) == {9_000_000 if profiler_steps else 8_000_000}
    assert set(rows["device_busy_ns"]) == {1_000_000}
    assert rows["context_len"].to_list() == [1025, 33824, 33856]


def test_label_source_of_profiler_steps_and_whole_traces(tmp_path: Path) -> None:
    stepped = [annotation("ProfilerStep#4", BASE, 900), launch("l", BASE + 10, 1), kernel("gemm", BASE + 50, 100, 1)]
    rows = phases(write_kineto(tmp_path / "plain.json", stepped, header=HEADER), tmp_path / "c1")
    assert rows["label_source"].to_list() == ["ProfilerStep#N"] and rows["step"].to_list() == [4]
    whole = phases(write_kineto(tmp_path / "none.json", stepped[1:], header=HEADER), tmp_path / "c2")
    assert whole["label_source"].to_list() == ["whole trace"] and whole["step"].to_list() == [None]
    user = [annotation("decode_step", BASE, 900), *stepped[1:]]
    rows = phases(write_kineto(tmp_path / "user.json", user, header=HEADER), tmp_path / "c3")
    assert rows["label_source"].to_list() == ["user annotation"] and rows["phase"].to_list() == ["decode"]


# ---------------------------------------------------------------------------------------------
# device tasks without a launch record


def _unlaunched_trace(path: Path) -> Path:
    """Three ProfilerSteps of 1 ms, each launching one kernel; copies (DMA) with no launch record run in steps 1 and 2,
    and after the host's step 3 has ended, while step 3's kernel (launched late, run 0.6 ms later) is still running."""
    events = []
    for i in range(3):
        t = BASE + 1_000 * i
        events.append(annotation(f"ProfilerStep#{i + 1}", t, 1_000))
        launched_at = t + (900 if i == 2 else 10)
        events.append(launch("cudaLaunchKernel", launched_at, 20 + i))
        start = launched_at + (600 if i == 2 else 40)
        events.append(kernel("gemm_kernel", start, 500, 20 + i))
        if i < 2:
            events.append(kernel("Memcpy DtoD (Device -> Device)", t + 700, 100, None, cat="gpu_memcpy"))
    events.append(kernel("Memcpy DtoD (Device -> Device)", BASE + 3_600, 100, None, cat="gpu_memcpy"))
    return write_kineto(path, events, header=HEADER)


def test_device_tasks_without_a_launch_take_the_step_holding_them(tmp_path: Path) -> None:
    trace = _unlaunched_trace(tmp_path / "dma.json")
    store = resolve_store(trace, tmp_path / "cache")
    copies = store_rows(store, "slices", "ts_ns, step", "WHERE kind = 'memcpy' ORDER BY ts_ns")
    # steps 1 and 2 by their host span; the last by step 3's device window (its kernel runs 3.5 to 4.0 ms)
    assert [step for _, step in copies] == [1, 2, 3]
    rows = phases(trace, tmp_path / "cache")
    # active time: first to last device task, the copies included (step 1: kernel at 0.05 ms, copy ends at 0.8 ms)
    assert rows["active_ns"].to_list() == [750_000, 750_000, 500_000]


def test_unlaunched_steps_prefers_the_device_window() -> None:
    from traceview.parsers.steps import unlaunched_steps

    ts = np.array([50, 250, 390, 900], dtype=np.int64)
    got = unlaunched_steps(
        ts,
        launched_ts=np.array([10, 300], dtype=np.int64), launched_end=np.array([100, 400], dtype=np.int64),
        launched_step=np.array([1, 2], dtype=np.int64),
        step_start=np.array([0, 200], dtype=np.int64), step_end=np.array([200, 300], dtype=np.int64),
        step_no=np.array([1, 2], dtype=np.int64),
    )
    # 50: step 1's device window; 250: no device window, step 2's host span; 390: step 2's device window; 900: none
    assert got.tolist() == [1, 2, 2, -1]


# ---------------------------------------------------------------------------------------------
# graph capture runs


def _capture_trace(path: Path) -> Path:
    """A vLLM-style capture run: a dummy batch through prefill-looking kernels and GEMMs of several sizes, recorded
    into a CUDA graph (cudaStreamBeginCapture ... cudaStreamEndCapture, cudaGraphInstantiate), no requests."""
    bf16 = "c10::BFloat16"
    events = [annotation("ProfilerStep#1", BASE, 5_000)]
    for j, m in enumerate((1, 8, 32)):
        t = BASE + 100 + 1_000 * j
        events.append(x_event("cudaStreamBeginCapture", t, 5, cat="cuda_runtime", args={"correlation": 90 + j}))
        gemm = {"External id": 40 + j, "Input Dims": [[m, 2048], [2048, 1024]], "Input type": [bf16, bf16]}
        events.append(x_event("aten::mm", t + 10, 50, args=gemm))
        events.append(x_event(
            "_vllm_fa2_C::varlen_fwd", t + 100, 50,
            args={"External id": 50 + j,
                  "Input Dims": [[m, 32, 128], [m, 8, 128], [m, 8, 128], [m, 32, 128], [0], [], [], [], [], [], [], []],
                  "Input type": [bf16, bf16, bf16, bf16, "int", "", "", "", "", "", "Scalar", "Scalar"]}))
        events.append(launch("cudaLaunchKernel", t + 20, 60 + j))
        events.append(kernel("flash_fwd_kernel", t + 40, 30, 60 + j))
        events.append(x_event("cudaStreamEndCapture", t + 300, 5, cat="cuda_runtime", args={"correlation": 93 + j}))
        events.append(x_event("cudaGraphInstantiate", t + 400, 50, cat="cuda_runtime", args={"correlation": 96 + j}))
    return write_kineto(path, events, header=HEADER)


def test_a_graph_capture_run_is_not_prefill(tmp_path: Path) -> None:
    trace = _capture_trace(tmp_path / "capture.json")
    rows = phases(trace, tmp_path / "cache")
    assert rows["phase"].to_list() == ["capture"]
    assert rows["source"].to_list() == ["ops"]
    # cu_seqlens of the dummy batch is empty: no requests, never -1
    assert rows["requests"].to_list() == [0]
    data = throughput.run_throughput([trace], cache_dir=tmp_path / "cache").to_dict()
    assert data["prefill"] == [] and data["decode"] == [] and data["mix"] == []


# ---------------------------------------------------------------------------------------------
# throughput over active time

WAIT_LABEL = "execute_32_context_0(sq0sk0sqsq0sqsk0)_generation_32(sq32sk16384sqsq32sqsk16384)"


def _waiting_trace(path: Path) -> Path:
    """One vLLM decode step whose annotation lasts 465 ms while its device work spans 9.8 ms (it waited for work)."""
    events = [annotation(WAIT_LABEL, BASE, 465_000)]
    for j in range(2):
        events.append(launch("cudaLaunchKernel", BASE + 455_000 + 10 * j, 70 + j))
    events.append(kernel("flash_fwd_splitkv_kernel", BASE + 455_100, 4_000, 70))
    events.append(kernel("gemv2T_kernel", BASE + 455_100 + 9_800 - 2_000, 2_000, 71))
    return write_kineto(path, events, header=HEADER)


def test_throughput_reports_wall_and_active_time(tmp_path: Path) -> None:
    data = throughput.run_throughput([_waiting_trace(tmp_path / "wait.json")], cache_dir=tmp_path / "cache").to_dict()
    (point,) = data["decode"]
    assert (point["wall_ns"], point["active_ns"], point["tokens"]) == (465_000_000, 9_800_000, 32)
    assert point["tokens_per_s_wall"] == pytest.approx(32 / 0.465)
    assert point["tokens_per_s_active"] == pytest.approx(32 / 0.0098)
    assert data["time_basis"] == "active"
    figure = dict(charts.throughput_figures(data))["decode"].to_dict()
    by_name = {d["name"]: d for d in figure["data"]}
    assert list(by_name["wait active ms"]["y"]) == pytest.approx([9.8])
    assert list(by_name["wait tokens/s (active)"]["y"]) == pytest.approx([32 / 0.0098])
    assert figure["layout"]["yaxis"]["title"]["text"] == "active time (ms, first to last device task)"
    wall = dict(charts.throughput_figures({**data, "time_basis": "wall"}))["decode"].to_dict()
    assert [list(d["y"]) for d in wall["data"]] == [pytest.approx([465.0]), pytest.approx([32 / 0.465])]
    assert wall["layout"]["yaxis"]["title"]["text"] == "step wall time (ms)"


def test_throughput_prints_the_numbers_it_plots(tmp_path: Path) -> None:
    trace = _waiting_trace(tmp_path / "wait.json")
    result = runner.invoke(app, ["throughput", str(trace), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == [
        "wait: 1 prefill/decode steps (charts plot active time)",
        "  step   phase  tokens  context  wall ms  active ms  tok/s wall  tok/s active",
        "     1  decode      32    16384  465.000      9.800          69         3,265",
    ]
    assert "decode: 1 points" in lines
    bad = runner.invoke(app, ["throughput", str(trace), "--time", "busy", "--cache-dir", str(tmp_path / "cache")])
    assert bad.exit_code == 2
    assert "Error: --time busy: expected one of active, wall" in bad.output


def test_a_trace_without_device_tasks_is_plotted_on_wall_time() -> None:
    point = {"trace": "cpu", "step": 1, "prompt_len": 64, "context_len": 64, "wall_ns": 2_000_000, "active_ns": None,
             "tokens_per_s_wall": 32_000.0, "tokens_per_s_active": None}
    (prefill,) = charts.throughput_figures({"time_basis": "active", "prefill": [point]})
    (drawn,) = prefill[1].to_dict()["data"]
    assert drawn["name"] == "cpu, wall time: no device tasks" and list(drawn["y"]) == [2.0]
