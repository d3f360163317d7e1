"""`truth.json`: what is true of a synthetic run by construction."""

from __future__ import annotations

from typing import Any

from .timeline import Run, StepRun

TRUTH_VERSION = 1


def _family_totals(run: Run) -> dict[str, Any]:
    vendor = run.spec.device.vendor
    fams: dict[str, dict[str, Any]] = {}
    for step in run.steps:
        for k in step.kernels:
            f = fams.setdefault(k.family, {"total_ns": 0, "count": 0, "names": set()})
            f["total_ns"] += k.dur
            f["count"] += 1
            f["names"].add(_device_name(k, vendor))
    return {
        fam: {"total_ns": v["total_ns"], "count": v["count"], "names": sorted(v["names"])}
        for fam, v in sorted(fams.items())
    }


def _device_name(k: Any, vendor: str) -> str:
    if k.kind == "kernel":
        return k.name(vendor)
    if vendor == "ascend":
        return "MEMCPY_ASYNC"
    return k.names.nv_kernel


def _steps(run: Run) -> list[dict[str, Any]]:
    out = []
    kv_per_token = run.spec.model.kv_bytes_per_token
    for step in run.steps:
        p = step.plan
        ctx = [s for s in p.slots if s.is_context]
        gen = [s for s in p.slots if not s.is_context]
        ks = [k for k in step.kernels if k.kind == "kernel"]
        kv_tokens = sum(s.context_after for s in p.slots)
        out.append(
            {
                "step": step.number,
                "profiler_step": f"ProfilerStep#{step.number}",
                "annotation": p.annotation() if run.spec.annotations == "vllm" else None,
                "batch": p.batch,
                "phase": p.phase,
                "num_context_requests": len(ctx),
                "context_tokens": sum(s.new_tokens for s in ctx),
                "num_generation_requests": len(gen),
                "generation_tokens": sum(s.new_tokens for s in gen),
                "tokens": p.tokens,
                "max_context_len": max(s.context_after for s in p.slots),
                "kv_tokens": kv_tokens,
                "kv_read_bytes_per_layer": kv_tokens * kv_per_token // run.spec.model.layers,
                "kv_cache_bytes": step.kv_bytes,
                "start_ns": run.abs_ns(step.ts),
                "dur_ns": step.dur,
                "kernel_count": len(ks),
                "device_busy_ns": sum(k.dur for k in ks),
                "device_start_ns": run.abs_ns(min(k.start for k in step.kernels)),
                "device_end_ns": run.abs_ns(max(k.start + k.dur for k in step.kernels)),
                "requests": [
                    {
                        "id": s.request,
                        "new_tokens": s.new_tokens,
                        "context_len": s.context_after,
                        "kind": "context" if s.is_context else "generation",
                    }
                    for s in p.slots
                ],
            }
        )
    return out


def _decode_bandwidth(run: Run) -> list[dict[str, Any]]:
    out = []
    for step in run.steps:
        if step.plan.phase != "decode":
            continue
        ks = [k for k in step.kernels if k.kind == "kernel"]
        attn = [k for k in ks if k.family == "attention"]
        nbytes = sum(k.bytes for k in ks)
        ns = sum(k.dur for k in ks)
        abytes = sum(k.bytes for k in attn)
        ans = sum(k.dur for k in attn)
        out.append(
            {
                "step": step.number,
                "bytes": int(nbytes),
                "device_ns": ns,
                "bytes_per_s": nbytes / ns * 1e9,
                "attention_bytes": int(abytes),
                "attention_ns": ans,
                "attention_bytes_per_s": abytes / ans * 1e9,
                "peak_bytes_per_s": run.spec.device.hbm_bandwidth,
            }
        )
    return out


def _stall(run: Run, step: StepRun) -> dict[str, Any]:
    """The host pause and the device idle gap around it (queued work can shorten the gap).

    The gap runs from the end of the last device task (kernel or memcpy) launched before the
    pause ended to the start of the first one launched after it.
    """
    assert step.stall is not None
    ts, dur = step.stall
    ks = [k for s in run.steps for k in s.kernels]
    after = next(i for i, k in enumerate(ks) if k.launch_ts >= ts + dur)
    gap_start = max(k.start + k.dur for k in ks[:after]) if after else ks[0].start
    return {
        "step": step.number,
        "ts_ns": run.abs_ns(ts),
        "dur_ns": dur,
        "device_gap_start_ns": run.abs_ns(gap_start),
        "device_gap_ns": max(0, ks[after].start - gap_start),
    }


def build_truth(run: Run, files: list[str]) -> dict[str, Any]:
    """The truth document; every number is an exact function of the written events."""
    spec = run.spec
    m = spec.model
    return {
        "truth_version": TRUTH_VERSION,
        "generator": "sample_traces.synth",
        "name": spec.name,
        "seed": spec.seed,
        "files": files,
        "conventions": {
            "time": "absolute epoch ns; Kineto ts_ns = baseTimeNanoseconds + ts_us*1000, "
            "Ascend timestamps are absolute µs",
            "step": "ProfilerStep#N span on the host thread",
            "device_busy_ns": "sum of compute kernel durations in the step (memcpy excluded)",
            "bytes_per_s": "modelled bytes of the step's compute kernels / their summed durations",
        },
        "time": {
            "base_time_ns": spec.base_time_ns,
            "trace_start_ns": run.abs_ns(run.start),
            "trace_end_ns": run.abs_ns(run.end),
        },
        "model": {
            "name": m.name,
            "kv_bytes_per_token": m.kv_bytes_per_token,
            "weight_bytes": m.weight_bytes,
        },
        "device": {
            "preset": spec.device.preset,
            "name": spec.device.name,
            "peak_flops": spec.device.peak_flops,
            "hbm_bandwidth": spec.device.hbm_bandwidth,
        },
        "variant": {
            "label": spec.variant.label,
            "family_scale": dict(spec.variant.family_scale),
            "extra_kernel": spec.variant.extra_kernel or None,
            "launch_overhead_scale": spec.variant.launch_overhead_scale,
        },
        "steps": _steps(run),
        "stalls": [_stall(run, s) for s in run.steps if s.stall is not None],
        "kernel_families": _family_totals(run),
        "decode_bandwidth": _decode_bandwidth(run),
        "spec": spec.to_dict(),
    }
