"""Plotly figures of the cluster view: rank x step heatmaps, the link matrix and the straggler chart."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from traceview.analysis.cluster import ClusterResult

MAX_STRAGGLER_COLLECTIVES = 10
"""Collectives drawn in the straggler chart: the latest last arrivals."""


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _grid(rows: list[dict], y_key: str, x_key: str, value_key: str) -> tuple[list, list, list[list]]:
    """Sorted y and x labels and the matrix z[y][x] of `value_key` (None where there is no row)."""
    ys = sorted({r[y_key] for r in rows if r[y_key] is not None})
    xs = sorted({r[x_key] for r in rows if r[x_key] is not None})
    y_at, x_at = {y: i for i, y in enumerate(ys)}, {x: i for i, x in enumerate(xs)}
    z: list[list] = [[None] * len(xs) for _ in ys]
    for r in rows:
        if r[y_key] in y_at and r[x_key] in x_at and r[value_key] is not None:
            z[y_at[r[y_key]]][x_at[r[x_key]]] = r[value_key]
    return ys, xs, z


def step_heatmap(result: ClusterResult, value_key: str, title: str) -> go.Figure | None:
    """Rank x step heatmap of `value_key` (step_ns or wait_ns of `result.steps`), in ms."""
    rows = [{**r, "ms": None if r[value_key] is None else r[value_key] / 1e6} for r in result.steps]
    if not rows:
        return None
    ranks, steps, z = _grid(rows, "rank", "step", "ms")
    fig = go.Figure(
        go.Heatmap(
            x=[str(s) for s in steps],
            y=[f"rank {r}" for r in ranks],
            z=z,
            colorscale="Viridis",
            colorbar={"title": "ms"},
            hovertemplate="%{y} step %{x}: %{z:.3f} ms<extra></extra>",
        )
    )
    return _layout(fig, title, "step", "rank", height=max(300, min(900, 40 + 14 * len(ranks))))


def link_matrices(result: ClusterResult) -> list[tuple[str, go.Figure]]:
    """Per transport, a src x dst heatmap of bandwidth (GB/s): all ops of the link added up."""
    totals: dict[str, dict[tuple[int, int], list[int]]] = {}
    for link in result.links:
        if link["src_rank"] is None or link["dst_rank"] is None or not link["transit_ns"]:
            continue
        pair = totals.setdefault(link["transport"] or "unknown", {}).setdefault(
            (link["src_rank"], link["dst_rank"]), [0, 0]
        )
        pair[0] += link["bytes"] or 0
        pair[1] += link["transit_ns"]
    figures = []
    for transport, pairs in sorted(totals.items()):
        rows = [{"src": s, "dst": d, "gbps": b / t} for (s, d), (b, t) in pairs.items() if t]
        srcs, dsts, z = _grid(rows, "src", "dst", "gbps")
        fig = go.Figure(
            go.Heatmap(
                x=[str(d) for d in dsts],
                y=[str(s) for s in srcs],
                z=z,
                colorscale="RdYlGn",
                colorbar={"title": "GB/s"},
                hovertemplate="%{y} -> %{x}: %{z:.2f} GB/s<extra></extra>",
            )
        )
        figures.append(
            (transport, _layout(fig, f"Link bandwidth, {transport} (src x dst)", "destination rank", "source rank"))
        )
    return figures


def straggler_chart(result: ClusterResult) -> go.Figure | None:
    """Arrival offset (from the first rank's arrival) per rank at the collectives with the latest last arrival."""
    worst = result.stragglers[:MAX_STRAGGLER_COLLECTIVES]
    if not worst:
        return None
    wanted = {(r["group"], r["op"], r["seq"]): r for r in worst}
    series: dict[tuple, list[dict]] = {key: [] for key in wanted}
    seqs = sorted({r["seq"] for r in worst})
    for call in result.calls.filter(pl.col("seq").is_in(seqs)).to_dicts():
        op = "send_recv" if call["op"] in ("send", "recv") else call["op"]
        key = (call["group"] or "", op, call["seq"])
        if key in series:
            series[key].append(call)
    fig = go.Figure()
    for key, calls in series.items():
        row = wanted[key]
        calls.sort(key=lambda c: c["rank"])
        step = "" if row["step"] is None else f"step {row['step']} "
        fig.add_scatter(
            x=[c["rank"] for c in calls],
            y=[c["arrival_offset_ns"] / 1e6 for c in calls],
            mode="markers+lines",
            name=f"{step}{row['op']} #{row['seq']} (last: rank {row['last_rank']})",
            hovertemplate="rank %{x}: %{y:.3f} ms after the first<extra></extra>",
        )
    return _layout(fig, "Arrival offset per rank at the slowest collectives", "rank", "ms after the first rank")
