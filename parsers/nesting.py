"""Nesting of slices on a track, computed without assuming that slices nest perfectly.

For every slice: `depth` is the number of slices on its track still open when it starts,
`parent` the innermost of those (the latest-starting one), `overlaps` whether it ends after
that parent ends (a partial overlap, kept and flagged), and `self` its duration minus the
part of its direct children that lies inside it. Vectorised with numpy: sorting, then
pointer jumping answers "nearest earlier slice still open" for all slices at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .arrownp import arrow_array


@dataclass
class Nesting:
    """Per-slice results, aligned with the input arrays."""

    depth: np.ndarray
    parent: np.ndarray  # slice id of the parent, -1 where none
    overlaps: np.ndarray
    self_ns: np.ndarray
    # Positions sorted by track, start, longer first, then slice id: the order `flowbind` searches.
    order: np.ndarray

    def columns(self, slice_id: np.ndarray) -> dict[str, pa.Array]:
        """The model's nesting columns keyed by name, with slice_id, ready for `pa.table`."""
        return {
            "slice_id": arrow_array(slice_id),
            "depth": arrow_array(self.depth),
            "parent_id": arrow_array(self.parent, mask=self.parent < 0),
            "overlaps_parent": arrow_array(self.overlaps),
            "self_ns": arrow_array(self.self_ns),
        }


def _nearest_open_before(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For sorted starts, index of the nearest earlier slice with end > start, or -1.

    Pointer jumping: every slice starts from the slice just before it. While the candidate is
    closed (end <= start), jump to the candidate's own candidate: everything between the two
    was already closed when the candidate started, so it is closed here too. All slices jump
    together, reading each other's candidates, so the chains shorten fast (a few dozen rounds
    on real traces); memory stays O(n).
    """
    n = len(starts)
    candidate = np.arange(-1, n - 1, dtype=np.int64)
    pending = np.arange(1, n, dtype=np.int64)
    while len(pending):
        current = candidate[pending]
        closed = ends[current] <= starts[pending]
        pending = pending[closed]
        jumped = candidate[current[closed]]
        candidate[pending] = jumped
        pending = pending[jumped >= 0]
    return candidate


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


def _track_order(track: np.ndarray, ts: np.ndarray, dur: np.ndarray, slice_id: np.ndarray) -> np.ndarray:
    """Positions sorted by track, start ascending, longer first, then slice id."""
    longer_first = -np.maximum(dur, 0)
    if not np.all(slice_id[1:] > slice_id[:-1]):
        return np.lexsort((slice_id, longer_first, ts, track))
    # Slice ids ascending: a stable sort keeps them in order among equals. Track and start fit
    # one int64 key on real traces (few tracks, a span of 2**40 ns is 18 minutes), and a stable
    # sort of it is fast where a lexsort of random durations is not; equal keys are rare and
    # are then ordered by duration alone.
    by_track = np.argsort(track, kind="stable")
    code = np.empty(len(track), dtype=np.int64)
    code[by_track] = np.cumsum(np.concatenate(([0], track[by_track][1:] != track[by_track][:-1])))
    first, span = int(ts.min()), int(ts.max()) - int(ts.min())
    if span.bit_length() + int(code[by_track[-1]]).bit_length() > 62:
        return np.lexsort((longer_first, ts, track))
    key = (code << span.bit_length()) | (ts - first)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    equal = sorted_key[1:] == sorted_key[:-1]
    if equal.any():
        tied = np.flatnonzero(np.concatenate(([False], equal)) | np.concatenate((equal, [False])))
        order[tied] = order[tied][np.lexsort((longer_first[order[tied]], sorted_key[tied]))]
    return order


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
        return Nesting(depth, parent, overlaps, self_ns, np.zeros(0, dtype=np.int64))
    order = _track_order(track, ts, dur, slice_id)
    t_sorted = track[order]
    bounds = np.flatnonzero(np.diff(t_sorted)) + 1
    starts_all = ts[order].astype(np.int64)
    # A negative duration (kept as written in the slice) nests as a zero-length slice.
    durs_all = np.maximum(dur[order].astype(np.int64), 0)
    ends_all = starts_all + durs_all
    spans = list(zip(np.concatenate(([0], bounds)).tolist(), np.concatenate((bounds, [n])).tolist(), strict=True))

    def work(span: tuple[int, int]) -> None:
        # Tracks own disjoint rows, so threads write their results in place.
        lo, hi = span
        starts, ends, rows = starts_all[lo:hi], ends_all[lo:hi], order[lo:hi]
        result = _track_nesting(starts, ends, durs_all[lo:hi])
        if result is None:
            return
        d, p = result
        has = p >= 0
        depth[rows] = d.astype(np.int32)
        parent_rows = rows[np.where(has, p, 0)]
        parent[rows[has]] = slice_id[parent_rows[has]]
        overlaps[rows[has]] = ends[has] > ends[p[has]]
        # Children's time inside the parent comes off the parent's self time.
        inside = np.minimum(ends[has], ends[p[has]]) - starts[has]
        np.subtract.at(self_ns, parent_rows[has], inside)

    largest_first = sorted(spans, key=lambda span: span[0] - span[1])
    if workers > 1 and len(spans) > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, largest_first))
    else:
        for span in largest_first:
            work(span)
    return Nesting(depth, parent, overlaps, self_ns, order)


def nearest_earlier_reaching(ends: np.ndarray) -> np.ndarray:
    """For slices of one track in nesting order (`Nesting.order`), the index of the nearest earlier slice that
    ends at or after each one ends, or -1: the innermost slice that contains it whole."""
    return _nearest_open_before(ends.astype(np.int64) - 1, ends)
