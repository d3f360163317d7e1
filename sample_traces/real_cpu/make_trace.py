"""Produce a real PyTorch-profiler (Kineto) Chrome trace of a tiny decoder-only transformer on CPU.

The model is written here (no downloads): token embedding, N decoder layers of
RMSNorm -> multi-head attention with grouped KV heads (separate q/k/v/o projections, rotary
positions, ``scaled_dot_product_attention``) -> RMSNorm -> SwiGLU MLP, then a final RMSNorm and
an untied LM head. Weights are random (``torch.manual_seed``); only the shapes matter.

Workload, batch 1: for each prompt length (128, 512, 2048 by default) one prefill of the whole
prompt, then a few greedy decode steps, each one token. The KV cache is explicit and grows by
``torch.cat`` (so allocator memory grows visibly and every attention op's key/value shapes carry the
KV length). Every forward is one profiler step (``prof.step()`` -> ``ProfilerStep#N``) and is wrapped
in a vLLM-style ``record_function`` label:

* prefill of T tokens: ``execute_context_1(T)_generation_0(0)``
* decode step:          ``execute_context_0(0)_generation_1(1)``

Outputs (next to this file unless ``--out-dir`` is given):

* ``tiny_decoder_cpu.pt.trace.json.gz``: the Chrome trace written by ``prof.export_chrome_trace``,
  gzipped with mtime=0 (the gzip wrapper is deterministic; the trace itself is not, timings differ).
* ``truth.json``: what is known by construction (steps, phases, tokens, KV lengths, KV bytes/token).

Run: ``python sample_traces/real_cpu/make_trace.py`` (needs ``torch``; ``make sample-real``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function, schedule

HERE = Path(__file__).resolve().parent
TRACE_NAME = "tiny_decoder_cpu.pt.trace.json.gz"
TRUTH_NAME = "truth.json"
SEED = 0


@dataclass(frozen=True)
class Config:
    vocab: int = 1024
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    intermediate: int = 384
    rope_theta: float = 10000.0
    max_positions: int = 4096
    norm_eps: float = 1e-6
    dtype_bytes: int = 4  # float32

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V of one token over all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * self.weight


def rope_tables(cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float32) / cfg.head_dim))
    freqs = torch.outer(torch.arange(cfg.max_positions, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.q_proj = nn.Linear(cfg.hidden, cfg.heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden, cfg.kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden, cfg.kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.heads * cfg.head_dim, cfg.hidden, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.cfg
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, cfg.heads, cfg.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if cache is not None:  # grow the KV cache: [b, kv_heads, S, head_dim] -> S + t
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        new_cache = (k, v)
        # GQA: expand the KV heads to the query heads (keeps torch>=2.4 compatibility; no enable_gqa).
        rep = cfg.heads // cfg.kv_heads
        k_full = k.repeat_interleave(rep, dim=1)
        v_full = v.repeat_interleave(rep, dim=1)
        # Prefill (no cache, t > 1) is causal; a decode token attends to every cached position.
        out = F.scaled_dot_product_attention(q, k_full, v_full, is_causal=cache is None and t > 1)
        out = out.transpose(1, 2).reshape(b, t, cfg.heads * cfg.head_dim)
        return self.o_proj(out), new_cache


class MLP(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.up_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.input_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.post_attn_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, cache):
        h, new_cache = self.attn(self.input_norm(x), cos, sin, cache)
        x = x + h
        x = x + self.mlp(self.post_attn_norm(x))
        return x, new_cache


class TinyDecoder(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.hidden)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)
        cos, sin = rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=1.0 / math.sqrt(p.shape[-1]))

    def forward(self, tokens: torch.Tensor, start_pos: int, caches):
        """tokens [b, t] at positions start_pos..start_pos+t-1 -> last-position logits, new caches."""
        t = tokens.shape[1]
        cos = self.rope_cos[start_pos : start_pos + t]
        sin = self.rope_sin[start_pos : start_pos + t]
        x = self.embed(tokens)
        new_caches = []
        for i, layer in enumerate(self.layers):
            x, c = layer(x, cos, sin, None if caches is None else caches[i])
            new_caches.append(c)
        # Like a serving engine, only the last position is projected to the vocabulary.
        logits = self.lm_head(self.norm(x[:, -1:, :]))
        return logits, new_caches


def label(phase: str, tokens: int) -> str:
    """vLLM ``compute_iteration_details`` style: execute_context_{Rc}({Tc})_generation_{Rg}({Tg})."""
    if phase == "prefill":
        return f"execute_context_1({tokens})_generation_0(0)"
    return f"execute_context_0(0)_generation_1({tokens})"


def plan(prompt_lens: list[int], decode_steps: int) -> list[dict]:
    """The steps in order, with everything known by construction."""
    steps = []
    for prompt_index, T in enumerate(prompt_lens):
        steps.append(dict(prompt_index=prompt_index, phase="prefill", tokens=T, context_len=T, start_pos=0))
        for j in range(1, decode_steps + 1):
            # decode step j feeds the token at position T + j - 1, which attends to T + j cached keys
            steps.append(
                dict(prompt_index=prompt_index, phase="decode", tokens=1, context_len=T + j, start_pos=T + j - 1)
            )
    return steps


def truth_steps(steps: list[dict], cfg: Config) -> list[dict]:
    """truth.json's steps: each planned step (labelled) under its profiler step, with its KV cache size."""
    return [
        {
            "index": i,
            "profiler_step": f"ProfilerStep#{i + 1}",  # ProfilerStep#0 is the discarded warm-up step
            "label": s["label"],
            "phase": s["phase"],
            "prompt_index": s["prompt_index"],
            "tokens": s["tokens"],
            "start_pos": s["start_pos"],
            "context_len": s["context_len"],
            "kv_cache_bytes": s["context_len"] * cfg.kv_bytes_per_token,
        }
        for i, s in enumerate(steps)
    ]


