"""The ops of one engine step: host op, device kernels, FLOPs and bytes, shapes."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .names import EXTRA, GEMM_SMALL, NAMES, NPU_DTYPE, Names
from .schedule import StepPlan
from .spec import ModelShape

BLOCK_NVIDIA = 16  # vLLM paged KV block size on CUDA
BLOCK_ASCEND = 128  # vllm-ascend block size


@dataclass
class Kernel:
    """One device task, with its cost model and (after simulation) its timing."""

    names: Names
    flops: float
    bytes: float
    kind: str = "kernel"  # kernel, memcpy_h2d, memcpy_d2h
    grid: tuple[int, int, int] = (1, 1, 1)
    block: tuple[int, int, int] = (256, 1, 1)
    npu_shapes: tuple[str, str, str, str, str, str] = ("", "", "", "", "", "")
    block_dim: int = 48
    mix_block_dim: int = 0
    # set by the timeline
    launch_ts: int = 0
    launch_dur: int = 0
    start: int = 0
    dur: int = 0
    correlation: int = 0
    task_id: int = 0
    roofline_ns: float = 0.0
    compute_ns: float = 0.0
    memory_ns: float = 0.0

    @property
    def family(self) -> str:
        """Kernel family used by truth.json."""
        return self.names.family

    def name(self, vendor: str) -> str:
        """The kernel name as the vendor's profiler writes it."""
        return self.names.nv_kernel if vendor == "nvidia" else self.names.npu_kernel


@dataclass
class HostOp:
    """A host-side op (one Kineto cpu_op) launching zero or more device kernels."""

    names: Names
    kernels: list[Kernel]
    dims: list[list[int]] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    concrete: list[str] = field(default_factory=list)
    layer: int | None = None
    sync: bool = False  # the host waits for the device after this op
    # set by the timeline
    ts: int = 0
    dur: int = 0
    external_id: int = 0
    sync_ts: int = 0
    sync_dur: int = 0
    sync_correlation: int = 0

    def name(self, vendor: str) -> str:
        """The host op name on the vendor's stack."""
        return self.names.nv_op if vendor == "nvidia" else self.names.npu_op


def _strides(dims: list[list[int]]) -> list[list[int]]:
    out = []
    for d in dims:
        s, acc = [], 1
        for n in reversed(d):
            s.append(acc)
            acc *= n
        out.append(list(reversed(s)))
    return out


def strides_of(op: HostOp) -> list[list[int]]:
    """Contiguous strides of the op's input dims (what Kineto records as Input Strides)."""
    return _strides(op.dims)


def _shape(dims: list[int]) -> str:
    return ",".join(str(d) for d in dims)


def _npu_shapes(ins: list[list[int]], outs: list[list[int]], dtypes_in: str, dtypes_out: str):
    fmt_in = ";".join("FORMAT_ND" for _ in ins)
    fmt_out = ";".join("FORMAT_ND" for _ in outs)
    return (
        '"' + ";".join(_shape(d) for d in ins) + '"',
        dtypes_in,
        fmt_in,
        '"' + ";".join(_shape(d) for d in outs) + '"',
        dtypes_out,
        fmt_out,
    )


