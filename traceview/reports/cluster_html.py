"""HTML of the cluster view (templates/cluster.html.j2, and the cluster section of the analyze report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traceview.analysis.cluster import ClusterResult
from traceview.reports import cluster_charts, cluster_text
from traceview.reports.templating import render

MAX_HTML_ROWS = 200
"""Rows per table in the page; the JSON has all of them."""


@dataclass
class ClusterView:
    """What the cluster section shows: (div id, figure) charts, (title, head, rows, more) tables, the findings."""

    ranks: list[int]
    figures: list[tuple[str, Any]]
    tables: list[tuple[str, tuple[str, ...], list[tuple[str, ...]], int]]
    findings: list[dict]
    errors: list[str]


def cluster_view(result: ClusterResult, prefix: str = "cluster") -> ClusterView:
    """The charts and tables of a cluster view; chart divs are named `<prefix>_<n>`."""
    figures = [
        cluster_charts.step_heatmap(result, "step_ns", "Step time per rank (ms)"),
        cluster_charts.step_heatmap(result, "wait_ns", "Wait in collectives per rank and step (ms)"),
        cluster_charts.straggler_chart(result),
        *(fig for _, fig in cluster_charts.link_matrices(result)),
    ]
    shown = [fig for fig in figures if fig is not None]
    tables: list[tuple[str, tuple[str, ...], list[tuple[str, ...]], int]] = []
    for title, head, rows in (
        ("Stragglers", cluster_text.STRAGGLER_HEAD, cluster_text.straggler_rows(result)),
        ("Ranks", cluster_text.RANK_HEAD, cluster_text.rank_rows(result)),
        ("Links", cluster_text.LINK_HEAD, cluster_text.link_rows(result)),
        ("Bus bandwidth", cluster_text.BANDWIDTH_HEAD, cluster_text.bandwidth_rows(result)),
        ("Communication overlap", cluster_text.OVERLAP_HEAD, cluster_text.overlap_rows(result)),
    ):
        tables.append((title, head, rows[:MAX_HTML_ROWS], max(0, len(rows) - MAX_HTML_ROWS)))
    return ClusterView(
        result.ranks, [(f"{prefix}_{i}", fig) for i, fig in enumerate(shown)], tables, result.findings, result.errors
    )


def to_html(result: ClusterResult) -> str:
    """`traceview cluster --html`: the cluster view on a page of its own."""
    return render("cluster.html.j2", title="traceview cluster", cluster=cluster_view(result), quality=result.quality)
