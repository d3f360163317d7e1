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
NO_NAME = "(no name)"


def _text(value: object, missing: str = NO_NAME) -> str:
    """A label from a value that may be missing: `missing` instead of "None" or an empty label."""
    return missing if value is None or value == "" else str(value)


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        template="plotly_white",
        height=380,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _breakdown_label(rank: int | None, device_id: int | None, step: int | None, scope: str) -> str:
    rank_text = "unknown rank" if rank is None else f"r{rank}"
    device_text = "unknown device" if device_id is None else f"d{device_id}"
    if scope == "device":
        return f"{rank_text} {device_text}"
    return f"{rank_text} {device_text} " + ("outside steps" if step is None else f"step {step}")


def busy_breakdown(frame: pl.DataFrame) -> go.Figure:
    """Stacked bars: per rank, device and step window (and the time outside them), where the device span went.

    A whole-device row (scope 'device') is the sum of its device's other rows, so it is shown only for a device
    that has no others (no steps).
    """
    if "scope" not in frame.columns:
        frame = frame.with_columns(pl.lit("step").alias("scope"))
    keys = [key for key in ("trace_id", "rank", "device_id") if key in frame.columns]
    parts = frame.group_by(keys).agg((pl.col("scope") != "device").any().alias("has_parts"))
    frame = frame.join(parts, on=keys, how="left", nulls_equal=True).filter(
        (pl.col("scope") != "device") | ~pl.col("has_parts")
    )
    labels = [_breakdown_label(*row) for row in frame.select("rank", "device_id", "step", "scope").iter_rows()]
    fig = go.Figure()
    for column, name, color in BREAKDOWN_PARTS:
        fig.add_bar(x=labels, y=[v / 1e6 for v in frame[column].to_list()], name=name, marker_color=color)
    fig.update_layout(barmode="stack")
    return _layout(fig, "Device busy breakdown per step", "rank, device, step", "ms")


def gap_histogram(frame: pl.DataFrame) -> go.Figure:
    """Bars: number of idle gaps and idle time per gap-length bucket."""
    fig = go.Figure()
    for (trace_id,), part in frame.group_by("trace_id", maintain_order=True):
        fig.add_bar(
            x=part["bucket"].to_list(),
            y=[v / 1e6 for v in part["idle_ns"].to_list()],
            name=f"{_text(trace_id, 'unknown trace')} idle ms",
            customdata=part["gaps"].to_list(),
            hovertemplate="%{x}: %{y:.3f} ms in %{customdata} gaps",
        )
    return _layout(fig, "Device idle gaps by length", "gap length", "idle time (ms)")


def _device_label(device_type: str | None, device_id: int | None) -> str:
    if device_id is None:
        return _text(device_type, "unknown device")
    return f"device {device_id}" if device_type is None else f"{device_type}:{device_id}"


def memory_timeline(frame: pl.DataFrame) -> go.Figure:
    """Lines: allocated and reserved device memory over time."""
    fig = go.Figure()
    for key, part in frame.group_by(["trace_id", "device_type", "device_id"], maintain_order=True):
        trace_id, device_type, device_id = key
        t0 = part["ts_ns"].min()
        x = [(t - t0) / 1e6 for t in part["ts_ns"].to_list()]
        label = _device_label(device_type, device_id)
        fig.add_scatter(
            x=x,
            y=[v / 2**20 for v in part["total_allocated"].to_list()],
            mode="lines",
            name=f"{label} allocated",
            line_shape="hv",
        )
        fig.add_scatter(
            x=x,
            y=[v / 2**20 for v in part["total_reserved"].to_list()],
            mode="lines",
            name=f"{label} reserved",
            line_shape="hv",
            line_dash="dot",
        )
    return _layout(fig, "Device memory over time", "ms from first memory event", "MiB")


def bandwidth(frame: pl.DataFrame) -> go.Figure:
    """Markers: achieved bandwidth per task or window, with the device peak as a line."""
    fig = go.Figure()
    for source, part in frame.group_by("source", maintain_order=True):
        fig.add_scatter(
            x=list(range(part.height)),
            y=[v / 1e9 for v in part["achieved_bytes_per_s"].to_list()],
            mode="markers",
            name=_text(source[0], "unknown source"),
            text=[_text(name) for name in part["name"].to_list()],
        )
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


