"""Produce real multi-process Kineto traces: N CPU processes with torch.distributed (gloo), one slowed on purpose.

Each rank (``torch.multiprocessing.spawn``, default N=4) runs a few profiler steps. In every step it
computes a small matmul chain, then ``all_reduce`` of a gradient-sized tensor and ``all_gather`` of a
small one. Rank ``--slow-rank`` sleeps ``--delay-ms`` before its collectives in every step, so every
other rank waits for it inside ``all_reduce``: the slow rank is the straggler of every step.

Outputs (next to this file unless ``--out-dir`` is given):

* ``gloo_rank{N}.pt.trace.json.gz``: the Chrome trace each rank's ``torch.profiler`` exported,
  gzipped with mtime=0 (the gzip wrapper is deterministic; the traces are not, timings differ).
* ``truth.json``: what is known by construction (world size, steps, the slow rank and its sleep,
  the collectives of a step with their sizes).

Run: ``python sample_traces/real_gloo/make_trace.py`` (needs ``torch``; ``make sample-real-gloo``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.profiler import ProfilerActivity, profile, record_function, schedule

HERE = Path(__file__).resolve().parent
TRUTH_NAME = "truth.json"
SEED = 0
ALL_REDUCE_ELEMS = 1 << 16  # float32: 256 KiB, quick next to the sleep
ALL_GATHER_ELEMS = 1 << 12
HIDDEN = 256


def trace_name(rank: int) -> str:
    return f"gloo_rank{rank}.pt.trace.json.gz"


def gzip_deterministic(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            shutil.copyfileobj(fin, gz)


def run_rank(rank: int, args: argparse.Namespace, port: int, scratch: str) -> None:
    """One process: join the gloo group, profile `steps` steps, export this rank's trace."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=args.world_size)
    torch.manual_seed(SEED + rank)
    torch.set_num_threads(1)
    weight = torch.randn(HIDDEN, HIDDEN)
    x = torch.randn(64, HIDDEN)
    grad = torch.zeros(ALL_REDUCE_ELEMS)
    piece = torch.full((ALL_GATHER_ELEMS,), float(rank))
    gathered = [torch.empty(ALL_GATHER_ELEMS) for _ in range(args.world_size)]
    out = Path(scratch) / f"rank{rank}.json"

    def on_ready(prof: profile) -> None:
        prof.export_chrome_trace(str(out))

    dist.barrier()
    with profile(
        activities=[ProfilerActivity.CPU],
        record_shapes=True,
        schedule=schedule(wait=0, warmup=1, active=args.steps, repeat=1),
        on_trace_ready=on_ready,
    ) as prof:
        for _ in range(args.steps + 1):  # the first step is the profiler's warm-up, discarded
            with record_function("compute"):
                y = x
                for _ in range(4):
                    y = torch.relu(y @ weight)
                grad.add_(y.sum())
            if rank == args.slow_rank:
                time.sleep(args.delay_ms / 1000)
            dist.all_reduce(grad)
            dist.all_gather(gathered, piece)
            prof.step()
    dist.barrier()
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=HERE)
    ap.add_argument("--world-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--slow-rank", type=int, default=2)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--port", type=int, default=29517)
    args = ap.parse_args(argv)
    if not 0 <= args.slow_rank < args.world_size:
        ap.error("--slow-rank must be one of the ranks")

    scratch = tempfile.mkdtemp(prefix="gloo_traces_")
    try:
        mp.spawn(run_rank, args=(args, args.port, scratch), nprocs=args.world_size, join=True)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for rank in range(args.world_size):
            gzip_deterministic(Path(scratch) / f"rank{rank}.json", args.out_dir / trace_name(rank))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    truth = {
        "description": "Known by construction for the gloo_rank*.pt.trace.json.gz traces (see README.md).",
        "generator": "sample_traces/real_gloo/make_trace.py",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "backend": "gloo",
        "device": "cpu",
        "world_size": args.world_size,
        "files": [trace_name(r) for r in range(args.world_size)],
        "profiler_schedule": {"wait": 0, "warmup": 1, "active": args.steps, "repeat": 1},
        "profiler_steps": [f"ProfilerStep#{i}" for i in range(1, args.steps + 1)],
        "straggler": {
            "rank": args.slow_rank,
            "sleep_ns_per_step": round(args.delay_ms * 1e6),
            "where": "time.sleep after the compute and before all_reduce, in every step",
            "expected": "the straggler of every step's all_reduce; the others wait about sleep_ns_per_step in it",
        },
        "collectives_per_step": [
            {"op": "all_reduce", "dtype": "float32", "elements": ALL_REDUCE_ELEMS, "bytes": 4 * ALL_REDUCE_ELEMS},
            {"op": "all_gather", "dtype": "float32", "elements_per_rank": ALL_GATHER_ELEMS},
        ],
    }
    (args.out_dir / TRUTH_NAME).write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {args.world_size} traces and {args.out_dir / TRUTH_NAME}; torch {torch.__version__}")


if __name__ == "__main__":
    main()
