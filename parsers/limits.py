"""Resource limits for reading untrusted dumps, with their documented defaults.

Each limit has an environment variable (read when traceview starts) and a CLI option of the same
meaning (`traceview --max-inflate-ratio N ...`); `set_limits` changes them for this process.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    """Bounds on what one input may cost."""

    # gzip: the inflated size may reach this many times the compressed size (real Kineto and
    # Ascend gzips inflate 5-25x), or `inflate_floor_bytes`, whichever is larger; `inf`: no cap.
    max_inflate_ratio: float = 200.0
    inflate_floor_bytes: int = 64 << 20


ENV_MAX_INFLATE_RATIO = "TRACEVIEW_MAX_INFLATE_RATIO"


def _from_env() -> Limits:
    limits = Limits()
    raw = os.environ.get(ENV_MAX_INFLATE_RATIO)
    if raw:
        try:
            ratio = float(raw)
        except ValueError:
            ratio = 0.0
        if ratio >= 1:  # NaN is not; infinity is "no cap"
            limits = replace(limits, max_inflate_ratio=ratio)
    return limits


_current = _from_env()


def limits() -> Limits:
    """The limits in force."""
    return _current


def set_limits(**changes: float | int) -> Limits:
    """Change some limits for this process (the CLI's options call this); return the new ones."""
    global _current
    _current = replace(_current, **changes)  # type: ignore[arg-type]
    return _current


def inflate_cap(compressed_bytes: int) -> int:
    """The most bytes a gzip stream of `compressed_bytes` may inflate to."""
    current = limits()
    if math.isinf(current.max_inflate_ratio):
        return sys.maxsize
    return max(int(compressed_bytes * current.max_inflate_ratio), current.inflate_floor_bytes)