class StepBuilder:
    """Builds the op list of a step for one model; costs from a simple roofline model."""

    def __init__(self, model: ModelShape, vendor: str, extra_kernel: str, pool_blocks: int) -> None:
        self.m = model
        self.vendor = vendor
        self.extra = EXTRA[extra_kernel] if extra_kernel else None
        self.pool_blocks = pool_blocks

    def ops(self, plan: StepPlan) -> list[HostOp]:
        """Ops in launch order: inputs, embedding, layers, final norm, LM head, sampling."""
        m = self.m
        t = plan.tokens
        logits = sum(1 for s in plan.slots if s.samples)
        b = m.dtype_bytes
        ops = [
            self._h2d(t),
            self._elementwise(
                "embedding",
                t,
                2 * t * m.hidden * b,
                [[m.vocab, m.hidden], [t]],
                [t, m.hidden],
                types=["c10::BFloat16", "long int"],
            ),
        ]
        for layer in range(m.layers):
            ops.extend(self._layer(plan, layer))
        ops.append(self._norm("add_rms_norm", t, None))
        if logits:
            ops.append(self._gemm(logits, m.hidden, m.vocab, None))
            ops.append(
                self._elementwise(
                    "argmax",
                    logits,
                    4 * logits * m.vocab,
                    [[logits, m.vocab], []],
                    [logits],
                    types=["float", "Scalar"],
                    out_type="INT64",
                )
            )
            ops.append(self._d2h(logits))
        return ops

    def _layer(self, plan: StepPlan, layer: int) -> list[HostOp]:
        m = self.m
        t = plan.tokens
        q_width = (m.heads + 2 * m.kv_heads) * m.head_dim
        norm = "rms_norm" if layer == 0 else "add_rms_norm"
        ops = [
            self._norm(norm, t, layer),
            self._gemm(t, m.hidden, q_width, layer),
            self._elementwise(
                "rotary",
                t,
                2 * t * (m.heads + m.kv_heads) * m.head_dim * m.dtype_bytes,
                [[t], [t, m.heads * m.head_dim], [t, m.kv_heads * m.head_dim]],
                [t, m.heads * m.head_dim],
                layer,
                types=["long int", "c10::BFloat16", "c10::BFloat16"],
            ),
            self._kv_write(t, layer),
            self._attention(plan, layer),
        ]
        if self.extra is not None:
            ops.append(self._extra(t, layer))
        ops += [
            self._gemm(t, m.heads * m.head_dim, m.hidden, layer),
            self._norm("add_rms_norm", t, layer),
            self._gemm(t, m.hidden, 2 * m.intermediate, layer),
            self._elementwise(
                "silu_mul",
                t,
                3 * t * m.intermediate * m.dtype_bytes,
                [[t, m.intermediate], [t, 2 * m.intermediate]],
                [t, m.intermediate],
                layer,
            ),
            self._gemm(t, m.intermediate, m.hidden, layer),
        ]
        return ops

    # -- op builders ---------------------------------------------------------------------------

    def _gemm(self, rows: int, k: int, n: int, layer: int | None) -> HostOp:
        b = self.m.dtype_bytes
        names = NAMES["gemm"]
        if rows <= 64:
            names = dataclasses.replace(names, nv_kernel=GEMM_SMALL)
        kern = Kernel(
            names,
            2.0 * rows * k * n,
            float(k * n * b),
            grid=(math.ceil(n / 256), math.ceil(rows / 128), 1),
            block=(384, 1, 1),
            npu_shapes=_npu_shapes([[rows, k], [n, k]], [[rows, n]], "DT_BF16;DT_BF16", "DT_BF16"),
            block_dim=24,
        )
        return HostOp(names, [kern], [[rows, k], [k, n]], ["c10::BFloat16", "c10::BFloat16"], ["", ""], layer)

    def _norm(self, key: str, t: int, layer: int | None) -> HostOp:
        h, b = self.m.hidden, self.m.dtype_bytes
        names = NAMES[key]
        fused = key == "add_rms_norm"
        tensors = 4 if fused else 2
        dims = [[t, h], [t, h], [h], []]
        outs = [[t, h], [t, 1], [t, h]] if fused else [[t, h], [t, 1]]
        kern = Kernel(
            names,
            5.0 * t * h,
            float(tensors * t * h * b + h * b),
            grid=(t, 1, 1),
            block=(min(1024, h // 8), 1, 1),
            npu_shapes=_npu_shapes(
                dims[:3],
                outs,
                "DT_BF16;DT_BF16;DT_BF16",
                "DT_BF16;FLOAT;DT_BF16" if fused else "DT_BF16;FLOAT",
            ),
            block_dim=min(48, max(1, t)),
        )
        types = ["c10::BFloat16", "c10::BFloat16", "c10::BFloat16", "Scalar"]
        return HostOp(names, [kern], dims, types, ["", "", "", "1e-05"], layer)

    def _elementwise(
        self,
        key: str,
        rows: int,
        nbytes: float,
        dims: list[list[int]],
        out: list[int],
        layer: int | None = None,
        types: list[str] | None = None,
        out_type: str = "DT_BF16",
    ) -> HostOp:
        names = NAMES[key]
        if types is None:
            types = ["c10::BFloat16" if d else "Scalar" for d in dims]
        ins = [(d, t) for d, t in zip(dims, types, strict=True) if d]
        kern = Kernel(
            names,
            2.0 * nbytes / self.m.dtype_bytes,
            float(nbytes),
            grid=(max(1, rows), 1, 1),
            block=(256, 1, 1),
            npu_shapes=_npu_shapes([d for d, _ in ins], [out], ";".join(NPU_DTYPE[t] for _, t in ins), out_type),
            block_dim=min(48, max(1, rows)),
        )
        return HostOp(names, [kern], dims, types, ["" for _ in dims], layer)

    def _extra(self, t: int, layer: int) -> HostOp:
        m = self.m
        assert self.extra is not None
        width = m.heads * m.head_dim
        dims = [[t, width]]
        kern = Kernel(
            self.extra,
            4.0 * t * width,
            float(2 * t * width * m.dtype_bytes),
            grid=(max(1, t), 1, 1),
            block=(256, 1, 1),
            npu_shapes=_npu_shapes(dims, dims, "DT_BF16", "DT_BF16"),
            block_dim=min(48, max(1, t)),
        )
        return HostOp(self.extra, [kern], dims, ["c10::BFloat16"], [""], layer)

    def _kv_write(self, t: int, layer: int) -> HostOp:
        m = self.m
        kv = m.kv_heads * m.head_dim
        names = NAMES["kv_write"]
        cache = [self.pool_blocks, BLOCK_NVIDIA, m.kv_heads, m.head_dim]
        dims = [[t, m.kv_heads, m.head_dim], [t, m.kv_heads, m.head_dim], cache, cache, [t], [], [], []]
        npu_cache = [self.pool_blocks * BLOCK_NVIDIA // BLOCK_ASCEND, BLOCK_ASCEND, m.kv_heads, m.head_dim]
        kern = Kernel(
            names,
            0.0,
            float(4 * t * kv * m.dtype_bytes),
            grid=(t, 1, 1),
            block=(min(512, kv), 1, 1),
            npu_shapes=_npu_shapes(
                [[t, m.kv_heads, m.head_dim], [t, m.kv_heads, m.head_dim], npu_cache, npu_cache, [t]],
                [npu_cache, npu_cache],
                "DT_BF16;DT_BF16;DT_BF16;DT_BF16;INT32",
                "DT_BF16;DT_BF16",
            ),
            block_dim=1,
        )
        types = [
            "c10::BFloat16",
            "c10::BFloat16",
            "c10::BFloat16",
            "c10::BFloat16",
            "long int",
            "Scalar",
            "Scalar",
            "Scalar",
        ]
        return HostOp(names, [kern], dims, types, ["", "", "", "", "", "auto", "", ""], layer)

    def _attention(self, plan: StepPlan, layer: int) -> HostOp:
        m = self.m
        slots = plan.slots
        t = plan.tokens
        reqs = len(slots)
        decode = plan.phase == "decode"
        flops = 0.0
        kv_bytes = 0.0
        for s in slots:
            q, p = s.new_tokens, s.context_before
            flops += 4.0 * m.heads * m.head_dim * (q * p + q * (q + 1) / 2)
            kv_bytes += 2.0 * m.kv_heads * m.head_dim * s.context_after * m.dtype_bytes
        max_q = max(s.new_tokens for s in slots)
        max_k = max(s.context_after for s in slots)
        blocks = math.ceil(max_k / BLOCK_NVIDIA)
        cache = [self.pool_blocks, BLOCK_NVIDIA, m.kv_heads, m.head_dim]
        dims = [
            [t, m.heads, m.head_dim],
            cache,
            cache,
            [t, m.heads, m.head_dim],
            [reqs + 1],
            [],
            [reqs],
            [],
            [reqs, blocks],
            [],
            [],
            [],
            [],
            [],
            [],
            [],
            [],
            [],
            [],
            [],
            [],
        ]
        bf, i32 = "c10::BFloat16", "int"
        types = [bf, bf, bf, bf, i32, "", i32, "", i32, ""] + ["Scalar"] * 10 + [""]
        scale = repr(1.0 / math.sqrt(m.head_dim))
        concrete = [
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            str(max_q),
            str(max_k),
            "0.",
            scale,
            "False",
            "True",
            "-1",
            "-1",
            "0.",
            "False",
            "",
        ]
        npu_blocks = math.ceil(max_k / BLOCK_ASCEND)
        npu_cache = [self.pool_blocks * BLOCK_NVIDIA // BLOCK_ASCEND, BLOCK_ASCEND, m.kv_heads * m.head_dim]
        npu = _npu_shapes(
            [[t, m.heads, m.head_dim], npu_cache, npu_cache, [reqs, npu_blocks], [reqs], [reqs]],
            [[t, m.heads, m.head_dim]],
            "DT_BF16;DT_BF16;DT_BF16;INT32;INT64;INT64",
            "DT_BF16",
        )
        names = NAMES["attn_decode" if decode else "attn_prefill"]
        main = Kernel(
            names,
            flops,
            kv_bytes,
            grid=(1, 4 if decode else math.ceil(max_q / 128), reqs * m.heads),
            block=(128, 1, 1),
            npu_shapes=npu,
            block_dim=24,
            mix_block_dim=48,
        )
        kernels = [main]
        if decode and self.vendor == "nvidia":
            splits = 4
            kernels.append(
                Kernel(
                    NAMES["attn_combine"],
                    float(reqs * m.heads * m.head_dim * splits * 3),
                    float(reqs * m.heads * m.head_dim * splits * 4),
                    grid=(math.ceil(reqs * m.heads / 4), 1, 1),
                    block=(128, 1, 1),
                )
            )
        return HostOp(names, kernels, dims, types, concrete, layer)

    def _h2d(self, t: int) -> HostOp:
        names = NAMES["h2d"]
        kern = Kernel(names, 0.0, float(16 * t), kind="memcpy_h2d")
        return HostOp(names, [kern], [[2, t], [2, t], []], ["long int", "long int", "Scalar"], ["", "", "True"])

    def _d2h(self, rows: int) -> HostOp:
        names = NAMES["d2h"]
        kern = Kernel(names, 0.0, float(8 * rows), kind="memcpy_d2h")
        return HostOp(
            names, [kern], [[rows], [rows], []], ["long int", "long int", "Scalar"], ["", "", "False"], sync=True
        )
