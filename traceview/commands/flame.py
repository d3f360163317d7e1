"""`traceview flame`: the library's flame graph, as folded stacks, an HTML icicle chart and a summary line."""

from __future__ import annotations

from pathlib import Path

from traceview.analysis.flame import FlameResult, UnknownStepError, Weight, run_flame
from traceview.errors import UserError


def check_weight(weight: str) -> None:
    """A usage error unless WEIGHT is one of the weights."""
    if weight not in {w.value for w in Weight}:
        raise UserError(f"--weight must be one of wall, self, device (got {weight!r})")


def run(targets: list[Path], weight: str, step: int | None, cache_dir: Path | None) -> FlameResult:
    """Check the weight, then compute the flame graph of TARGETS (a usage error for a step they do not have)."""
    check_weight(weight)
    try:
        return run_flame(targets, weight, step, cache_dir)
    except UnknownStepError as exc:
        raise UserError(f"--step {exc.step}: {exc.available}") from None


def html_text(result: FlameResult, min_share: float) -> str:
    """The --html page."""
    from traceview.reports.html import flame_page

    return flame_page(result, min_share)


def summary(result: FlameResult) -> str:
    """One line: the weight, the total and the number of stacks."""
    line = f"{result.weight.value}: {result.total_ns / 1e6:.3f} ms in {len(result.stacks)} stacks"
    if result.info:
        line += f" ({result.info['attributed_ns'] / 1e6:.3f} ms with a known host launcher)"
    return line
