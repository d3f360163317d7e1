"""Plotly figures built from analysis results (used by the HTML reports and the chart commands)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

BREAKDOWN_PARTS = (
    ("compute_ns", "compute", "#4C78A8"),
    ("comm_not_overlapped_ns", "communication (not overlapped)", "#F58518"),
    ("memcpy_ns", "memory copies", "#54A24B"),
    ("idle_ns", "idle", "#BAB0AC"),
)


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white", height=380,
                      margin={"l": 60, "r": 20, "t": 50, "b": 50}, legend={"orientation": "h", "y": -0.2})
    return fig


def busy_breakdown(frame: pl.DataFrame) -> go.Figure:
    """Stacked bars: per rank, device and step, where the device span went."""
    labels = [
        f"r{r} d{d} " + ("no step" if s is None else f"step {s}")
        for r, d, s in frame.select("rank", "device_id", "step").iter_rows()
    ]
    fig = go.Figure()
    for column, name, color in BREAKDOWN_PARTS:
        fig.add_bar(x=labels, y=[v / 1e6 for v in frame[column].to_list()], name=name, marker_color=color)
    fig.update_layout(barmode="stack")
    return _layout(fig, "Device busy breakdown per step", "rank, device, step", "ms")


def gap_histogram(frame: pl.DataFrame) -> go.Figure:
    """Bars: number of idle gaps and idle time per gap-length bucket."""
    fig = go.Figure()
    for trace_id in frame["trace_id"].unique(maintain_order=True).to_list():
        part = frame.filter(pl.col("trace_id") == trace_id)
        fig.add_bar(x=part["bucket"].to_list(), y=[v / 1e6 for v in part["idle_ns"].to_list()],
                    name=f"{trace_id} idle ms", customdata=part["gaps"].to_list(),
                    hovertemplate="%{x}: %{y:.3f} ms in %{customdata} gaps")
    return _layout(fig, "Device idle gaps by length", "gap length", "idle time (ms)")


def memory_timeline(frame: pl.DataFrame) -> go.Figure:
    """Lines: allocated and reserved device memory over time."""
    fig = go.Figure()
    for key, part in frame.group_by(["trace_id", "device_type", "device_id"], maintain_order=True):
        trace_id, device_type, device_id = key
        t0 = part["ts_ns"].min()
        x = [(t - t0) / 1e6 for t in part["ts_ns"].to_list()]
        label = f"{device_type}:{device_id}"
        fig.add_scatter(x=x, y=[v / 2**20 for v in part["total_allocated"].to_list()], mode="lines",
                        name=f"{label} allocated", line_shape="hv")
        fig.add_scatter(x=x, y=[v / 2**20 for v in part["total_reserved"].to_list()], mode="lines",
                        name=f"{label} reserved", line_shape="hv", line_dash="dot")
    return _layout(fig, "Device memory over time", "ms from first memory event", "MiB")


def bandwidth(frame: pl.DataFrame) -> go.Figure:
    """Markers: achieved bandwidth per task or window, with the device peak as a line."""
    fig = go.Figure()
    for source, part in frame.group_by("source", maintain_order=True):
        fig.add_scatter(x=list(range(part.height)), y=[v / 1e9 for v in part["achieved_bytes_per_s"].to_list()],
                        mode="markers", name=str(source[0]), text=part["name"].to_list())
    peaks = [p for p in frame["peak_bytes_per_s"].unique().to_list() if p]
    for peak in peaks:
        fig.add_hline(y=peak / 1e9, line_dash="dash", annotation_text=f"peak {peak / 1e9:.0f} GB/s")
    return _layout(fig, "Achieved memory bandwidth against the device peak", "task (by time)", "GB/s")


FIGURES = {
    "busy_breakdown": busy_breakdown,
    "gap_histogram": gap_histogram,
    "memory_timeline": memory_timeline,
    "bandwidth": bandwidth,
}
