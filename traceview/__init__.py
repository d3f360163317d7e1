"""traceview: AI profiler traces (Kineto/Chrome, Ascend) into answers, SQL-first."""

from __future__ import annotations

__version__ = "0.1.0"


def open(target, cache_dir=None):  # noqa: A001 - the public name is traceview.open
    """Open a trace file, dump directory or store; return a `traceview.engine.Session`."""
    from traceview.engine import open_target

    return open_target(target, cache_dir=cache_dir)
