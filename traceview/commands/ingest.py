"""`traceview ingest`: trace files or dump directories into a store."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from traceview.errors import EXIT_BUG, EXIT_USER_ERROR
from traceview.paths import default_store_for
from traceview.store import IngestResult, Progress, UnitRunner, ingest


def run_ingest(
    inputs: list[Path],
    out: Path | None,
    force: bool,
    progress: Progress | None = None,
    ray: bool = False,
    ray_cpus: int | None = None,
) -> IngestResult:
    """Ingest INPUTS into OUT (default: `<name>.traceview` in the current directory); with `ray`, as Ray tasks."""
    target = out if out is not None else default_store_for(inputs)
    runner: UnitRunner | None = None
    if ray:
        from traceview import ray_engine

        runner = partial(ray_engine.run_units, num_cpus=ray_cpus)
    return ingest(inputs, target, force=force, progress=progress, runner=runner)


def summary(result: IngestResult) -> str:
    """One line saying what was ingested and where it is."""
    manifest = result.manifest
    traces = len(manifest["inputs"])
    slices = manifest["tables"].get("slices", 0)
    verb = "reused" if result.reused else "wrote"
    return f"{verb} {result.store} ({traces} trace{'s' if traces != 1 else ''}, {slices} slices)"


def failure(result: IngestResult) -> str | None:
    """The error line when some units (ranks) failed and the store holds only the others."""
    if not result.failed:
        return None
    total = result.failed + len(result.manifest["inputs"]) + len(result.manifest.get("skipped", []))
    bugs = f" ({result.failed_by_bug} of them on an internal error: a bug in traceview)" if result.failed_by_bug else ""
    return (
        f"{result.store}: {result.failed} of {total} ranks failed{bugs} (see the warnings); the store holds the"
        " others, and a rerun ingests only the failed ones"
    )


def failure_exit_code(result: IngestResult) -> int:
    """2 when the failed ranks failed on their input, 3 when one of them stopped on a bug in traceview."""
    return EXIT_BUG if result.failed_by_bug else EXIT_USER_ERROR
