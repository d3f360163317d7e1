"""Noise-aware statistics: bootstrap confidence intervals of relative changes, resampling steps or ranks."""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95


def pct_change(new: float | None, old: float | None) -> float | None:
    """(new - old) / old in %, or None where old is missing, zero or NaN."""
    if new is None or old is None or old == 0 or (isinstance(old, float) and math.isnan(old)):
        return None
    return (new - old) / old * 100.0


def bootstrap_ci(
    base: np.ndarray, test: np.ndarray, paired: bool, resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the CONFIDENCE interval of (test total / base total - 1) in %, resampling units.

    base, test: rows x units matrices of per-unit totals. Paired: one resample of unit indices for
    both sides (the units are the same steps); else each side resampled on its own.
    """
    rng = np.random.default_rng(seed)
    n_b, n_t = base.shape[1], test.shape[1]
    if n_b < 2 or n_t < 2:
        nan = np.full(base.shape[0], np.nan)
        return nan, nan
    w_b = _weights(rng, resamples, n_b)
    w_t = w_b if paired else _weights(rng, resamples, n_t)
    sums_b = base @ w_b.T  # rows x resamples
    sums_t = test @ w_t.T
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(sums_b > 0, (sums_t / sums_b - 1.0) * 100.0, np.nan)
    alpha = (1 - CONFIDENCE) / 2 * 100
    ok = ~np.all(np.isnan(rel), axis=1)
    low = np.full(base.shape[0], np.nan)
    high = np.full(base.shape[0], np.nan)
    if ok.any():
        low[ok] = np.nanpercentile(rel[ok], alpha, axis=1)
        high[ok] = np.nanpercentile(rel[ok], 100 - alpha, axis=1)
    return low, high


def _weights(rng: np.random.Generator, resamples: int, n: int) -> np.ndarray:
    """resamples x n: how often each unit is drawn in each resample."""
    idx = rng.integers(0, n, size=(resamples, n))
    weights = np.zeros((resamples, n))
    np.add.at(weights, (np.repeat(np.arange(resamples), n), idx.ravel()), 1.0)
    return weights


def median_ci(
    base: dict[str, float], test: dict[str, float], resamples: int, seed: int
) -> tuple[float | None, float | None]:
    """The CONFIDENCE interval of (test median / base median - 1) in %, over per-step values keyed by step.

    Paired (one resample of indices for both sides) when both sides have the same steps.
    """
    keys_b, keys_t = sorted(base), sorted(test)
    if len(keys_b) < 2 or len(keys_t) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    vb = np.array([base[k] for k in keys_b])
    vt = np.array([test[k] for k in keys_t])
    paired = keys_b == keys_t
    ib = rng.integers(0, len(vb), size=(resamples, len(vb)))
    it = ib if paired else rng.integers(0, len(vt), size=(resamples, len(vt)))
    mb = np.median(vb[ib], axis=1)
    mt = np.median(vt[it], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mb > 0, (mt / mb - 1) * 100, np.nan)
    if np.all(np.isnan(rel)):
        return None, None
    alpha = (1 - CONFIDENCE) / 2 * 100
    return float(np.nanpercentile(rel, alpha)), float(np.nanpercentile(rel, 100 - alpha))
