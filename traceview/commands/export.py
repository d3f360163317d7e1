"""`traceview export`: the chosen ranks of a run on one time axis, written as a Chrome trace for Perfetto."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from traceview.analysis.export import parse_ranks, parse_window, ranks_text, run_export
from traceview.errors import UserError
from traceview.reports.chrome_trace import Written, write_chrome_trace


def run(
    targets: list[Path],
    out: Path | IO[bytes],
    ranks: str | None,
    step: int | None,
    window: str | None,
    align: str,
    cache_dir: Path | None,
) -> tuple[list[str], str]:
    """Export TARGETS to `out` (a file, or a binary stream for stdout); (warnings, a summary line)."""
    if isinstance(out, Path):
        check_not_an_input(out, targets)
    chosen = parse_ranks(ranks) if ranks is not None else None
    span = parse_window(window) if window is not None else None
    with run_export(targets, chosen, step, span, align, cache_dir) as export:
        written = write_chrome_trace(export, out)
        return export.warnings, summary(written, export.ranks, export.window.label, export.offsets_ns)


def check_not_an_input(out: Path, targets: list[Path]) -> None:
    """UserError when `out` is one of the targets or lies inside one (a store, a dump directory)."""
    where = out.resolve()
    for target in targets:
        inside = target.resolve()
        if where == inside or inside in where.parents:
            relation = "is" if where == inside else "lies inside"
            raise UserError(f"{out}: {relation} the input {target}; inputs are never written, choose another output")


def summary(written: Written, ranks: list[int], window: str, offsets: dict[int, int]) -> str:
    """One line: what was written, of which ranks and window, and the alignment's shifts."""
    line = (
        f"{written.slices} slices, {written.flows} flows, {written.counters} counter samples"
        f" of {ranks_text(ranks)} ({window})"
    )
    shifts = [f"rank {rank} {offset / 1e3:+.3f} us" for rank, offset in offsets.items() if offset]
    return line + (f"; shifted {', '.join(shifts)}" if shifts else "")
