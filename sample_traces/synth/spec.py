"""What a synthetic run is made of: model shape, device, workload, runtime variant, seed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("gemm", "attention", "norm", "elementwise", "kv_cache", "sampling", "copy")


@dataclass(frozen=True)
class ModelShape:
    """A dense decoder-only transformer (Llama-style: RMSNorm, GQA, SwiGLU)."""

    name: str = "llama-3.1-8b-like"
    layers: int = 32
    heads: int = 32
    kv_heads: int = 8
    head_dim: int = 128
    hidden: int = 4096
    intermediate: int = 14336
    vocab: int = 128256
    dtype_bytes: int = 2

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V of one token over all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    @property
    def layer_weight_bytes(self) -> int:
        """Weights of one decoder layer (projections and norms)."""
        h, d = self.hidden, self.head_dim
        qkv = h * (self.heads + 2 * self.kv_heads) * d
        o = self.heads * d * h
        mlp = 3 * h * self.intermediate
        return (qkv + o + mlp + 2 * h) * self.dtype_bytes

    @property
    def weight_bytes(self) -> int:
        """All weights: layers, embedding, final norm and (untied) LM head."""
        embed = self.vocab * self.hidden * self.dtype_bytes
        return self.layers * self.layer_weight_bytes + 2 * embed + self.hidden * self.dtype_bytes


@dataclass(frozen=True)
class Device:
    """Roofline and host-side cost model of one accelerator and its host."""

    preset: str
    name: str
    vendor: str  # "nvidia" or "ascend": picks kernel names and device metadata
    peak_flops: float  # dense FLOP/s at the model dtype
    hbm_bandwidth: float  # bytes/s
    memory_bytes: int
    compute_efficiency: float  # achievable fraction of peak_flops
    memory_efficiency: float  # achievable fraction of hbm_bandwidth
    kernel_floor_ns: int  # shortest possible kernel
    launch_latency_ns: int  # launch API start to earliest kernel start
    launch_api_ns: int  # duration of the launch API call on the host
    host_overhead_ns: int  # host time per op besides the launch call
    step_prepare_ns: int  # scheduler + input preparation before each forward
    step_finish_ns: int  # output processing after each forward
    source: str = ""


# NVIDIA H200 SXM: 989 TFLOP/s dense BF16 tensor core (1,979 with sparsity), 141 GB HBM3e at
# 4.8 TB/s (NVIDIA H200 Tensor Core GPU datasheet / product page; llm-serving-signals.md §4.2).
H200 = Device(
    preset="h200",
    name="NVIDIA H200",
    vendor="nvidia",
    peak_flops=989e12,
    hbm_bandwidth=4.8e12,
    memory_bytes=150_754_820_096,
    compute_efficiency=0.70,
    memory_efficiency=0.85,
    kernel_floor_ns=1_800,
    launch_latency_ns=3_500,
    launch_api_ns=3_200,
    host_overhead_ns=7_000,
    step_prepare_ns=260_000,
    step_finish_ns=120_000,
    source="NVIDIA H200 datasheet: 989e12 dense BF16 FLOP/s, 4.8e12 B/s HBM3e",
)

# Ascend 910B (Atlas 800 A2 class): ~313 TFLOP/s FP16 as quoted by public spec sheets of the
# 910B; 64 GB HBM. No official per-chip HBM bandwidth was found (llm-serving-signals.md §4.2:
# community constants 0.46-1.8 TB/s); 1.6e12 B/s is a user-supplied assumption.
ASCEND_910B = Device(
    preset="910b",
    name="Ascend910B",
    vendor="ascend",
    peak_flops=313e12,
    hbm_bandwidth=1.6e12,
    memory_bytes=68_719_476_736,
    compute_efficiency=0.65,
    memory_efficiency=0.80,
    kernel_floor_ns=2_500,
    launch_latency_ns=6_000,
    launch_api_ns=4_500,
    host_overhead_ns=11_000,
    step_prepare_ns=380_000,
    step_finish_ns=160_000,
    source="public 910B spec sheets: ~313e12 FP16 FLOP/s; 1.6e12 B/s assumed (no official figure)",
)

PRESETS: dict[str, Device] = {"h200": H200, "910b": ASCEND_910B}


@dataclass(frozen=True)
class Workload:
    """Batches of requests served one after the other, each prefilled then decoded."""

    batches: tuple[tuple[int, ...], ...] = ((4096, 16384),)
    decode_steps: int = 4
    chunk_size: int | None = 8192  # chunked-prefill token budget per step; None: whole prompts


@dataclass(frozen=True)
class Stall:
    """A host-side pause of `dur_us` in ProfilerStep#`step`, before its first op of `layer`.

    `layer` None puts it before the forward pass, where the device queue is empty, so the device
    idles for the whole pause; inside the forward, queued work hides part of it.
    """

    step: int
    dur_us: int
    layer: int | None = None


@dataclass(frozen=True)
class Variant:
    """Runtime-version knobs, for building A/B pairs with known differences."""

    label: str = "v1"
    family_scale: tuple[tuple[str, float], ...] = ()  # (family, duration factor)
    extra_kernel: str = ""  # "" or the key of an extra per-layer kernel (see kernels.EXTRA)
    launch_overhead_scale: float = 1.0  # scales launch API time and launch latency


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one synthetic run; the outputs are a function of it."""

    name: str
    device: Device = H200
    model: ModelShape = field(default_factory=ModelShape)
    workload: Workload = field(default_factory=Workload)
    seed: int = 0
    noise: float = 0.02  # relative std-dev of kernel and host durations
    stalls: tuple[Stall, ...] = ()
    annotations: str = "vllm"  # "vllm" step labels or "none"
    variant: Variant = field(default_factory=Variant)
    formats: tuple[str, ...] = ()  # "kineto", "ascend"; empty: by device vendor
    pid: int = 48211
    base_time_ns: int = 1_767_225_600_000_000_000
    start_offset_ns: int = 1_234_567_890_000_000

    def resolved_formats(self) -> tuple[str, ...]:
        """Formats to write: the explicit list, else the device vendor's native one."""
        if self.formats:
            return self.formats
        return ("ascend",) if self.device.vendor == "ascend" else ("kineto",)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, key order stable."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Inverse of `to_dict`."""
        wl = data.get("workload", {})
        var = data.get("variant", {})
        return cls(
            name=data["name"],
            device=Device(**data["device"]) if "device" in data else H200,
            model=ModelShape(**data.get("model", {})),
            workload=Workload(
                batches=tuple(tuple(b) for b in wl.get("batches", Workload.batches)),
                decode_steps=wl.get("decode_steps", Workload.decode_steps),
                chunk_size=wl.get("chunk_size", Workload.chunk_size),
            ),
            seed=data.get("seed", 0),
            noise=data.get("noise", 0.02),
            stalls=tuple(Stall(**s) for s in data.get("stalls", ())),
            annotations=data.get("annotations", "vllm"),
            variant=Variant(
                label=var.get("label", "v1"),
                family_scale=tuple((f, float(x)) for f, x in var.get("family_scale", ())),
                extra_kernel=var.get("extra_kernel", ""),
                launch_overhead_scale=var.get("launch_overhead_scale", 1.0),
            ),
            formats=tuple(data.get("formats", ())),
            pid=data.get("pid", 48211),
            base_time_ns=data.get("base_time_ns", RunSpec.base_time_ns),
            start_offset_ns=data.get("start_offset_ns", RunSpec.start_offset_ns),
        )
