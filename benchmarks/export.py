#!/usr/bin/env python3
"""Export benchmark: `traceview export` of one step of 8 ranks to a Chrome trace. Target: under 2 s.

The ranks are copies of a real Kineto trace (default the HTA corpus trace nccl_parser_config/nccl_data.json.gz,
A100 with NCCL, about 9 000 slices a step) with `distributedInfo.rank` set to 0..7, ingested once into one store
under --work (not timed). The export (`--step`, every rank, to .json.gz and to .json, clock and collective
alignment) runs in a child process pinned to --cores CPUs (taskset); the figures are the wall time of the whole
command (interpreter start and imports included) and of the export itself (open, select, write), and the
child's peak RSS.

Usage::

    python benchmarks/export.py                 # 8 ranks, step 5, 2 cores
    python benchmarks/export.py --ranks 16 --step 4 --cores 4
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "corpus" / "kineto" / "hta" / "nccl_parser_config" / "nccl_data.json.gz"
TARGET_S = 2.0
_RANK = re.compile(rb'("distributedInfo"\s*:\s*\{[^{}]*?"rank"\s*:\s*)[0-9]+')


def ensure_store(source: Path, ranks: int, work: Path) -> Path:
    """A store of `ranks` copies of `source`, one per rank (made once)."""
    store = work / f"{source.name.split('.')[0]}-{ranks}ranks.traceview"
    if store.is_dir():
        return store
    from traceview.store import ingest

    data = source.read_bytes()
    text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    if not _RANK.search(text):
        raise SystemExit(f"{source}: no distributedInfo.rank to rewrite")
    folder = work / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank in range(ranks):
        path = folder / f"rank{rank}.json"
        path.write_bytes(_RANK.sub(lambda m: m.group(1) + str(rank).encode(), text, count=1))  # noqa: B023
        paths.append(path)
    ingest(paths, store)
    shutil.rmtree(folder)
    return store


def child(store: Path, step: int, out: Path, align: str) -> int:
    """Run the export in this process; print its figures as JSON."""
    started = time.perf_counter()
    from traceview.commands import export as export_cmd

    imported = time.perf_counter()
    warnings, summary = export_cmd.run([store], out, None, step, None, align, None)
    done = time.perf_counter()
    figures = {
        "import_s": imported - started,
        "export_s": done - imported,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "out_bytes": out.stat().st_size,
        "summary": summary,
        "warnings": warnings,
    }
    print(json.dumps(figures))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--ranks", type=int, default=8)
    parser.add_argument("--step", type=int, default=5)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/traceview-bench-export"))
    parser.add_argument("--child", nargs=3, metavar=("STORE", "OUT", "ALIGN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        store, out, align = args.child
        return child(Path(store), args.step, Path(out), align)

    store = ensure_store(args.source, args.ranks, args.work)
    results = []
    for suffix, align in ((".json.gz", "clock"), (".json", "clock"), (".json.gz", "collective")):
        out = args.work / f"step{args.step}{suffix}"
        cmd = [sys.executable, __file__, "--step", str(args.step), "--child", str(store), str(out), align]
        if shutil.which("taskset") and args.cores:
            cmd = ["taskset", "-c", ",".join(str(c) for c in range(args.cores))] + cmd
        env = dict(os.environ, OMP_NUM_THREADS=str(args.cores), POLARS_MAX_THREADS=str(args.cores))
        started = time.perf_counter()
        run = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        figures = json.loads(run.stdout.strip().splitlines()[-1])
        figures.update({"wall_s": time.perf_counter() - started, "out": out.name, "align": align})
        results.append(figures)
        verdict = "PASS" if figures["export_s"] < TARGET_S else "FAIL"
        print(
            f"{verdict}: {out.name} ({align}): export {figures['export_s']:.2f} s, command {figures['wall_s']:.2f} s,"
            f" {figures['out_bytes'] / 1e6:.1f} MB, peak RSS {figures['peak_rss_bytes'] / 2**20:.0f} MiB on"
            f" {args.cores} cores (target < {TARGET_S} s): {figures['summary']}",
            file=sys.stderr,
        )
    print(json.dumps({"ranks": args.ranks, "step": args.step, "cores": args.cores, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
