"""Which ProfilerStep#N each slice falls in, vectorised with numpy.

Host slices take the step whose span (on the same process) contains their start: the latest
step starting at or before it, if it has not ended. Device slices take the step of the host
launch call with the same correlation id (the first such call, in file order); device slices
with no launch record (DMA requests, tasks of a graph or queue the host did not launch one by one)
take the step whose window holds their start: first the step's device window (from its first
launched device task to the end of its last), else its host span.
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


def unlaunched_steps(
    ts: np.ndarray, launched_ts: np.ndarray, launched_end: np.ndarray, launched_step: np.ndarray,
    step_start: np.ndarray, step_end: np.ndarray, step_no: np.ndarray,
) -> np.ndarray:
    """Step of each device slice without a launch record (start `ts`); -1 where no window holds it.

    `launched_*` are the device slices whose step came from their launch: each step's device window
    runs from the first one's start to the last one's end. Where no device window holds a slice,
    the host spans `step_*` decide.
    """
    out = np.full(len(ts), -1, dtype=np.int64)
    if len(ts) == 0:
        return out
    if len(launched_step):
        numbers, group = np.unique(launched_step, return_inverse=True)
        starts = np.full(len(numbers), np.iinfo(np.int64).max, dtype=np.int64)
        ends = np.full(len(numbers), np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(starts, group, launched_ts)
        np.maximum.at(ends, group, launched_end)
        out = _window_steps(ts, starts, ends, numbers)
    if len(step_no):
        missing = out < 0
        out[missing] = _window_steps(ts[missing], step_start, step_end, step_no)
    return out


def _window_steps(ts: np.ndarray, starts: np.ndarray, ends: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """The step of the window that holds each time: the latest starting at or before it, if not ended."""
    return host_steps(np.zeros(len(ts), np.int64), ts, np.zeros(len(starts), np.int64), starts, ends, numbers)
