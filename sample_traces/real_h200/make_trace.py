"""Produce a real PyTorch-profiler (Kineto) trace of a small bf16 decoder on one CUDA GPU (an H200 here).

The model and the workload are those of ``sample_traces/real_cpu/make_trace.py`` (the model code is
imported from there), at a size where a GPU has real work: hidden 2048, 4 layers, 16 query heads and
4 KV heads of 128, SwiGLU 5632, vocabulary 32000, bfloat16, random weights. Batch 1; for each prompt
length (512, 2048, 8192 by default) one prefill, then greedy decode steps of one token. Every forward
is one ``ProfilerStep#N`` wrapped in a vLLM-style label (``execute_context_1(T)_generation_0(0)`` /
``execute_context_0(0)_generation_1(1)``); reading the sampled token back (``.item()``) is the
device-to-host copy and the synchronisation that a serving engine does every step.

Before each prefill, a ``swap_in`` range copies a 32 MiB pinned host buffer to the device
(``non_blocking``), as an engine swapping KV blocks back in would: a copy whose size is known.

Outputs (next to this file unless ``--out-dir`` is given):

* ``small_decoder_h200.pt.trace.json.gz``: the trace written by ``prof.export_chrome_trace``, gzipped
  with mtime=0 (the wrapper is deterministic; the trace is not, times differ from run to run);
* ``truth.json``: what is known by construction (steps, phases, tokens, KV lengths and bytes per
  token, weight bytes a decode step reads, the copy's size) and the device and versions it ran on.

Run from the repository root on a machine with a CUDA GPU and torch:
``python -m sample_traces.real_h200.make_trace``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function, schedule

from sample_traces.real_cpu.make_trace import Config, TinyDecoder, TraceFile, label, plan, truth_steps

HERE = Path(__file__).resolve().parent
TRACE_NAME = "small_decoder_h200.pt.trace.json.gz"
TRUTH_NAME = "truth.json"
SEED = 0
SWAP_BYTES = 32 << 20
CONFIG = Config(
    vocab=32000,
    hidden=2048,
    layers=4,
    heads=16,
    kv_heads=4,
    head_dim=128,
    intermediate=5632,
    max_positions=8704,
    dtype_bytes=2,
)


def linear_weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of every Linear weight: what one decode step reads (the embedding reads one row only)."""
    return sum(m.weight.numel() * m.weight.element_size() for m in model.modules() if isinstance(m, torch.nn.Linear))


def driver_version() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=HERE)
    ap.add_argument("--prompt-lens", type=int, nargs="+", default=[512, 2048, 8192])
    ap.add_argument("--decode-steps", type=int, default=8)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        ap.error("needs a CUDA GPU")
    cfg = CONFIG
    if max(args.prompt_lens) + args.decode_steps > cfg.max_positions:
        ap.error(f"prompt + decode must fit in {cfg.max_positions} positions")

    torch.manual_seed(SEED)
    device = torch.device("cuda", 0)
    model = TinyDecoder(cfg).to(device=device, dtype=torch.bfloat16).eval()
    gen = torch.Generator().manual_seed(SEED)
    prompts = [torch.randint(0, cfg.vocab, (1, T), generator=gen) for T in args.prompt_lens]
    swap_host = torch.ones(SWAP_BYTES // 2, dtype=torch.bfloat16).pin_memory()
    swap_device = torch.empty_like(swap_host, device=device)
    steps = plan(args.prompt_lens, args.decode_steps)
    for s in steps:
        s["label"] = label(s["phase"], s["tokens"])

    def forward(tokens: torch.Tensor, start_pos: int, caches):
        logits, caches = model(tokens.to(device, non_blocking=True), start_pos, caches)
        return logits[:, -1, :].argmax(dim=-1, keepdim=True), caches

    with torch.inference_mode():  # cuBLAS handles, flash-attention and allocator warm-up, unprofiled
        for T in args.prompt_lens:
            tok, caches = forward(prompts[0][:, :1].repeat(1, T), 0, None)
            forward(tok, T, caches)
        torch.cuda.synchronize()

    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    trace_file = TraceFile("small_decoder_trace_")
    generated: dict[int, list[int]] = {}
    with (
        torch.inference_mode(),
        profile(
            activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
            record_shapes=True,
            profile_memory=True,
            schedule=schedule(wait=0, warmup=1, active=len(steps), repeat=1),
            on_trace_ready=trace_file.on_ready,
        ) as prof,
    ):
        with record_function("warmup"):
            forward(prompts[0][:, :16], 0, None)
            torch.cuda.synchronize()
        prof.step()
        caches = None
        next_tok = None
        for s in steps:
            with record_function(s["label"]):
                if s["phase"] == "prefill":
                    with record_function("swap_in"):
                        swap_device.copy_(swap_host, non_blocking=True)
                    tokens, caches = prompts[s["prompt_index"]], None
                else:
                    tokens = next_tok
                next_tok, caches = forward(tokens, s["start_pos"], caches)
                generated.setdefault(s["prompt_index"], []).append(int(next_tok.item()))
            kv_len = caches[0][0].shape[2]
            assert kv_len == s["context_len"], (kv_len, s)
            prof.step()

    trace_path = out_dir / TRACE_NAME
    raw_bytes = trace_file.publish(trace_path)

    weight_bytes = linear_weight_bytes(model)
    truth = {
        "description": f"Known by construction for {TRACE_NAME} (see README.md).",
        "generator": "sample_traces/real_h200/make_trace.py",
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "driver_version": driver_version(),
        "python_version": platform.python_version(),
        "device": torch.cuda.get_device_name(device),
        "seed": SEED,
        "batch_size": 1,
        "model": {**asdict(cfg), "dtype": "bfloat16", "mlp": "swiglu", "norm": "rmsnorm", "positions": "rope"},
        "kv_bytes_per_token": cfg.kv_bytes_per_token,
        "linear_weight_bytes": weight_bytes,
        "swap_in_bytes": SWAP_BYTES,
        "kv_cache": "explicit per layer (K, V) tensors [batch, kv_heads, kv_len, head_dim], grown with torch.cat",
        "label_format": "execute_context_{ctx_reqs}({ctx_tokens})_generation_{gen_reqs}({gen_tokens})",
        "profiler_schedule": {"wait": 0, "warmup": 1, "active": len(steps), "repeat": 1},
        "steps": [
            {**step, "swap_in_bytes": SWAP_BYTES if step["phase"] == "prefill" else 0}
            for step in truth_steps(steps, cfg)
        ],
        "generated_tokens": {str(k): v for k, v in generated.items()},
    }
    (out_dir / TRUTH_NAME).write_text(json.dumps(truth, indent=2) + "\n")
    print(
        f"wrote {trace_path} ({trace_path.stat().st_size} bytes gzipped, {raw_bytes} raw), "
        f"{out_dir / TRUTH_NAME}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"{truth['device']}, {len(steps)} steps",
    )


if __name__ == "__main__":
    main()
