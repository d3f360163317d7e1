"""Write a simulated cluster: one trace per rank and a `truth.json` of what was injected."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from .cluster import ClusterRun, ClusterSpec, simulate, straggler_lateness
from .cluster_ascend import ascend_op_names, dump_dir, group_hash, rank_files
from .cluster_kineto import collective_label, rank_trace, trace_name
from .writer import _write

CONVENTIONS = {
    "time": "absolute ns: Kineto ts_ns = baseTimeNanoseconds + ts_us*1000; Ascend files carry absolute us",
    "arrival": "a rank's arrival at a collective is the start of its communication kernel / HCCL op",
    "transfer": "a collective's transfer starts at the last arrival (start_ns) and ends at end_ns on every member",
    "straggler": "injected_delay_ns is the host delay added before the straggler's step; lateness_ns is its "
    "AllReduce arrival minus the median arrival of the other ranks",
    "bandwidth": "bytes/s; a send/recv pair moves `bytes` in transit_ns (the shorter kernel of the pair); the "
    "ring AllReduce moves 2(n-1)/n*bytes over each ring link and is paced by the slowest one",
    "ranks": "the one process group is the world: group-local ranks (Ascend link keys 'src-dst') are global ranks",
    "steps": "ProfilerStep#N, N from 1",
}


def _collective(run: ClusterRun, coll: Any) -> dict[str, Any]:
    spec = run.spec
    entry: dict[str, Any] = {
        "step": coll.step,
        "index": coll.index,
        "name": collective_label(coll),
        "kind": coll.kind,
        "bytes": coll.nbytes,
        "start_ns": run.abs_ns(coll.start),
        "end_ns": run.abs_ns(coll.end),
        "transit_ns": coll.transit,
    }
    if coll.kind == "allreduce":
        entry["seq"] = coll.seq
        entry["arrival_ns"] = [run.abs_ns(coll.arrival[r]) for r in range(spec.ranks)]
    else:
        entry.update(
            src=coll.src,
            dst=coll.dst,
            transport=spec.transport(coll.src, coll.dst),
            bandwidth=spec.link_bw(coll.src, coll.dst),
            arrival_ns={str(r): run.abs_ns(t) for r, t in coll.arrival.items()},
        )
    if spec.vendor == "ascend":
        names = ascend_op_names(run, coll)
        entry["ascend_op"] = names if coll.kind == "p2p" else sorted(set(names.values()))
    return entry


def build_truth(run: ClusterRun, files: list[str]) -> dict[str, Any]:
    """What is true by construction, for the analyses to recover."""
    spec = run.spec
    lateness = straggler_lateness(run)
    src, dst = spec.degraded_src, spec.degraded_dst
    return {
        "name": spec.name,
        "kind": "cluster",
        "vendor": spec.vendor,
        "seed": spec.seed,
        "spec": spec.to_dict(),
        "files": files,
        "conventions": CONVENTIONS,
        "time": {
            "base_time_ns": spec.base_time_ns,
            "trace_start_ns": run.abs_ns(run.start),
            "trace_end_ns": run.abs_ns(run.end),
        },
        "world_size": spec.ranks,
        "process_group": {"name": "0", "ranks": "all", "ascend_group": group_hash()},
        "straggler": {
            "rank": spec.straggler_rank,
            "steps": [
                {
                    "step": s,
                    "injected_delay_ns": spec.straggler_delay_ns,
                    "lateness_ns": lateness[s],
                }
                for s in spec.straggler_steps
            ],
            "lateness_on_other_steps_ns": {str(s): v for s, v in lateness.items() if s not in spec.straggler_steps},
        },
        "degraded_link": {
            "src": src,
            "dst": dst,
            "transport": spec.transport(src, dst),
            "bandwidth": spec.degraded_bandwidth,
            "nominal_bandwidth": spec.link_bandwidth if spec.same_node(src, dst) else spec.inter_node_bandwidth,
            "ascend_link_key": f"{src}-{dst}",
        },
        "allreduce_bus_bandwidth": _busbw(run),
        "collectives": [_collective(run, c) for c in run.collectives],
    }


def _busbw(run: ClusterRun) -> float:
    """NCCL-tests bus bandwidth of the AllReduce transfer: 2(n-1)/n * bytes / transit."""
    spec = run.spec
    n = spec.ranks
    transits = [c.transit for c in run.collectives if c.kind == "allreduce"]
    return 2 * (n - 1) / n * spec.allreduce_bytes / statistics.mean(transits) * 1e9


def generate_cluster(spec: ClusterSpec, out_dir: Path, compress: bool = False) -> list[Path]:
    """Simulate `spec` and write its per-rank traces and `truth.json` under `out_dir`."""
    out_dir = Path(out_dir)
    run = simulate(spec)
    written: list[Path] = []
    for rank in range(spec.ranks):
        if spec.vendor == "gpu":
            name = trace_name(spec.name, rank)
            written.append(_write(out_dir / name, rank_trace(run, rank), compress))
        else:
            for rel, text in rank_files(run, rank).items():
                written.append(_write(out_dir / rel, text, compress))
    files = sorted(p.relative_to(out_dir).as_posix() for p in written)
    if spec.vendor == "ascend":
        files = [dump_dir(r) for r in range(spec.ranks)]
    truth_path = out_dir / "truth.json"
    truth_path.write_text(json.dumps(build_truth(run, files), indent=1) + "\n", encoding="utf-8")
    return [*written, truth_path]
