"""`traceview throughput`: the library's throughput points, as JSON, HTML panels and a summary."""

from __future__ import annotations

from pathlib import Path

from traceview import jsonify
from traceview.analysis.throughput import Throughput, run_throughput

NO_STEPS = (
    "no prefill or decode steps found: the trace has neither serving step labels (vLLM execute_context_*, SGLang"
    " step[...], TensorRT-LLM _forward_step) nor attention shapes that tell the phase; the prefill, decode, KV-cache"
    " and bandwidth panels are empty (see the phases query of `traceview analyze`)"
)


def run(targets: list[Path], device_cost: float | None, cache_dir: Path | None, peak_bw: float | None) -> Throughput:
    """The throughput points of TARGETS (one series each)."""
    return run_throughput(targets, device_cost, cache_dir, peak_bw)


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


def summary(data: Throughput) -> list[str]:
    """One line per panel: how many points it has."""
    return [f"{name}: {len(points)} points" for name, points in data.to_dict().items() if isinstance(points, list)]
