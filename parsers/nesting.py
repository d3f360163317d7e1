"""Nesting of slices on a track, computed without assuming that slices nest perfectly.

For every slice: `depth` is the number of slices on its track still open when it starts,
`parent` the innermost of those (the latest-starting one), `overlaps` whether it ends after
that parent ends (a partial overlap, kept and flagged), and `self` its duration minus the
part of its direct children that lies inside it. Vectorised with numpy: sorting plus a
sparse table of running maxima answers "nearest earlier slice still open" for all slices at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass
class Nesting:
    """Per-slice results, aligned with the input arrays."""

    depth: np.ndarray
    parent: np.ndarray  # slice id of the parent, -1 where none
    overlaps: np.ndarray
    self_ns: np.ndarray

    def columns(self, slice_id: np.ndarray) -> dict[str, pa.Array | np.ndarray]:
        """The model's nesting columns keyed by name, with slice_id, ready for `pa.table`."""
        return {
            "slice_id": slice_id,
            "depth": self.depth,
            "parent_id": pa.array(self.parent, mask=self.parent < 0),
            "overlaps_parent": self.overlaps,
            "self_ns": self.self_ns,
        }


def _nearest_open_before(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For sorted starts, index of the nearest earlier slice with end > start, or -1."""
    n = len(starts)
    # Only comparisons `end <= start` matter, and with the starts sorted, end <= start exactly when
    # (starts below end) <= (starts below start): int32 counts halve the sparse table's memory.
    ends = np.searchsorted(starts, ends, side="left").astype(np.int32)
    starts = np.searchsorted(starts, starts, side="left").astype(np.int32)
    levels = [ends]
    width = 1
    while width * 2 <= n:
        prev = levels[-1]
        levels.append(np.maximum(prev[:-width], prev[width:]))
        width *= 2
    cursor = np.arange(n, dtype=np.int64)  # candidates lie in [0, cursor)
    for k in range(len(levels) - 1, -1, -1):
        step = 1 << k
        block_start = cursor - step
        ok = block_start >= 0
        idx = np.where(ok, block_start, 0)
        level = levels[k]
        # level[k][j] = max(ends[j : j + 2**k]); valid for j < len(level)
        valid = ok & (idx < len(level))
        skip = valid & (level[np.minimum(idx, len(level) - 1)] <= starts)
        cursor = np.where(skip, block_start, cursor)
    found = cursor - 1
    has = found >= 0
    found_safe = np.where(has, found, 0)
    has &= ends[found_safe] > starts
    return np.where(has, found, -1)


def _open_count(starts: np.ndarray, ends: np.ndarray, durs: np.ndarray) -> np.ndarray:
    """Number of earlier slices (in sorted order) still open at each start."""
    n = len(starts)
    order_pos = np.arange(n, dtype=np.int64)
    closed = np.searchsorted(np.sort(ends), starts, side="right")
    # Zero-length slices at the same start sort last; the ones at or after a position
    # are counted in `closed` but are not earlier, so they are added back.
    zero = durs == 0
    zero_starts = starts[zero]
    zero_total = np.searchsorted(zero_starts, starts, side="right") - np.searchsorted(zero_starts, starts, side="left")
    zero_rank = np.zeros(n, dtype=np.int64)
    if zero.any():
        zpos = np.flatnonzero(zero)
        first_same = np.searchsorted(zero_starts, zero_starts, side="left")
        zero_rank[zpos] = np.arange(len(zpos)) - first_same
    later_zero = np.where(zero, zero_total - zero_rank, zero_total)
    return order_pos - (closed - later_zero)


def _track_nesting(starts: np.ndarray, ends: np.ndarray, durs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Depth and parent position of each slice of one track (sorted), or None when none overlap."""
    if np.all(np.maximum.accumulate(ends)[:-1] <= starts[1:]):
        return None  # nothing on this track overlaps (a device stream, usually): all at depth 0
    return _open_count(starts, ends, durs), _nearest_open_before(starts, ends)


def nest(track: np.ndarray, ts: np.ndarray, dur: np.ndarray, slice_id: np.ndarray, workers: int = 1) -> Nesting:
    """Nest slices per track. All inputs are 1-D arrays of equal length; `track` is an int code.

    Tracks are independent: with `workers` > 1 they are nested on that many threads (numpy
    releases the GIL in the sorts and searches that take the time).
    """
    n = len(ts)
    depth = np.zeros(n, dtype=np.int32)
    parent = np.full(n, -1, dtype=np.int64)
    overlaps = np.zeros(n, dtype=bool)
    self_ns = dur.astype(np.int64).copy()
    if n == 0:
        return Nesting(depth, parent, overlaps, self_ns)
    # Sort by track, start ascending, longer first, then file order.
    order = np.lexsort((slice_id, -np.maximum(dur, 0), ts, track))
    t_sorted = track[order]
    bounds = np.flatnonzero(np.diff(t_sorted)) + 1
    starts_all = ts[order].astype(np.int64)
    # A negative duration (kept as written in the slice) nests as a zero-length slice.
    durs_all = np.maximum(dur[order].astype(np.int64), 0)
    ends_all = starts_all + durs_all
    spans = list(zip(np.concatenate(([0], bounds)).tolist(), np.concatenate((bounds, [n])).tolist(), strict=True))

    def work(span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
        lo, hi = span
        return _track_nesting(starts_all[lo:hi], ends_all[lo:hi], durs_all[lo:hi])

    largest_first = sorted(spans, key=lambda span: span[0] - span[1])
    if workers > 1 and len(spans) > 1:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(work, largest_first))
    else:
        results = [work(span) for span in largest_first]
    for (lo, hi), result in zip(largest_first, results, strict=True):
        if result is None:
            continue
        d, p = result
        starts, ends, rows = starts_all[lo:hi], ends_all[lo:hi], order[lo:hi]
        has = p >= 0
        depth[rows] = d.astype(np.int32)
        parent_rows = rows[np.where(has, p, 0)]
        parent[rows[has]] = slice_id[parent_rows[has]]
        overlaps[rows[has]] = ends[has] > ends[p[has]]
        # Children's time inside the parent comes off the parent's self time.
        inside = np.minimum(ends[has], ends[p[has]]) - starts[has]
        np.subtract.at(self_ns, parent_rows[has], inside)
    return Nesting(depth, parent, overlaps, self_ns)
