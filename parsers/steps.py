"""Which ProfilerStep#N each slice falls in, vectorised with numpy.

Host slices take the step whose span (on the same process) contains their start: the latest
step starting at or before it, if it has not ended. Device slices take the step of the host
launch call with the same correlation id (the first such call, in file order).
"""

from __future__ import annotations

import numpy as np


def host_steps(
    pid: np.ndarray, ts: np.ndarray, step_pid: np.ndarray, step_start: np.ndarray, step_end: np.ndarray,
    step_no: np.ndarray,
) -> np.ndarray:
    """Step of each host slice (pid, ts) given the step spans; -1 where none."""
    out = np.full(len(ts), -1, dtype=np.int64)
    for process in np.unique(step_pid):
        spans = np.flatnonzero(step_pid == process)
        order = spans[np.argsort(step_start[spans], kind="stable")]
        starts, ends, numbers = step_start[order], step_end[order], step_no[order]
        rows = np.flatnonzero(pid == process)
        index = np.searchsorted(starts, ts[rows], side="right") - 1
        ok = index >= 0
        safe = np.where(ok, index, 0)
        ok &= ts[rows] < ends[safe]
        out[rows[ok]] = numbers[safe[ok]]
    return out


def device_steps(correlation: np.ndarray, launch_correlation: np.ndarray, launch_step: np.ndarray) -> np.ndarray:
    """Step of each device slice through its launch's correlation id; -1 where none.

    `launch_*` are in file order; the first launch of a correlation id wins. A correlation of
    -1 means none.
    """
    out = np.full(len(correlation), -1, dtype=np.int64)
    if len(launch_correlation) == 0:
        return out
    keys, first = np.unique(launch_correlation, return_index=True)
    steps = launch_step[first]
    index = np.searchsorted(keys, correlation)
    safe = np.minimum(index, len(keys) - 1)
    found = (correlation >= 0) & (keys[safe] == correlation)
    out[found] = steps[safe[found]]
    return out
