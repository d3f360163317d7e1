"""`traceview analyze`: the library's analysis, handed to the terminal, JSON and HTML renderers."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from traceview.analysis.analyze import AnalysisReport, run_analyze
from traceview.analysis.report import RankRunner


def run(
    targets: list[Path],
    packs: list[Path],
    peak_bw: float | None,
    cache_dir: Path | None,
    with_html: bool,
    strict: bool,
    ray: bool = False,
    ray_cpus: int | None = None,
    peak_link_bw: float | None = None,
) -> AnalysisReport:
    """Analyse TARGETS; the flame, throughput and cluster sections only for an HTML report (`strict`: they may
    raise); with `ray`, the rank-scoped queries as Ray tasks."""
    rank_runner: RankRunner | None = None
    if ray:
        from traceview import ray_engine

        rank_runner = partial(ray_engine.submit_rank_work, num_cpus=ray_cpus)
    return run_analyze(
        targets,
        packs,
        peak_bw,
        cache_dir,
        sections=with_html,
        strict=strict,
        rank_runner=rank_runner,
        peak_link_gbps=peak_link_bw,
    )


def terminal_text(report: AnalysisReport, color: bool) -> str:
    """The terminal report."""
    from traceview.reports.terminal import render

    return render(report, color=color)


def json_text(report: AnalysisReport) -> str:
    """The --json report."""
    from traceview.reports.json_report import to_json

    return to_json(report)


def html_text(report: AnalysisReport) -> str:
    """The --html report."""
    from traceview.reports.html import to_html

    return to_html(report)


def warnings(report: AnalysisReport) -> list[str]:
    """Report sections that could not be computed, one line each."""
    return list(report.unavailable.values())
