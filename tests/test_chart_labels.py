"""No chart label reads "None": a missing rank, device, trace, source or name is said in words."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import polars as pl
from conftest import write_kineto, x_event

from traceview.analysis import flame
from traceview.reports import charts


def _labels(figure: go.Figure) -> list[str]:
    """Every text a reader sees on the chart: trace names, category labels, hover texts, icicle labels."""
    seen: list[str] = []
    for trace in figure.data:
        seen.append(str(trace.name))
        for key in ("x", "text", "labels"):
            values = getattr(trace, key, None)
            if values is not None and not isinstance(values, str):
                seen += [str(v) for v in values if isinstance(v, str) or v is None]
    return seen


def test_busy_breakdown_says_unknown_rank_and_device() -> None:
    frame = pl.DataFrame(
        {
            "rank": [None, 1],
            "device_id": [None, 0],
            "step": [3, None],
            **{column: [1_000_000, 2_000_000] for column, _, _ in charts.BREAKDOWN_PARTS},
        },
        schema_overrides={"rank": pl.Int32, "device_id": pl.Int32, "step": pl.Int64},
    )
    labels = list(charts.busy_breakdown(frame).data[0].x)
    assert labels == ["unknown rank unknown device step 3", "r1 d0 outside steps"]


def test_memory_timeline_names_devices_without_type_or_id() -> None:
    frame = pl.DataFrame(
        {
            "trace_id": ["t", "t", "t"],
            "device_type": ["cpu", None, "cuda"],
            "device_id": [None, 2, 0],
            "ts_ns": [1, 2, 3],
            "total_allocated": [1, 2, 3],
            "total_reserved": [1, 2, 3],
        },
        schema_overrides={"device_id": pl.Int32},
    )
    names = [trace.name for trace in charts.memory_timeline(frame).data]
    assert names == [
        "cpu allocated", "cpu reserved", "device 2 allocated", "device 2 reserved", "cuda:0 allocated",
        "cuda:0 reserved",
    ]


def test_gap_histogram_and_bandwidth_never_show_none() -> None:
    gaps = pl.DataFrame(
        {"trace_id": [None], "bucket": ["< 1 us"], "idle_ns": [5], "gaps": [1]}, schema_overrides={"trace_id": pl.Utf8}
    )
    histogram = charts.gap_histogram(gaps)
    assert _labels(histogram)[0] == "unknown trace idle ms"
    assert list(histogram.data[0].y) == [5e-6]
    bandwidth = pl.DataFrame(
        {
            "source": [None, "memcpy"],
            "name": [None, "Memcpy HtoD"],
            "achieved_bytes_per_s": [1e9, 2e9],
            "peak_bytes_per_s": [None, None],
        },
        schema_overrides={"source": pl.Utf8, "name": pl.Utf8, "peak_bytes_per_s": pl.Float64},
    )
    figure = charts.bandwidth(bandwidth)
    assert [trace.name for trace in figure.data] == ["unknown source", "memcpy"]
    assert list(figure.data[0].text) == [charts.NO_NAME]
    assert not any("None" in label for label in _labels(figure))


def test_flame_frames_without_a_name_say_so(tmp_path: Path) -> None:
    trace = write_kineto(tmp_path / "t.pt.trace.json", [x_event("outer", 0, 100), x_event("", 10, 50)])
    result = flame.run_flame([trace], "wall", cache_dir=tmp_path / "cache")
    assert set(result.stacks) == {("outer",), ("outer", "(no name)")}
    tree = flame.build_tree(result)
    figure = charts.flame_icicle(tree.ids, tree.labels, tree.parents, tree.values, "t")
    assert sorted(figure.data[0].labels) == ["(no name)", "outer"]
    unnamed = charts.flame_icicle(["n0"], [None], [""], [1], "t")  # type: ignore[list-item]
    assert list(unnamed.data[0].labels) == ["(no name)"]


def test_busy_breakdown_leaves_out_the_device_row_its_parts_add_up_to() -> None:
    """A whole-device row is the sum of its step rows: shown only for a device without steps."""
    frame = pl.DataFrame(
        {
            "trace_id": ["t", "t", "t", "t"],
            "rank": [0, 0, 0, 1],
            "device_id": [0, 0, 0, 0],
            "step": [1, 2, None, None],
            "scope": ["step", "step", "device", "device"],
            **{column: [1, 2, 3, 4] for column, _, _ in charts.BREAKDOWN_PARTS},
        },
        schema_overrides={"rank": pl.Int32, "device_id": pl.Int32, "step": pl.Int64},
    )
    assert list(charts.busy_breakdown(frame).data[0].x) == ["r0 d0 step 1", "r0 d0 step 2", "r1 d0"]
