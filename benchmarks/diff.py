#!/usr/bin/env python3
"""Diff benchmark: `traceview diff` between two stores of >= 5 million slices each.

The stores are made by benchmarks/analyze.py's `ensure_store`: a real Kineto trace (default the HTA
corpus trace nccl_parser_config/nccl_data.json.gz) is ingested, then its Parquet tables are replicated
with DuckDB (ts shifted by the trace span, slice/parent/correlation/external/step ids offset) until the
store holds at least --slices slices. The test side gets a few more copies than the base side, so the
two differ. The diff (default --by kernel, with the whole-trace summary and a gate) runs in a child
process pinned to --cores CPUs (taskset); the wall time is the figure. Target: under 10 s on 2 cores.

Usage::

    python benchmarks/diff.py                      # 5M vs ~5.1M slices, 2 cores
    python benchmarks/diff.py --by family --cores 2 --slices 5000000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "corpus" / "kineto" / "hta" / "nccl_parser_config" / "nccl_data.json.gz"


def _analyze_bench():
    spec = importlib.util.spec_from_file_location("bench_analyze", REPO / "benchmarks" / "analyze.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_analyze"] = module
    spec.loader.exec_module(module)
    return module


def child(args: argparse.Namespace) -> int:
    from traceview.analysis.diff import diff as run_diff

    started = time.perf_counter()
    report = run_diff(Path(args.base), Path(args.test), by=args.by, fail_on=["step_time>+5%", "new_kernels>0"],
                      with_summary=not args.no_summary)
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "rows": len(report.rows), "gates": [g.reason for g in report.gates]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--slices", type=int, default=5_000_000)
    parser.add_argument("--by", default="kernel")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--no-summary", action="store_true", help="Skip the whole-trace analyses.")
    parser.add_argument("--child", nargs=2, metavar=("BASE", "TEST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.base, args.test = args.child
        return child(args)

    bench = _analyze_bench()
    base, base_meta = bench.ensure_store(args.source, "nccl", args.slices)
    test, test_meta = bench.ensure_store(args.source, "nccl", args.slices + 4 * base_meta.base_slices)
    print(f"base {base.name}: {base_meta.slices:,} slices; test {test.name}: {test_meta.slices:,} slices",
          file=sys.stderr)
    cmd = [sys.executable, __file__, "--by", args.by, "--child", str(base), str(test)]
    if args.no_summary:
        cmd.insert(2, "--no-summary")
    if shutil.which("taskset") and args.cores:
        cmd = ["taskset", "-c", ",".join(str(c) for c in range(args.cores))] + cmd
    env = dict(os.environ, OMP_NUM_THREADS=str(args.cores), POLARS_MAX_THREADS=str(args.cores))
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    total = time.perf_counter() - started
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update({"process_s": total, "cores": args.cores, "by": args.by, "base_slices": base_meta.slices,
                   "test_slices": test_meta.slices, "summary": not args.no_summary})
    print(json.dumps(result, indent=2))
    verdict = "PASS" if result["wall_s"] < 10 else "FAIL"
    print(f"{verdict}: diff of {base_meta.slices:,} vs {test_meta.slices:,} slices in {result['wall_s']:.2f} s "
          f"on {args.cores} cores (target < 10 s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
