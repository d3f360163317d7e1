"""Command line: `python -m sample_traces.synth {generate,regenerate,presets}`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .cluster import VENDORS, ClusterSpec
from .cluster_samples import regenerate_clusters
from .cluster_writer import generate_cluster
from .names import EXTRA
from .samples import SAMPLES_DIR, regenerate
from .spec import FAMILIES, PRESETS, ModelShape, RunSpec, Stall, Variant, Workload
from .writer import generate

EXAMPLES = """examples:
  python -m sample_traces.synth generate --name demo --device h200 --prompts 4096,16384 \\
      --decode-steps 4 --chunk-size 8192 --seed 7 --out /tmp/demo
  python -m sample_traces.synth generate --name npu --device 910b --prompts 32768 \\
      --prompts 1024,1024 --stall 3:2000 --format kineto,ascend --gzip --out /tmp/npu
  python -m sample_traces.synth cluster --ranks 1024 --vendor gpu --gzip /tmp/cluster
  python -m sample_traces.synth regenerate
"""


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def _stall(text: str) -> Stall:
    parts = [int(x) for x in text.split(":")]
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError("expected STEP:MICROSECONDS[:LAYER]")
    return Stall(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def _scale(text: str) -> tuple[str, float]:
    fam, _, factor = text.partition("=")
    if fam not in FAMILIES:
        raise argparse.ArgumentTypeError(f"unknown family {fam!r}; one of {', '.join(FAMILIES)}")
    return fam, float(factor)


def _model_dest(field_name: str) -> str:
    return "model_name" if field_name == "name" else field_name


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sample_traces.synth",
        description="Write synthetic Kineto and torch_npu traces, with a truth.json, "
        "from a described workload and device.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="simulate one run and write its files")
    g.add_argument("--spec", type=Path, help="a RunSpec JSON (e.g. truth.json's 'spec'); flags below are ignored")
    g.add_argument("--name", default="synth", help="run name (file names derive from it)")
    g.add_argument("--out", type=Path, default=Path("."), help="output directory")
    g.add_argument("--device", choices=sorted(PRESETS), default="h200", help="device preset")
    g.add_argument("--peak-flops", type=float, help="override the preset's FLOP/s")
    g.add_argument("--hbm-bandwidth", type=float, help="override the preset's bytes/s")
    g.add_argument("--launch-latency-ns", type=int, help="override launch-to-kernel latency")
    g.add_argument("--host-overhead-ns", type=int, help="override host time per op")
    for f in dataclasses.fields(ModelShape):
        dest = _model_dest(f.name)
        g.add_argument(
            "--" + dest.replace("_", "-"),
            dest=dest,
            type=type(f.default),
            default=f.default,
            help=f"model {f.name} (default {f.default})",
        )
    g.add_argument(
        "--prompts",
        type=_ints,
        action="append",
        help="comma-separated prompt lengths of one batch; repeat for more batches",
    )
    g.add_argument("--decode-steps", type=int, default=4, help="decode steps after each batch's prefill")
    g.add_argument("--chunk-size", type=int, default=8192, help="chunked-prefill token budget")
    g.add_argument("--no-chunking", action="store_true", help="prefill whole prompts")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--noise", type=float, default=0.02, help="relative std-dev of durations")
    g.add_argument(
        "--stall",
        type=_stall,
        action="append",
        default=[],
        help="STEP:MICROSECONDS[:LAYER] host stall in ProfilerStep#STEP, before the forward or LAYER",
    )
    g.add_argument("--annotations", choices=("vllm", "none"), default="vllm", help="step labels")
    g.add_argument("--format", default="", help="kineto, ascend or both comma-separated (default: device's)")
    g.add_argument("--gzip", action="store_true", help="gzip every trace file (mtime 0)")
    g.add_argument("--variant-label", default="v1")
    g.add_argument(
        "--family-scale",
        type=_scale,
        action="append",
        default=[],
        help="FAMILY=FACTOR kernel duration factor, e.g. attention=1.3",
    )
    g.add_argument("--extra-kernel", choices=["", *sorted(EXTRA)], default="", help="extra per-layer kernel")
    g.add_argument("--launch-overhead-scale", type=float, default=1.0)

    _cluster_parser(sub)

    r = sub.add_parser("regenerate", help="rewrite every committed sample from its recorded spec")
    r.add_argument("--out", type=Path, default=SAMPLES_DIR, help="root directory (default: sample_traces/)")

    sub.add_parser("presets", help="print the device presets as JSON")
    return p


def _link(text: str) -> tuple[int, int]:
    src, sep, dst = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("expected SRC:DST")
    return int(src), int(dst)


def _cluster_parser(sub: argparse._SubParsersAction) -> None:
    d = ClusterSpec()
    c = sub.add_parser("cluster", help="write one trace per rank of a cluster with a straggler and a slow link")
    c.add_argument("out", type=Path, help="output directory")
    c.add_argument("--spec", type=Path, help="a ClusterSpec JSON (e.g. truth.json's 'spec'); flags below are ignored")
    c.add_argument("--vendor", choices=VENDORS, default=d.vendor, help="gpu: Kineto + NCCL; ascend: torch_npu dumps")
    c.add_argument("--name", default=d.name, help="run name (file names derive from it)")
    c.add_argument("--ranks", type=int, default=d.ranks, help="world size (even)")
    c.add_argument("--steps", type=int, default=d.steps)
    c.add_argument("--seed", type=int, default=d.seed)
    c.add_argument("--straggler-rank", type=int, default=d.straggler_rank)
    c.add_argument("--straggler-steps", type=_ints, default=d.straggler_steps, help="comma-separated step numbers")
    c.add_argument("--straggler-delay-ns", type=int, default=d.straggler_delay_ns)
    c.add_argument(
        "--degraded-link", type=_link, default=(d.degraded_src, d.degraded_dst), help="SRC:DST ring link r:r+1"
    )
    c.add_argument("--degraded-bandwidth", type=float, default=d.degraded_bandwidth, help="bytes/s")
    c.add_argument("--link-bandwidth", type=float, default=d.link_bandwidth, help="bytes/s of a healthy link")
    c.add_argument("--ranks-per-node", type=int, default=d.ranks_per_node)
    c.add_argument("--gzip", action="store_true", help="gzip every trace file (mtime 0)")


def cluster_spec_from_args(a: argparse.Namespace) -> ClusterSpec:
    """Build a ClusterSpec from parsed `cluster` flags."""
    if a.spec:
        data = json.loads(a.spec.read_text(encoding="utf-8"))
        return ClusterSpec.from_dict(data.get("spec", data))
    return ClusterSpec(
        name=a.name,
        vendor=a.vendor,
        ranks=a.ranks,
        steps=a.steps,
        seed=a.seed,
        ranks_per_node=a.ranks_per_node,
        link_bandwidth=a.link_bandwidth,
        straggler_rank=a.straggler_rank,
        straggler_steps=tuple(a.straggler_steps),
        straggler_delay_ns=a.straggler_delay_ns,
        degraded_src=a.degraded_link[0],
        degraded_dst=a.degraded_link[1],
        degraded_bandwidth=a.degraded_bandwidth,
    )


def spec_from_args(a: argparse.Namespace) -> RunSpec:
    """Build a RunSpec from parsed `generate` flags."""
    if a.spec:
        data = json.loads(a.spec.read_text(encoding="utf-8"))
        return RunSpec.from_dict(data.get("spec", data))
    overrides = {
        "peak_flops": a.peak_flops,
        "hbm_bandwidth": a.hbm_bandwidth,
        "launch_latency_ns": a.launch_latency_ns,
        "host_overhead_ns": a.host_overhead_ns,
    }
    device = dataclasses.replace(PRESETS[a.device], **{k: v for k, v in overrides.items() if v is not None})
    model = ModelShape(**{f.name: getattr(a, _model_dest(f.name)) for f in dataclasses.fields(ModelShape)})
    workload = Workload(
        batches=tuple(a.prompts) if a.prompts else Workload.batches,
        decode_steps=a.decode_steps,
        chunk_size=None if a.no_chunking else a.chunk_size,
    )
    variant = Variant(a.variant_label, tuple(a.family_scale), a.extra_kernel, a.launch_overhead_scale)
    formats = tuple(f.strip() for f in a.format.split(",") if f.strip())
    return RunSpec(
        name=a.name,
        device=device,
        model=model,
        workload=workload,
        seed=a.seed,
        noise=a.noise,
        stalls=tuple(a.stall),
        annotations=a.annotations,
        variant=variant,
        formats=formats,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    a = _parser().parse_args(argv)
    if a.command == "presets":
        print(json.dumps({k: dataclasses.asdict(v) for k, v in PRESETS.items()}, indent=1))
        return 0
    if a.command == "regenerate":
        for path in [*regenerate(a.out), *regenerate_clusters(a.out)]:
            print(path)
        return 0
    if a.command == "cluster":
        try:
            paths = generate_cluster(cluster_spec_from_args(a), a.out, compress=a.gzip)
        except (ValueError, TypeError) as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {len(paths) - 1} trace files and {paths[-1]}")
        return 0
    try:
        spec = spec_from_args(a)
        paths = generate(spec, a.out, compress=a.gzip)
    except (ValueError, KeyError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0
