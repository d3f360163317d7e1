"""`analyze`: the query packs over the traces, and on request the report's flame and throughput sections.

The sections are computed here, once, for every renderer. A section that cannot be computed does not cost
the report: it is left out and `AnalysisReport.unavailable` states why (`strict=True` raises instead).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from traceview.analysis import cluster as cluster_analysis
from traceview.analysis import flame as flame_analysis
from traceview.analysis import throughput as throughput_analysis
from traceview.analysis.report import AnalysisReport, RankRunner, run_packs
from traceview.engine import connect, resolve_store
from traceview.sandbox import DEFAULT_TIME_LIMIT_S

__all__ = ["AnalysisReport", "run_analyze"]

FLAME_SECTION = "flame chart"
THROUGHPUT_SECTION = "throughput panels"
CLUSTER_SECTION = "cluster view"


def run_analyze(
    targets: list[Path],
    extra_packs: list[Path] | None = None,
    peak_bw_gbps: float | None = None,
    cache_dir: Path | None = None,
    limit_s: float = DEFAULT_TIME_LIMIT_S,
    sections: bool = False,
    strict: bool = False,
    rank_runner: RankRunner | None = None,
    peak_link_gbps: float | None = None,
) -> AnalysisReport:
    """Analyse TARGETS (trace files, dump directories or stores) with the built-in pack and EXTRA_PACKS.

    With `sections`, also the flame graph (device time where the traces have device tasks, else wall time)
    and the throughput points, and for two or more ranks the cluster view; a section that fails is recorded in
    `unavailable` unless `strict`. With `rank_runner` (`traceview.ray_engine.submit_rank_work`), the rank-scoped
    queries run through it.
    """
    stores = [resolve_store(Path(target), Path(cache_dir) if cache_dir else None) for target in targets]
    report = run_packs(stores, extra_packs, peak_bw_gbps, limit_s, rank_runner, peak_link_gbps)
    if sections:
        add_sections(report, stores, strict)
    return report


def report_flame(stores: list[Path]) -> flame_analysis.FlameResult:
    """The report's flame graph: device time by launcher where there are device tasks, else wall time."""
    con = connect(stores)
    try:
        weight = flame_analysis.Weight.device if flame_analysis.has_device_tasks(con) else flame_analysis.Weight.wall
        return flame_analysis.compute_flame(con, weight)
    finally:
        con.close()


def add_sections(report: AnalysisReport, stores: list[Path], strict: bool = False) -> None:
    """Compute the flame, throughput and (two or more ranks) cluster sections of `report` (over STORES) into it."""

    def flame() -> None:
        report.flame = report_flame(stores)

    def throughput() -> None:
        report.throughput = throughput_analysis.throughput_from_report(report, stores)

    def cluster() -> None:
        report.cluster = cluster_analysis.from_report(report, stores)

    for name, compute in ((FLAME_SECTION, flame), (THROUGHPUT_SECTION, throughput), (CLUSTER_SECTION, cluster)):
        _section(report, name, compute, strict)


def _section(report: AnalysisReport, name: str, compute: Callable[[], None], strict: bool) -> None:
    # Deliberately broad: one section must not cost the whole report. Nothing is hidden: the reason is kept in
    # the report (the HTML shows it, the CLI warns), and strict mode (the CLI's --debug) raises it.
    try:
        compute()
    except Exception as exc:  # noqa: BLE001
        if strict:
            raise
        report.unavailable[name] = f"{name} left out ({type(exc).__name__}: {exc})"