def gzip_deterministic(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            shutil.copyfileobj(fin, gz)


class TraceFile:
    """Where the profiler's trace goes: exported by `on_ready` into a scratch folder, then gzipped
    deterministically into the output folder by `publish`."""

    def __init__(self, prefix: str) -> None:
        self.tmp_dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.tmp_trace = self.tmp_dir / "trace.json"
        self.exported = False

    def on_ready(self, prof: profile) -> None:
        prof.export_chrome_trace(str(self.tmp_trace))
        self.exported = True

    def publish(self, trace_path: Path) -> int:
        """Write the gzipped trace to `trace_path`, drop the scratch folder; return the raw JSON size."""
        if not self.exported:
            raise RuntimeError("profiler did not produce a trace")
        gzip_deterministic(self.tmp_trace, trace_path)
        raw_bytes = self.tmp_trace.stat().st_size
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        return raw_bytes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=HERE)
    ap.add_argument("--prompt-lens", type=int, nargs="+", default=[128, 512, 2048])
    ap.add_argument("--decode-steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 keeps the op structure stable)")
    ap.add_argument("--no-stack", action="store_true", help="profile without with_stack (smaller trace)")
    args = ap.parse_args(argv)

    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    cfg = Config()
    if max(args.prompt_lens) + args.decode_steps > cfg.max_positions:
        ap.error(f"prompt + decode must fit in {cfg.max_positions} positions")
    model = TinyDecoder(cfg).eval()
    gen = torch.Generator().manual_seed(SEED)
    prompts = [torch.randint(0, cfg.vocab, (1, T), generator=gen) for T in args.prompt_lens]
    steps = plan(args.prompt_lens, args.decode_steps)
    for s in steps:
        s["label"] = label(s["phase"], s["tokens"])

    # Warm-up forward (the profiler's warmup step, discarded from the trace): first-call allocations
    # and lazy initialisation stay out of the measured steps.
    warm = torch.randint(0, cfg.vocab, (1, 16), generator=gen)

    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    trace_file = TraceFile("tiny_decoder_trace_")
    generated: dict[int, list[int]] = {}
    with (
        torch.inference_mode(),
        profile(
            activities=[ProfilerActivity.CPU],
            record_shapes=True,
            profile_memory=True,
            with_stack=not args.no_stack,
            schedule=schedule(wait=0, warmup=1, active=len(steps), repeat=1),
            on_trace_ready=trace_file.on_ready,
        ) as prof,
    ):
        with record_function("warmup"):
            model(warm, 0, None)
        prof.step()
        caches = None
        next_tok = None
        for s in steps:
            with record_function(s["label"]):
                if s["phase"] == "prefill":
                    tokens = prompts[s["prompt_index"]]
                    caches = None
                else:
                    tokens = next_tok
                logits, caches = model(tokens, s["start_pos"], caches)
                next_tok = logits[:, -1, :].argmax(dim=-1, keepdim=True)  # greedy sampling
            generated.setdefault(s["prompt_index"], []).append(int(next_tok))
            kv_len = caches[0][0].shape[2]
            assert kv_len == s["context_len"], (kv_len, s)
            prof.step()

    trace_path = out_dir / TRACE_NAME
    raw_bytes = trace_file.publish(trace_path)

    truth = {
        "description": "Known by construction for tiny_decoder_cpu.pt.trace.json.gz (see README.md).",
        "generator": "sample_traces/real_cpu/make_trace.py",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": "cpu",
        "threads": args.threads,
        "with_stack": not args.no_stack,
        "seed": SEED,
        "batch_size": 1,
        "model": {**asdict(cfg), "dtype": "float32", "mlp": "swiglu", "norm": "rmsnorm", "positions": "rope"},
        "kv_bytes_per_token": cfg.kv_bytes_per_token,
        "kv_cache": "explicit per layer (K, V) tensors [batch, kv_heads, kv_len, head_dim], grown with torch.cat",
        "label_format": "execute_context_{ctx_reqs}({ctx_tokens})_generation_{gen_reqs}({gen_tokens})",
        "profiler_schedule": {"wait": 0, "warmup": 1, "active": len(steps), "repeat": 1},
        "steps": truth_steps(steps, cfg),
        "generated_tokens": {str(k): v for k, v in generated.items()},
    }
    (out_dir / TRUTH_NAME).write_text(json.dumps(truth, indent=2) + "\n")
    print(
        f"wrote {trace_path} ({trace_path.stat().st_size} bytes gzipped, {raw_bytes} raw), "
        f"{out_dir / TRUTH_NAME}; torch {torch.__version__}, {len(steps)} steps",
    )


if __name__ == "__main__":
    main()
