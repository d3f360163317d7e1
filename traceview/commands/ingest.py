"""`traceview ingest`: trace files or dump directories into a store."""

from __future__ import annotations

from pathlib import Path

from traceview.paths import default_store_for
from traceview.store import IngestResult, Progress, ingest


def run_ingest(
    inputs: list[Path], out: Path | None, force: bool, progress: Progress | None = None
) -> IngestResult:
    """Ingest INPUTS into OUT (default: `<name>.traceview` in the current directory)."""
    target = out if out is not None else default_store_for(inputs)
    return ingest(inputs, target, force=force, progress=progress)


def summary(result: IngestResult) -> str:
    """One line saying what was ingested and where it is."""
    manifest = result.manifest
    traces = len(manifest["inputs"])
    slices = manifest["tables"].get("slices", 0)
    verb = "reused" if result.reused else "wrote"
    return f"{verb} {result.store} ({traces} trace{'s' if traces != 1 else ''}, {slices} slices)"
