"""traceview: AI profiler traces (Kineto/Chrome, Ascend) into answers, SQL-first.

The library API (every import is deferred to the call, so `import traceview` stays light)::

    session = traceview.open("rank0.pt.trace.json.gz")      # SQL over the trace model
    report = traceview.analyze(["rank0.pt.trace.json.gz"])  # the query packs: findings, results
    flame = traceview.flame(["rank0.pt.trace.json.gz"], weight="device")
    points = traceview.throughput(["h200.pt.trace.json.gz"])
    change = traceview.diff(base, test, by="family")         # traceview.analysis.diff
    view = traceview.cluster(["rank0.json.gz", "rank1.json.gz"])  # stragglers, slow ranks and links

Each result has `.to_json()`, a JSON-able dict (write it with `traceview.jsonify.dumps`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from traceview._version import __version__

if TYPE_CHECKING:
    from traceview.analysis.cluster import ClusterResult
    from traceview.analysis.diff import DiffReport
    from traceview.analysis.flame import FlameResult
    from traceview.analysis.report import AnalysisReport
    from traceview.analysis.throughput import Throughput
    from traceview.engine import Session

__all__ = ["__version__", "analyze", "cluster", "diff", "flame", "open", "throughput"]

PathLike = str | Path


def open(target: PathLike, cache_dir: PathLike | None = None) -> Session:  # noqa: A001 - the public name
    """Open a trace file, dump directory or store; return a `traceview.engine.Session` (SQL over the model)."""
    from traceview.engine import open_target

    return open_target(target, cache_dir=cache_dir)


def analyze(
    targets: list[PathLike],
    packs: list[PathLike] | None = None,
    peak_bw_gbps: float | None = None,
    cache_dir: PathLike | None = None,
    sections: bool = False,
) -> AnalysisReport:
    """Run the built-in query pack (and PACKS, directories) over TARGETS (trace files, dumps or stores).

    With `sections` the report also has its flame graph and throughput points (`report.flame`,
    `report.throughput`); one that cannot be computed is None and `report.unavailable` says why.
    """
    from traceview.analysis.analyze import run_analyze

    return run_analyze(
        [Path(t) for t in targets],
        [Path(p) for p in packs or []],
        peak_bw_gbps,
        Path(cache_dir) if cache_dir else None,
        sections=sections,
    )


def flame(
    targets: list[PathLike], weight: str = "wall", step: int | None = None, cache_dir: PathLike | None = None
) -> FlameResult:
    """The host call tree of TARGETS as folded stacks, by `weight`: wall, self or device time (ns)."""
    from traceview.analysis.flame import run_flame

    return run_flame([Path(t) for t in targets], weight, step, Path(cache_dir) if cache_dir else None)


def throughput(
    targets: list[PathLike],
    device_cost: float | None = None,
    cache_dir: PathLike | None = None,
    peak_bw_gbps: float | None = None,
) -> Throughput:
    """Prefill/decode throughput, KV cache, kernel mix and bandwidth against context length, one series a target."""
    from traceview.analysis.throughput import run_throughput

    return run_throughput([Path(t) for t in targets], device_cost, Path(cache_dir) if cache_dir else None, peak_bw_gbps)


def cluster(
    targets: list[PathLike], peak_link_gbps: float | None = None, cache_dir: PathLike | None = None
) -> ClusterResult:
    """The cluster view of TARGETS (two or more ranks): collectives aligned across ranks, stragglers, slow ranks,
    slow links, bus bandwidth against the interconnect peak (PEAK_LINK_GBPS overrides the device table), overlap."""
    from traceview.analysis.cluster import run_cluster

    return run_cluster([Path(t) for t in targets], peak_link_gbps, Path(cache_dir) if cache_dir else None)


def diff(
    base: PathLike,
    test: PathLike,
    by: str = "kernel",
    fail_on: list[str] | None = None,
    cache_dir: PathLike | None = None,
    **options: Any,
) -> DiffReport:
    """TEST against BASE (trace files, dumps or stores) at level BY (op, kernel, family, phase, step), with the
    gates FAIL_ON evaluated; OPTIONS as `traceview.analysis.diff.diff` (min_effect, resamples, seed)."""
    from traceview.analysis.diff import diff as run_diff

    cache = Path(cache_dir) if cache_dir else None
    return run_diff(Path(base), Path(test), by=by, fail_on=fail_on, cache_dir=cache, **options)
