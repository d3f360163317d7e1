"""Numbers in human units (ns/µs/ms/s, B/kB/MB/GB/TB, B/s up to TB/s), never with an exponent.

One place for the scales, used by the report tables (one unit per column) and by finding messages
(`{gap_ns:ns}`, `{peak_bytes:bytes}`, `{achieved_bytes_per_s:B/s}`: one unit per value).
"""

from __future__ import annotations

import math
import statistics

# unit -> (factor, label) from small to large
SCALES: dict[str, tuple[tuple[float, str], ...]] = {
    "ns": ((1, "ns"), (1e3, "µs"), (1e6, "ms"), (1e9, "s")),
    "bytes": ((1, "B"), (1e3, "kB"), (1e6, "MB"), (1e9, "GB"), (1e12, "TB")),
    "B/s": ((1, "B/s"), (1e3, "kB/s"), (1e6, "MB/s"), (1e9, "GB/s"), (1e12, "TB/s")),
}


def is_number(value: object) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def scale_for(unit: str, magnitude: float) -> tuple[float, str]:
    """The largest scale of `unit` not above `magnitude` (the smallest when none is)."""
    scales = SCALES[unit]
    fitting = [scale for scale in scales if scale[0] <= magnitude]
    return fitting[-1] if fitting else scales[0]


def column_scale(unit: str, values: list) -> tuple[float, str]:
    """The scale for a column: the one of the median of its non-zero magnitudes."""
    magnitudes = [abs(v) for v in values if is_number(v) and v != 0]
    return scale_for(unit, statistics.median(magnitudes)) if magnitudes else SCALES[unit][0]


def readable_number(value: float) -> str:
    """A number for reading: thousands separated from 100 up, one decimal from 10, two below; no exponent."""
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.2f}"
    return "<0.01" if value > 0 else "-<0.01"


def human(value: object, unit: str) -> str:
    """One value in its own scale of `unit`: `98769491` ns -> `98.8 ms`; non-numbers as they are."""
    if not is_number(value):
        return str(value)
    number = float(value)  # type: ignore[arg-type]
    factor, label = scale_for(unit, abs(number))
    return f"{readable_number(number / factor)} {label}"
