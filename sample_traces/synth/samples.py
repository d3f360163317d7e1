"""The committed samples: their parameters and seeds, and how to rewrite them."""

from __future__ import annotations

import hashlib
import json
import shutil
import zlib
from pathlib import Path

from .spec import ASCEND_910B, H200, ModelShape, RunSpec, Stall, Variant, Workload
from .writer import generate

SAMPLES_DIR = Path(__file__).resolve().parents[1]
MANIFEST = "manifest.json"

# One long-context serving workload: a 4k+16k pair (chunked prefill with mixed steps), a lone
# 32k prompt, then four 1k prompts; three decode steps after each batch.
LONG_CONTEXT = Workload(
    batches=((4096, 16384), (32768,), (1024, 1024, 1024, 1024)),
    decode_steps=3,
    chunk_size=8192,
)
SMALL_MODEL = ModelShape(
    name="llama-3.2-1b-like",
    layers=16,
    heads=32,
    kv_heads=8,
    head_dim=64,
    hidden=2048,
    intermediate=8192,
    vocab=128256,
    dtype_bytes=2,
)
PAIR_WORKLOAD = Workload(batches=((2048, 2048, 8192),), decode_steps=8, chunk_size=4096)
# A 2.5 ms host pause before the forward of a 32k decode step (the device idles throughout) and
# a 1.5 ms one inside a mixed step at layer 16 (queued kernels hide part of it).
STALLS = (Stall(step=5, dur_us=1500, layer=16), Stall(step=13, dur_us=2500))


def sample_specs() -> dict[str, RunSpec]:
    """Sample directory name -> the spec that writes it."""
    return {
        "longctx_h200": RunSpec(
            name="longctx_h200",
            device=H200,
            workload=LONG_CONTEXT,
            seed=1101,
            stalls=STALLS,
            annotations="vllm",
        ),
        "longctx_910b": RunSpec(
            name="longctx_910b",
            device=ASCEND_910B,
            workload=LONG_CONTEXT,
            seed=1102,
            stalls=STALLS,
            annotations="none",
        ),
        "runtime_v1": RunSpec(
            name="runtime_v1",
            device=H200,
            model=SMALL_MODEL,
            workload=PAIR_WORKLOAD,
            seed=2101,
            variant=Variant(label="v1"),
        ),
        "runtime_v2": RunSpec(
            name="runtime_v2",
            device=H200,
            model=SMALL_MODEL,
            workload=PAIR_WORKLOAD,
            seed=2102,
            variant=Variant(
                label="v2",
                family_scale=(("attention", 1.3),),
                extra_kernel="qk_norm",
                launch_overhead_scale=1.4,
            ),
        ),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def regenerate(root: Path = SAMPLES_DIR) -> list[Path]:
    """Rewrite every sample under `root` and its manifest (specs, seeds, file hashes)."""
    samples: dict[str, object] = {}
    written: list[Path] = []
    for name, spec in sample_specs().items():
        shutil.rmtree(root / name, ignore_errors=True)  # each sample directory is wholly generated
        files = generate(spec, root / name, compress=True)
        written += files
        samples[name] = {
            "spec": spec.to_dict(),
            "files": {p.relative_to(root).as_posix(): _sha256(p) for p in sorted(files)},
        }
    manifest = {"zlib_version": zlib.ZLIB_RUNTIME_VERSION, "samples": samples}
    path = root / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return [*written, path]
