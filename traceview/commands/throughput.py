"""`traceview throughput`: the library's throughput points, as JSON, HTML panels and a summary."""

from __future__ import annotations

from pathlib import Path

from traceview import jsonify
from traceview.analysis.throughput import DEFAULT_TIME_BASIS, TIME_BASES, Throughput, run_throughput
from traceview.errors import UserError

NO_STEPS = (
    "no prefill or decode steps found: the trace has neither serving step labels (vLLM execute_context_*, SGLang"
    " step[...], TensorRT-LLM _forward_step) nor attention shapes that tell the phase; the prefill, decode, KV-cache"
    " and bandwidth panels are empty (see the phases query of `traceview analyze`)"
)
MAX_SUMMARY_ROWS = 20
"""Points printed per trace in the summary table; the rest are counted (all of them are in --json)."""


def run(
    targets: list[Path],
    device_cost: float | None,
    cache_dir: Path | None,
    peak_bw: float | None,
    time_basis: str = DEFAULT_TIME_BASIS,
) -> Throughput:
    """The throughput points of TARGETS (one series each); the charts plot `time_basis` ('active' or 'wall')."""
    if time_basis not in TIME_BASES:
        raise UserError(f"--time {time_basis}: expected one of {', '.join(TIME_BASES)}")
    return run_throughput(targets, device_cost, cache_dir, peak_bw, time_basis)


def warnings(data: Throughput) -> list[str]:
    """A warning when no step could be placed as prefill or decode."""
    return [] if data.prefill or data.decode else [NO_STEPS]


def json_text(data: Throughput) -> str:
    """The --json document."""
    return jsonify.dumps(data.to_json(), indent=True)


def html_text(data: Throughput) -> str:
    """The --html page."""
    from traceview.reports.html import throughput_page

    return throughput_page(data.to_dict())


def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _table(points: list[dict]) -> list[str]:
    """The prefill and decode points of one trace, in step order, as aligned text rows."""
    header = ("step", "phase", "tokens", "context", "wall ms", "active ms", "tok/s wall", "tok/s active")
    rows = [
        (
            str(p["step"]),
            p["phase"],
            str(p.get("prompt_len") or p.get("tokens")),
            "-" if p["context_len"] is None else str(p["context_len"]),
            _ms(p["wall_ns"]),
            _ms(p["active_ns"]),
            _rate(p["tokens_per_s_wall"]),
            _rate(p["tokens_per_s_active"]),
        )
        for p in points[:MAX_SUMMARY_ROWS]
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
             for row in [header, *rows]]
    if len(points) > MAX_SUMMARY_ROWS:
        lines.append(f"  ... {len(points) - MAX_SUMMARY_ROWS} more points (all in --json)")
    return lines


def summary(data: Throughput) -> list[str]:
    """Per trace, the prefill and decode points the charts plot (wall and active time, tokens/s over each); then one
    line per panel with its point count."""
    by_trace: dict[str, list[dict]] = {}
    for phase, points in (("prefill", data.prefill), ("decode", data.decode)):
        for point in points:
            by_trace.setdefault(point["trace"], []).append({**point, "phase": phase})
    lines: list[str] = []
    for trace, points in by_trace.items():
        points.sort(key=lambda p: (p["step"] is None, p["step"] or 0))
        lines.append(f"{trace}: {len(points)} prefill/decode steps (charts plot {data.time_basis} time)")
        lines.extend(_table(points))
    lines.extend(f"{name}: {len(points)} points" for name, points in data.to_dict().items() if isinstance(points, list))
    return lines
