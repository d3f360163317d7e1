"""Device busy/idle and launch semantics (busy_breakdown, launch_gaps, gap_histogram, launch_latency, diff).

A synthetic Kineto trace with known truth: the device lags the host, so step 1's communication kernel (a DeepEP
dispatch, family comm by name; its kind is `kernel`) runs inside step 2's window and fills step 2's own gap;
another stream keeps the device busy during a gap of stream 7; step 3's kernel is launched late by the host.
Times in µs from BASE (device 0, streams 7 and 20):

    host:   ProfilerStep#1 [0, 10000)   ProfilerStep#2 [10000, 21000)   ProfilerStep#3 [21000, 24000)
    k1   stream 7   [2000, 8000)    step 1, launched at 1000
    comm stream 20  [10000, 17000)  step 1, launched at 7000
    k2a  stream 7   [11000, 13000)  step 2, launched at 10500
    k2b  stream 7   [16000, 20000)  step 2, launched at 10600 (queued behind k2a)
    k3   stream 7   [22500, 23000)  step 3, launched at 22000

Device busy: [2000, 8000) + [10000, 20000) + [22500, 23000) = 16.5 ms of a 21 ms span; idle 4.5 ms in two gaps.
Step windows: step 1 [2000, 11000), step 2 [11000, 22500), step 3 [22500, 23000).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import KINETO_CORPUS, interval_union_ns, require_corpus, write_kineto, x_event

from traceview.analysis.analyze import AnalysisReport, run_analyze
from traceview.analysis.diff import diff as run_diff
from traceview.analysis.diff.summary import step_metric_sql
from traceview.engine import open_target
from traceview.store import ingest

BASE = 1712195495000000
US = 1000  # ns per µs
COMM = "void deep_ep::intranode::dispatch<8, 768>(int4*, float*)"
# (name, stream, start, end, step, launch time, correlation), µs from BASE
TASKS = [
    ("k1_gemm", 7, 2000, 8000, 1, 1000, 101),
    (COMM, 20, 10000, 17000, 1, 7000, 102),
    ("k2a_gemm", 7, 11000, 13000, 2, 10500, 201),
    ("k2b_gemm", 7, 16000, 20000, 2, 10600, 202),
    ("k3_gemm", 7, 22500, 23000, 3, 22000, 301),
]
STEPS = [(1, 0, 10000), (2, 10000, 21000), (3, 21000, 24000)]


def lagging_events() -> list[dict[str, Any]]:
    events = [x_event(f"ProfilerStep#{n}", BASE + s, e - s, cat="user_annotation") for n, s, e in STEPS]
    for name, stream, start, end, _, launch, corr in TASKS:
        events.append(x_event("cudaLaunchKernel", BASE + launch, "5.000", cat="cuda_runtime",
                              args={"External id": corr, "correlation": corr}))
        events.append(x_event(name, BASE + start, end - start, cat="kernel", pid=0, tid=stream,
                              args={"External id": corr, "device": 0, "stream": stream, "correlation": corr}))
        events.append({"ph": "f", "id": corr, "pid": 0, "tid": stream, "ts": Decimal(BASE + start),
                       "cat": "ac2g", "name": "ac2g", "bp": "e"})
    return events


@pytest.fixture(scope="module")
def lagging_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kineto(tmp_path_factory.mktemp("lagging") / "lagging.pt.trace.json", lagging_events())


@pytest.fixture(scope="module")
def report(lagging_trace: Path, tmp_path_factory: pytest.TempPathFactory) -> AnalysisReport:
    result = run_analyze([lagging_trace], cache_dir=tmp_path_factory.mktemp("cache"))
    assert result.errors == []
    return result


def frame(report: AnalysisReport, query: str) -> pl.DataFrame:
    result = report.result(query)
    assert result is not None and result.error is None and result.frame is not None
    return result.frame


# ---------------------------------------------------------------------------------------------
# item 1: per-step rows on the device timeline, a whole-device row, comm by family


BREAKDOWN_COLUMNS = ["step", "scope", "span_ns", "compute_ns", "comm_ns", "comm_not_overlapped_ns", "overlapped_ns",
                     "idle_ns"]


def test_busy_breakdown_counts_every_task_running_in_the_step_window(
    report: AnalysisReport, lagging_trace: Path, tmp_path: Path
) -> None:
    with open_target(lagging_trace, tmp_path) as session:  # the steps the trace was built with
        assert session.sql("SELECT name, step FROM device_tasks ORDER BY ts_ns").rows() == [t[::4] for t in TASKS]
    rows = frame(report, "busy_breakdown").select(BREAKDOWN_COLUMNS).rows()
    ms = 1000 * US
    assert rows == [
        # step 1 [2, 11) ms: k1, then the comm from 10 ms
        (1, "step", 9 * ms, 6 * ms, 1 * ms, 1 * ms, 0, 2 * ms),
        # step 2 [11, 22.5) ms: its own kernels' gap [13, 16) is filled by step 1's comm: not idle
        (2, "step", 11500 * US, 6 * ms, 6 * ms, 3 * ms, 3 * ms, 2500 * US),
        (3, "step", 500 * US, 500 * US, 0, 0, 0, 0),
        # the whole device: the rows above add up to it
        (None, "device", 21 * ms, 12500 * US, 7 * ms, 4 * ms, 3 * ms, 4500 * US),
    ]


def test_busy_breakdown_findings_name_their_denominator(report: AnalysisReport) -> None:
    messages = [f.message for f in report.findings if f.query == "busy_breakdown"]
    # step 2 is 21.7% idle in its window (its own kernels alone would leave it 33% idle): no warning
    # step 1's comm (a DeepEP kernel, kind `kernel`) runs 1 ms alone in a 9 ms window
    assert messages == [
        "rank 0 device 0 step 1: 11.1% of the step's device window is communication not overlapped with compute"
    ]


def test_step_windows_add_up_to_the_device_on_a_lagging_corpus_trace(tmp_path: Path) -> None:
    """hta negative_queue_length: the device runs ~150 ms behind the host, so each step's own tasks span ~370 ms
    while the steps are ~215 ms apart. Step windows tile the device span instead of overlapping."""
    require_corpus()
    path = KINETO_CORPUS / "hta" / "negative_queue_length_values_check" / "rank0.json.gz"
    busy = run_analyze([path], cache_dir=tmp_path).result("busy_breakdown")
    assert busy is not None and busy.frame is not None
    rows = busy.frame
    with open_target(path, tmp_path) as session:
        intervals = session.sql("SELECT ts_ns, ts_ns + dur_ns FROM device_tasks").rows()
    span = max(e for _, e in intervals) - min(s for s, _ in intervals)
    steps = rows.filter(pl.col("step").is_not_null())
    assert steps.height == 5 and steps["span_ns"].sum() <= span  # each step's own tasks: 1.87 s in a 1.23 s span
    device = rows.filter(pl.col("scope") == "device").row(0, named=True)
    assert (device["span_ns"], device["span_ns"] - device["idle_ns"]) == (span, interval_union_ns(intervals))
    parts = rows.filter(pl.col("scope") != "device")
    assert parts["span_ns"].sum() == device["span_ns"] and parts["idle_ns"].sum() == device["idle_ns"]


def test_deepep_kernels_are_communication_on_the_b200_trace(tmp_path: Path) -> None:
    """tracelens b200: its parser kind says `comm` only for one NCCL kernel (22 µs); the family rules find
    2.1 ms of communication (custom all-reduce and friends)."""
    require_corpus()
    path = KINETO_CORPUS / "tracelens" / "b200" / "eager_trace.json.gz"
    busy = run_analyze([path], cache_dir=tmp_path).result("busy_breakdown")
    assert busy is not None and busy.frame is not None
    assert busy.frame["comm_ns"].max() > 2_000_000


# ---------------------------------------------------------------------------------------------
# item 2: gaps only where the whole device is idle; one launch latency


def test_launch_gaps_are_device_idle_gaps(report: AnalysisReport) -> None:
    gaps = frame(report, "launch_gaps").select("gap_start_ns", "gap_ns", "prev_task", "next_task", "stream", "cause")
    assert gaps.rows() == [
        (BASE * US + 20000 * US, 2500 * US, "k2b_gemm", "k3_gemm", 7, "host"),
        (BASE * US + 8000 * US, 2000 * US, "k1_gemm", COMM, 20, "device, dependency or queue"),
    ]
    warnings = [f.message for f in report.findings if f.query == "launch_gaps" and f.severity == "warning"]
    # stream 7's 3 ms gap [8, 11) ms is not idle from 10 ms on (stream 20 runs): no "launched late" warning for it
    assert warnings == [
        "rank 0 device 0: 2.50 ms with the whole device idle before k3_gemm (stream 7) because the host "
        "launched it late (in ProfilerStep#3)"
    ]


def test_gap_histogram_sums_device_idle(report: AnalysisReport) -> None:
    hist = frame(report, "gap_histogram").select("bucket", "gaps", "idle_ns", "share_of_span_pct").rows()
    assert hist == [("1-10 ms", 2, 4500 * US, pytest.approx(100 * 4.5 / 21))]
    device = frame(report, "busy_breakdown").filter(pl.col("scope") == "device")
    assert sum(row[2] for row in hist) == device["idle_ns"].item()


def test_launch_latency_and_queue_delay(report: AnalysisReport) -> None:
    row = frame(report, "launch_latency").row(0, named=True)
    # launched onto an idle stream: k1 1 ms, comm 3 ms, k2a 0.5 ms, k3 0.5 ms; k2b waited behind k2a: 5.4 ms
    assert (row["kind"], row["tasks"], row["launched_idle"], row["queued"]) == ("kernel", 5, 4, 1)
    assert row["launch_latency_p50_ns"] == 500 * US
    assert row["launch_latency_max_ns"] == 3000 * US
    assert row["launch_latency_mean_ns"] == pytest.approx(1250 * US)
    assert row["queue_delay_p50_ns"] == row["queue_delay_max_ns"] == 5400 * US


def test_diff_uses_the_same_busy_and_launch_latency(lagging_trace: Path, tmp_path: Path) -> None:
    with open_target(lagging_trace, tmp_path) as session:
        busy = dict(session.sql(step_metric_sql("device_busy")).rows())
        latency = dict(session.sql(step_metric_sql("launch_latency")).rows())
    # the union of the task intervals in each step window, not the sum of the step's task durations
    assert busy == {1: 7000 * US, 2: 9000 * US, 3: 500 * US}
    # the median over each step's tasks launched onto an idle stream (k2b was queued)
    assert latency == {1: 2000 * US, 2: 500 * US, 3: 500 * US}
    store = ingest([lagging_trace], tmp_path / "store").store
    summary = run_diff(store, store, by="kernel").summary
    assert summary["device_busy"]["base"] == 7000 * US
    assert summary["launch_latency"]["base"] == 500 * US


def test_comm_overlap_is_busy_breakdowns_split_on_two_lagging_ranks(tmp_path: Path) -> None:
    """comm_overlap (cluster view) reads busy_breakdown's step windows and family rules: step 1's DeepEP kernel runs
    in step 2's window, so step 2 shows 6 ms of communication, 3 ms of it hidden under step 2's kernels."""
    traces = [
        write_kineto(tmp_path / f"rank{rank}.pt.trace.json", lagging_events(),
                     header={"distributedInfo": {"rank": rank, "world_size": 2, "backend": "nccl"}})
        for rank in (0, 1)
    ]
    result = run_analyze(traces, cache_dir=tmp_path / "cache")
    assert result.errors == []
    ms = 1000 * US
    rows = frame(result, "comm_overlap").select("rank", "step", "comm_ns", "hidden_ns", "exposed_ns").rows()
    assert sorted(rows) == [(r, s, *v) for r in (0, 1) for s, v in ((1, (ms, 0, ms)), (2, (6 * ms, 3 * ms, 3 * ms)))]
