"""Stage timings of an ingest: kept in the trace info, printed with TRACEVIEW_TIMING=1."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed_stage(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of one stage in `timings[name]`; with TRACEVIEW_TIMING=1 in the
    environment, also print it to stderr with its CPU time, page faults and the peak RSS so far."""
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    yield
    timings[name] = time.perf_counter() - start
    if os.environ.get("TRACEVIEW_TIMING"):
        after = resource.getrusage(resource.RUSAGE_SELF)
        user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
        print(
            f"[timing] {name}: {timings[name]:.3f} s wall, {user:.3f} s user, {system:.3f} s system,"
            f" {after.ru_minflt - before.ru_minflt} page faults; peak RSS so far {after.ru_maxrss / 1024:.0f} MB",
            file=sys.stderr,
        )
