#!/usr/bin/env python3
"""Cluster benchmark: the five cluster analyses (`traceview cluster`) on a 256-rank synthetic store.

One run of this script:

1. builds (or reuses) under ``benchmarks/output/`` (git-ignored) a cluster of ``--ranks`` ranks (default 256)
   with ``--steps`` steps (default 667: three collectives a step, about 2,000 per rank) written by the cluster
   generator (``python -m sample_traces.synth cluster``, GPU/NCCL Kineto, gzipped, a straggler and a degraded
   link), and ingests it into a store;
2. times ``traceview.analysis.cluster.run_cluster([store])`` (the five queries in the sandboxed connection plus
   the per-call and rank x step rows the reports draw) in a child process: wall time, the shared relations'
   and queries' seconds, peak RSS (``ru_maxrss``), and, apart, the JSON document's size and time.
   Target: the analyses under 10 s on 2 cores.

Usage::

    python benchmarks/cluster_analyses.py                    # 256 ranks x 667 steps
    python benchmarks/cluster_analyses.py --ranks 32 --steps 100 --json benchmarks/output/cluster.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402


def build_store(ranks: int, steps: int, out: Path) -> Path:
    """The generated cluster's store (reused when it exists)."""
    store = out / f"cluster_{ranks}x{steps}.traceview"
    if (store / "manifest.json").exists():
        harness.log(f"reusing {store}")
        return store
    traces = out / f"cluster_{ranks}x{steps}_traces"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sample_traces.synth", "cluster", "--ranks", str(ranks), "--steps", str(steps),
         "--vendor", "gpu", "--gzip", "--straggler-rank", str(ranks // 2 + 1), "--straggler-steps", "5,100",
         "--degraded-link", f"{ranks // 4}:{ranks // 4 + 1}", str(traces)],
        check=True, cwd=ROOT,
    )  # fmt: skip
    harness.log(f"generated {traces} in {time.perf_counter() - started:.1f} s")
    from traceview.store import ingest

    started = time.perf_counter()
    ingest(sorted(traces.glob("*.pt.trace.json.gz")), store)
    harness.log(f"ingested {store} in {time.perf_counter() - started:.1f} s")
    return store


def child(store: Path, result_path: Path) -> int:
    """Run the cluster analyses once in this process and write the figures."""

    def body(result: dict) -> None:
        from traceview import jsonify
        from traceview.analysis import cluster
        from traceview.sandbox import drop_shared, run_pack, sandboxed_connection

        started = time.perf_counter()
        view = cluster.run_cluster([store])
        result["cluster_s"] = time.perf_counter() - started
        result["collective_calls"] = view.calls.height
        result["findings"] = len(view.findings)
        started = time.perf_counter()
        text = jsonify.dumps(view.to_json())
        result["json_s"] = time.perf_counter() - started
        result["json_bytes"] = len(text)
        pack = cluster.cluster_pack()  # the parts, once more: what each shared relation and query cost
        con = sandboxed_connection([store])
        try:
            run = run_pack(con, pack, pack.queries)
            drop_shared(con, run.shared)
        finally:
            con.close()
        result["shared_s"] = {s.relation.name: round(s.seconds, 3) for s in run.shared}
        result["query_s"] = {r.query.name: round(r.seconds, 3) for r in run.results}

    return harness.run_worker("cluster", None, result_path, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=256)
    parser.add_argument("--steps", type=int, default=667)
    parser.add_argument("--out", type=Path, default=HERE / "output")
    parser.add_argument("--store", type=Path, help="an existing store to time instead of a generated one")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--child", nargs=2, metavar=("STORE", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(Path(args.child[0]), Path(args.child[1]))
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.store or build_store(args.ranks, args.steps, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        subprocess.run([sys.executable, __file__, "--child", str(store), str(result_path)], check=False)
        figures = json.loads(result_path.read_text())
    figures["store"] = str(store)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures.get("status") == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
