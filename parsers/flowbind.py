"""Binding flow events (s/t/f) to the slices they start or end at, vectorised with numpy.

A flow point binds to the innermost slice on its track (pid, tid) that encloses it: start the
search at the slice that starts last at or before the point (of slices starting together, the
shortest), and climb its parents until one is still open at the point (end >= point). A point
no slice encloses binds to nothing.
"""

from __future__ import annotations

import numpy as np


def bind_points(
    slice_track: np.ndarray, slice_ts: np.ndarray, slice_dur: np.ndarray, slice_id: np.ndarray,
    slice_parent: np.ndarray, point_track: np.ndarray, point_ts: np.ndarray, order: np.ndarray | None = None,
) -> np.ndarray:
    """slice_id each point binds to, -1 where none.

    `slice_id` must be ascending; `slice_parent` holds each slice's parent slice_id (-1 for none).
    `order`, when given, is the slices sorted by track, start, longer first (`Nesting.order`).
    """
    out = np.full(len(point_ts), -1, dtype=np.int64)
    if len(point_ts) == 0 or len(slice_ts) == 0:
        return out
    dur = np.maximum(slice_dur, 0)
    if order is None:
        order = np.lexsort((-dur, slice_ts, slice_track))
    tracks, starts_at = np.unique(slice_track[order], return_index=True)
    bounds = np.append(starts_at, len(order))
    point_order = np.argsort(point_track, kind="stable")
    point_tracks, point_starts = np.unique(point_track[point_order], return_index=True)
    point_bounds = np.append(point_starts, len(point_order))
    where = np.searchsorted(tracks, point_tracks)
    for k, track in enumerate(point_tracks):
        j = where[k]
        if j >= len(tracks) or tracks[j] != track:
            continue
        rows = order[bounds[j] : bounds[j + 1]]
        points = point_order[point_bounds[k] : point_bounds[k + 1]]
        index = np.searchsorted(slice_ts[rows], point_ts[points], side="right") - 1
        ok = index >= 0
        out[points[ok]] = rows[index[ok]]  # a position for now
    return _climb_to_enclosing(out, point_ts, slice_ts, dur, slice_id, slice_parent)


def _climb_to_enclosing(
    position: np.ndarray, point_ts: np.ndarray, slice_ts: np.ndarray, dur: np.ndarray, slice_id: np.ndarray,
    slice_parent: np.ndarray,
) -> np.ndarray:
    """From candidate positions, climb parents until the slice is open at the point; return slice ids."""
    pending = np.flatnonzero(position >= 0)
    while len(pending):
        here = position[pending]
        closed = slice_ts[here] + dur[here] < point_ts[pending]
        pending = pending[closed]
        if not len(pending):
            break
        parent = slice_parent[position[pending]]
        has = parent >= 0
        position[pending[~has]] = -1
        pending = pending[has]
        position[pending] = np.searchsorted(slice_id, parent[has])
    found = position >= 0
    position[found] = slice_id[position[found]]
    return position


def pair_flows(key: np.ndarray, is_start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair flow points (in file order) that share a key (their cat and id, as one integer).

    Returns the positions of the points that end or step a flow (`t`, `f`), the position of the
    start of each of their flows (the first `s` of its key in file order; -1 where none), and the
    positions of the starts whose key no other point has. One stable sort: ids mostly grow through
    a trace, which timsort takes in about one pass.
    """
    n = len(key)
    order = np.argsort(key, kind="stable")  # by key, then file order
    sorted_key = key[order]
    new_group = np.empty(n, dtype=bool)
    new_group[:1] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new_group[1:])
    group = np.empty(n, dtype=np.int64)
    group[order] = np.cumsum(new_group) - 1
    groups = int(new_group.sum())
    starts, ends = np.flatnonzero(is_start), np.flatnonzero(~is_start)
    first_start = np.full(groups, -1, dtype=np.int64)
    sorted_starts = order[is_start[order]]  # starts by key, then file order: a group's first start leads it
    start_group = group[sorted_starts]
    leads = np.ones(len(sorted_starts), dtype=bool)
    np.not_equal(start_group[1:], start_group[:-1], out=leads[1:])
    first_start[start_group[leads]] = sorted_starts[leads]
    has_end = np.bincount(group[ends], minlength=groups) > 0
    return ends, first_start[group[ends]], starts[~has_end[group[starts]]]
