"""Flame wall time: the folded values add up to the time each thread spends in host slices, counted once.

A slice that starts inside its parent and outlasts it is re-parented to its deepest ancestor that contains it
(a root of its thread when none does), and its start is clipped to the end of the earlier siblings it overlaps.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from conftest import KINETO_CORPUS, interval_union_ns, write_kineto, x_event

from traceview.analysis import flame
from traceview.engine import connect, resolve_store

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
# Real traces with slices that outlast their parent (ProfilerStep#N opened inside record_function's enter, ...).
OVERLAPPING_TRACES = {
    "real_cpu": SAMPLES / "real_cpu" / "tiny_decoder_cpu.pt.trace.json.gz",
    "910b": SAMPLES / "longctx_910b" / "longctx_910b_ascend_pt",
    "nano_vllm": KINETO_CORPUS / "nano-vllm" / "decode_gpu_0.json",
    "mtia": KINETO_CORPUS / "hta" / "mtia_inference_trace" / "mtia_inference_rank_0.json.gz",
    "b200_eager": KINETO_CORPUS / "tracelens" / "b200" / "eager_trace.json.gz",
}


def _union_of_host_slices(con: duckdb.DuckDBPyConnection) -> int:
    """The time covered by host slices, thread by thread (pid, tid), each instant once."""
    by_thread: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    rows = con.sql(
        "SELECT trace_id, pid, tid, ts_ns, ts_ns + dur_ns FROM slices WHERE device_type = 'cpu' AND dur_ns >= 0"
    ).fetchall()
    for trace_id, pid, tid, start, end in rows:
        by_thread[(trace_id, pid, tid)].append((start, end))
    return sum(interval_union_ns(intervals) for intervals in by_thread.values())


def _folded_sum(result: flame.FlameResult) -> int:
    return sum(int(line.rpartition(" ")[2]) for line in result.folded().splitlines())


@pytest.mark.parametrize("target", list(OVERLAPPING_TRACES.values()), ids=list(OVERLAPPING_TRACES))
def test_wall_total_is_the_union_of_each_threads_host_slices(target: Path, tmp_path: Path) -> None:
    con = connect([resolve_store(target, tmp_path / "cache")])
    try:
        outlasting = con.sql("SELECT count(*) FROM slices WHERE device_type = 'cpu' AND overlaps_parent").fetchall()
        assert outlasting[0][0] > 0, "the trace no longer has the slices this test is about"
        union = _union_of_host_slices(con)
        wall = flame.compute_flame(con, "wall")
        self_total = flame.compute_flame(con, "self").total_ns
        all_self = con.sql("SELECT sum(self_ns) FROM slices WHERE device_type = 'cpu'").fetchall()[0][0]
    finally:
        con.close()
    assert _folded_sum(wall) == wall.total_ns
    assert abs(wall.total_ns - union) <= 0.001 * union
    assert all(value >= 0 for value in wall.stacks.values())
    assert self_total == all_self  # every host slice keeps its place in the tree


def _us(events: list[tuple[str, int, int, int]]) -> list[dict]:
    return [x_event(name, start, dur, tid=tid) for name, start, dur, tid in events]


def test_an_outlasting_slice_moves_to_the_ancestor_that_contains_it_or_becomes_a_root(tmp_path: Path) -> None:
    # thread 1:  A [0, 100)
    #              B [10, 30)
    #                X [20, 60)   outlasts B, inside A: re-parented to A, clipped to start where B ends
    #                  Y [50, 150)  outlasts X, B and A: a root of the thread, clipped to start where A ends
    #                    Z [120, 130)
    # thread 2:  W [40, 70), overlapping thread 1 in time but on a thread of its own
    events = _us([
        ("A", 0, 100, 1), ("B", 10, 20, 1), ("X", 20, 40, 1), ("Y", 50, 100, 1), ("Z", 120, 10, 1), ("W", 40, 30, 2),
    ])
    trace = write_kineto(tmp_path / "overlap.pt.trace.json", events)
    result = flame.run_flame([trace], "wall", cache_dir=tmp_path / "cache")
    assert result.stacks == {
        ("A",): 50_000,
        ("A", "B"): 20_000,
        ("A", "X"): 30_000,
        ("Y",): 40_000,
        ("Y", "Z"): 10_000,
        ("W",): 30_000,
    }
    assert result.total_ns == 150_000 + 30_000
    self_result = flame.run_flame([trace], "self", cache_dir=tmp_path / "cache")
    assert set(self_result.stacks) == set(result.stacks)


def test_a_step_window_counts_the_threads_time_in_the_step_once(tmp_path: Path) -> None:
    # ProfilerStep#1 opens inside a short enter call and outlasts it (as torch.profiler writes it)
    events = _us([
        ("main", 0, 1000, 1),
        ("enter", 10, 20, 1),
        ("ProfilerStep#1", 25, 500, 1),
        ("aten::mm", 100, 50, 1),
        ("ProfilerStep#2", 525, 400, 1),
    ])
    for event in events:
        if event["name"].startswith("ProfilerStep"):
            event["cat"] = "user_annotation"
    trace = write_kineto(tmp_path / "steps.pt.trace.json", events)
    result = flame.run_flame([trace], "wall", step=1, cache_dir=tmp_path / "cache")
    assert result.total_ns == 500_000
    assert result.stacks[("main", "ProfilerStep#*", "aten::mm")] == 50_000
    assert result.stacks[("main", "enter")] == 5_000  # the part of the step window before the step's own start
