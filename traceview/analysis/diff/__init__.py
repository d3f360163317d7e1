"""Diff two traces: align rows at one level and report what changed, with noise-aware significance.

Rows are aligned at one level (`by`): framework ops by name, device tasks by normalised name, kernel
families (the core pack's family rules, _family_rules.sql), phases (phases.sql) or steps. Each row gets
count/total/mean/p50/share on both sides, the absolute and relative delta, and a bootstrap confidence
interval over the per-step (or per-rank) totals. A Kineto (CUDA/ROCm) trace against an Ascend trace is
compared at the framework-op level with the device time of each op attributed through correlation.

Modules: names (normalisation), sides (per-side SQL), alignment (rows of a level), stats (bootstraps),
summary (whole-trace metrics), cross_vendor, gates (`--fail-on`), op_tree (for the flame chart), report.
"""

from __future__ import annotations

from pathlib import Path

from traceview.analysis.diff.alignment import diff_level
from traceview.analysis.diff.cross_vendor import cross_vendor_ops, is_cross_vendor
from traceview.analysis.diff.gates import evaluate_gate, gate_levels, parse_gate
from traceview.analysis.diff.names import canonical_op, normalise_kernel
from traceview.analysis.diff.op_tree import build_op_tree
from traceview.analysis.diff.report import LEVELS, DiffReport, DiffRow, Gate, LevelDiff, SummaryMetric
from traceview.analysis.diff.sides import Side
from traceview.analysis.diff.summary import SUMMARY_METRICS, summary_metrics
from traceview.errors import UserError

DEFAULT_MIN_EFFECT_PCT = 2.0
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0

__all__ = [
    "DEFAULT_MIN_EFFECT_PCT",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "LEVELS",
    "SUMMARY_METRICS",
    "DiffReport",
    "DiffRow",
    "Gate",
    "LevelDiff",
    "SummaryMetric",
    "canonical_op",
    "diff",
    "normalise_kernel",
    "parse_gate",
]


def diff(
    base: Path,
    test: Path,
    by: str = "kernel",
    fail_on: list[str] | None = None,
    min_effect: float = DEFAULT_MIN_EFFECT_PCT,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    cache_dir: Path | None = None,
    with_summary: bool = True,
    with_tree: bool = False,
) -> DiffReport:
    """Diff TEST against BASE (trace files, dump directories or stores) at level BY.

    The levels the gates `fail_on` read are diffed too, and the gates evaluated. `min_effect` is the
    smallest |change| in % that counts as significant; `resamples` and `seed` drive the bootstrap (the
    result is a pure function of the inputs). `with_summary` adds the whole-trace metrics, `with_tree`
    the op tree for the differential flame chart. Raises UserError for an unknown level or a bad gate.
    """
    if by not in LEVELS:
        raise UserError(f"--by {by}: expected one of {', '.join(LEVELS)}")
    gates = list(fail_on or [])
    levels = [by] + sorted(gate_levels(gates) - {by})
    base_side, test_side = Side(base, cache_dir), Side(test, cache_dir)
    try:
        cross = is_cross_vendor(base_side, test_side)
        diffs = {lvl: diff_level(base_side, test_side, lvl, cross, min_effect, resamples, seed) for lvl in levels}
        summary = summary_metrics(base_side, test_side, min_effect, resamples, seed) if with_summary else {}
        xv = cross_vendor_ops(base_side, test_side, min_effect) if cross else None
        tree = build_op_tree(base_side, test_side) if with_tree else None
    finally:
        base_side.close()
        test_side.close()
    report = DiffReport(str(base), str(test), by, diffs, summary, min_effect, cross_vendor=xv, op_tree=tree)
    report.gates = [evaluate_gate(expr, report) for expr in gates]
    return report