def flame_icicle(ids: list[str], labels: list[str], parents: list[str], values: list[int], title: str) -> go.Figure:
    """Icicle chart of a call tree (values inclusive, ns); see traceview.analysis.flame.build_tree."""
    fig = go.Figure(
        go.Icicle(
            ids=ids,
            labels=[_text(label) for label in labels],
            parents=parents,
            values=[v / 1e6 for v in values],
            branchvalues="total",
            tiling={"orientation": "v"},
            root={"color": "#f4f4f4"},
            maxdepth=12,
            hovertemplate="%{label}<br>%{value:.3f} ms (%{percentRoot:.1%} of all)<extra></extra>",
        )
    )
    fig.update_layout(title=title, template="plotly_white", height=560, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def _by_trace(points: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for point in points:
        out.setdefault(point["trace"], []).append(point)
    return out


MIX_COLORS = {"attention": "#E45756", "gemm": "#4C78A8", "comm": "#F58518", "other": "#BAB0AC"}


def _trace_basis(pts: list[dict], basis: str) -> tuple[str, str]:
    """The time one trace's points are plotted on, and a note for its name: wall time where none of its points has
    an active time (a CPU-only trace has no device tasks)."""
    if basis == "wall" or any(p["active_ns"] for p in pts):
        return basis, ""
    return "wall", ", wall time: no device tasks"


def throughput_figures(data: dict) -> list[tuple[str, go.Figure]]:
    """The throughput panels (name, figure) from Throughput.to_dict(); panels without points are left out.

    Step times and tokens/s are over data["time_basis"]: 'active' (the default: first to last device task of the
    step) or 'wall' (the step's annotation span); the axes say which."""
    from plotly.subplots import make_subplots

    basis = "wall" if data.get("time_basis") == "wall" else "active"
    time_title = "step wall time (ms)" if basis == "wall" else "active time (ms, first to last device task)"
    figures: list[tuple[str, go.Figure]] = []
    if data.get("prefill"):
        fig = go.Figure()
        for trace, pts in _by_trace(data["prefill"]).items():
            used, note = _trace_basis(pts, basis)
            pts = sorted((p for p in pts if p[f"{used}_ns"]), key=lambda p: (p["prompt_len"], p["step"]))
            fig.add_scatter(
                x=[p["prompt_len"] for p in pts],
                y=[p[f"{used}_ns"] / 1e6 for p in pts],
                mode="markers",
                name=f"{trace}{note}",
                text=[f"step {p['step']}, context {p['context_len']}" for p in pts],
            )
        figures.append(
            (
                "prefill",
                _layout(
                    fig, f"Prefill {basis} time vs prompt length", "prompt tokens (new tokens of the step)", time_title
                ),
            )
        )
    if data.get("decode"):
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        for trace, pts in _by_trace(data["decode"]).items():
            used, note = _trace_basis(pts, basis)
            pts = sorted((p for p in pts if p[f"{used}_ns"]), key=lambda p: (p["context_len"], p["step"]))
            x = [p["context_len"] for p in pts]
            fig.add_scatter(
                x=x,
                y=[p[f"{used}_ns"] / 1e6 for p in pts],
                mode="markers+lines",
                name=f"{trace} {used} ms{note}",
                secondary_y=False,
            )
            fig.add_scatter(
                x=x,
                y=[p[f"tokens_per_s_{used}"] for p in pts],
                mode="markers",
                marker_symbol="diamond",
                name=f"{trace} tokens/s ({used})",
                secondary_y=True,
            )
            if pts and "cost_per_million_tokens" in pts[0]:
                fig.add_scatter(
                    x=x,
                    y=[p["cost_per_million_tokens"] for p in pts],
                    mode="markers",
                    marker_symbol="x",
                    name=f"{trace} cost per 1M tokens",
                    secondary_y=True,
                )
        _layout(fig, f"Decode {basis} time and tokens/s vs context length", "context length (KV tokens)", time_title)
        fig.update_yaxes(title_text=f"tokens/s over {basis} time (cost per 1M tokens: wall)", secondary_y=True)
        figures.append(("decode", fig))
    if data.get("kv_cache"):
        fig = go.Figure()
        for trace, pts in _by_trace(data["kv_cache"]).items():
            pts = sorted(pts, key=lambda p: (p["context_len"], p["step"]))
            per_token = {p["kv_bytes_per_token"] for p in pts if p["kv_bytes_per_token"]}
            label = trace + (f" ({', '.join(f'{b:,} B/token' for b in sorted(per_token))})" if per_token else "")
            fig.add_scatter(
                x=[p["context_len"] for p in pts],
                y=[p["kv_bytes"] / 2**30 for p in pts],
                mode="markers",
                name=label,
                text=[f"step {p['step']} {p['phase']}" for p in pts],
            )
        figures.append(
            (
                "kv_cache",
                _layout(fig, "KV-cache bytes vs context length", "context length (KV tokens)", "KV cache (GiB)"),
            )
        )
    if data.get("mix"):
        traces = _by_trace(data["mix"])
        fig = make_subplots(rows=1, cols=len(traces), subplot_titles=list(traces), shared_yaxes=True)
        for col, (_trace, pts) in enumerate(traces.items(), start=1):
            labels = [f"{p['context_len']} ({p['phase']} s{p['step']})" for p in pts]
            for family, color in MIX_COLORS.items():
                fig.add_bar(
                    x=labels,
                    y=[p[f"{family}_pct"] for p in pts],
                    name=family,
                    marker_color=color,
                    legendgroup=family,
                    showlegend=col == 1,
                    row=1,
                    col=col,
                )
        fig.update_layout(barmode="stack")
        figures.append(
            (
                "mix",
                _layout(
                    fig,
                    "Share of device task time by family vs context length",
                    "context length (phase, step)",
                    "% of the step's device task time",
                ),
            )
        )
    if data.get("bandwidth"):
        fig = go.Figure()
        for trace, pts in _by_trace(data["bandwidth"]).items():
            pts = sorted(pts, key=lambda p: (p["context_len"] or 0, p["step"]))
            fig.add_scatter(
                x=[p["context_len"] for p in pts],
                y=[p["achieved_bytes_per_s"] / 1e9 for p in pts],
                mode="markers",
                name=trace,
            )
            peaks = {p["peak_bytes_per_s"] for p in pts if p["peak_bytes_per_s"]}
            for peak in sorted(peaks):
                fig.add_hline(y=peak / 1e9, line_dash="dash", annotation_text=f"{trace} peak {peak / 1e9:.0f} GB/s")
        figures.append(
            (
                "bandwidth",
                _layout(
                    fig, "Achieved bandwidth of decode steps vs the device peak", "context length (KV tokens)", "GB/s"
                ),
            )
        )
    return figures
