"""Rows of one level aligned across the two sides: totals, shares, deltas, intervals and significance."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from traceview.analysis.diff.report import DiffRow, LevelDiff
from traceview.analysis.diff.sides import Side
from traceview.analysis.diff.stats import bootstrap_ci, pct_change


def diff_level(
    base: Side, test: Side, level: str, cross: bool, min_effect: float, resamples: int, seed: int
) -> LevelDiff:
    """TEST against BASE at LEVEL, rows sorted by largest absolute change (then key)."""
    b_stats, b_units = base.level_stats(level, cross)
    t_stats, t_units = test.level_stats(level, cross)
    _, unit_kind_b = base.unit_column()
    _, unit_kind_t = test.unit_column()
    keys = sorted(set(b_stats["key"].to_list()) | set(t_stats["key"].to_list()), key=lambda k: (k is None, k))
    b_total = int(b_stats["total_ns"].sum() or 0)
    t_total = int(t_stats["total_ns"].sum() or 0)

    b_order = sorted(set(b_units["unit"].to_list()), key=str)
    t_order = sorted(set(t_units["unit"].to_list()), key=str)
    paired = unit_kind_b == unit_kind_t and b_order == t_order and len(b_order) >= 2
    units = unit_kind_b if unit_kind_b == unit_kind_t else "none"
    if units != "none":
        mb, mt = _unit_matrix(b_units, keys, b_order), _unit_matrix(t_units, keys, t_order)
        low, high = bootstrap_ci(mb, mt, paired, resamples, seed)
        # a row seen in fewer than 2 units on a side has no spread to measure: no interval
        few = (np.count_nonzero(mb, axis=1) < 2) | (np.count_nonzero(mt, axis=1) < 2)
        low[few] = np.nan
        high[few] = np.nan
    else:
        low = high = np.full(len(keys), np.nan)

    b_by = {r["key"]: r for r in b_stats.iter_rows(named=True)}
    t_by = {r["key"]: r for r in t_stats.iter_rows(named=True)}
    rows = [
        _row(key, b_by.get(key), t_by.get(key), (b_total, t_total), (low[i], high[i]), min_effect)
        for i, key in enumerate(keys)
    ]
    rows.sort(key=lambda r: (-abs(r.delta_ns), r.key))
    return LevelDiff(level, rows, b_total, t_total, units, paired)


def _unit_matrix(units: pl.DataFrame, keys: list[str], order: list[str]) -> np.ndarray:
    """keys x units: the total of each key in each unit (step or rank)."""
    row = {k: i for i, k in enumerate(keys)}
    col = {u: j for j, u in enumerate(order)}
    m = np.zeros((len(keys), len(order)))
    for key, unit, total in units.iter_rows():
        m[row[key], col[unit]] += total
    return m


def _row(
    key: str,
    b: dict[str, Any] | None,
    t: dict[str, Any] | None,
    totals: tuple[int, int],
    ci: tuple[float, float],
    min_effect: float,
) -> DiffRow:
    b_total, t_total = totals
    bt = int(b["total_ns"]) if b else 0
    tt = int(t["total_ns"]) if t else 0
    status = "new" if b is None else "vanished" if t is None else "changed"
    delta_pct = pct_change(tt, bt) if b and t else None
    lo = None if math.isnan(ci[0]) else float(ci[0])
    hi = None if math.isnan(ci[1]) else float(ci[1])
    if status != "changed":
        significant = True
    else:
        significant = (
            lo is not None and hi is not None and (lo > 0 or hi < 0)
            and delta_pct is not None and abs(delta_pct) >= min_effect
        )  # fmt: skip
    return DiffRow(
        key=str(key),
        base_count=int(b["count"]) if b else 0,
        test_count=int(t["count"]) if t else 0,
        base_total_ns=bt,
        test_total_ns=tt,
        base_mean_ns=_float(b["mean_ns"]) if b else None,
        test_mean_ns=_float(t["mean_ns"]) if t else None,
        base_p50_ns=_float(b["p50_ns"]) if b else None,
        test_p50_ns=_float(t["p50_ns"]) if t else None,
        base_share_pct=100.0 * bt / b_total if b_total else 0.0,
        test_share_pct=100.0 * tt / t_total if t_total else 0.0,
        delta_ns=tt - bt,
        delta_pct=delta_pct,
        ci_low_pct=lo,
        ci_high_pct=hi,
        significant=bool(significant),
        status=status,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
