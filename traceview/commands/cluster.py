"""`traceview cluster`: the library's cluster view, as a terminal summary, JSON and HTML."""

from __future__ import annotations

from pathlib import Path

from traceview import jsonify
from traceview.analysis.cluster import ClusterResult, run_cluster


def run(
    targets: list[Path],
    peak_link_bw: float | None,
    cache_dir: Path | None,
    ray: bool = False,
    ray_cpus: int | None = None,
) -> ClusterResult:
    """The cluster view of TARGETS (two or more ranks); with `ray`, the per-rank parts as Ray tasks."""
    return run_cluster(targets, peak_link_bw, cache_dir, ray=ray, ray_cpus=ray_cpus)


def warnings(result: ClusterResult) -> list[str]:
    """Analyses that failed, one line each."""
    return list(result.errors)


def json_text(result: ClusterResult) -> str:
    """The --json document."""
    return jsonify.dumps(result.to_json(), indent=True)


def html_text(result: ClusterResult) -> str:
    """The --html page."""
    from traceview.reports.cluster_html import to_html

    return to_html(result)


def summary(result: ClusterResult) -> list[str]:
    """The terminal summary, one line each."""
    from traceview.reports.cluster_text import summary as text_summary

    return text_summary(result)
