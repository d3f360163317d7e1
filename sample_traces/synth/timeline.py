"""Simulate host and device timing of a run: roofline kernels, host launch model, memory."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .kernels import BLOCK_NVIDIA, HostOp, Kernel, StepBuilder
from .schedule import StepPlan, plan_steps
from .spec import RunSpec

PCIE_BYTES_PER_S = 25e9  # pinned host<->device copies
MEMCPY_FLOOR_NS = 1_400
GIB = 1 << 30
MIB = 1 << 20


@dataclass
class Allocation:
    """One device allocation as the caching allocator reports it (times relative ns)."""

    name: str
    addr: int
    size: int
    ts: int
    allocated_after: int
    reserved_after: int
    release_ts: int | None = None
    allocated_after_release: int = 0
    reserved_after_release: int = 0


@dataclass
class MemEvent:
    """A Kineto `[memory]` event: `size` < 0 frees."""

    ts: int
    addr: int
    size: int
    total_allocated: int
    total_reserved: int


@dataclass
class StepRun:
    """One simulated engine step."""

    plan: StepPlan
    number: int  # ProfilerStep#N
    ts: int
    dur: int
    ann_ts: int
    ann_dur: int
    ops: list[HostOp]
    kv_bytes: int  # KV cache resident after the step
    stall: tuple[int, int] | None = None  # (ts, dur), relative ns

    @property
    def kernels(self) -> list[Kernel]:
        """All device tasks of the step in launch order."""
        return [k for op in self.ops for k in op.kernels]


@dataclass
class Run:
    """The whole simulated run; writers turn it into files."""

    spec: RunSpec
    steps: list[StepRun]
    start: int
    end: int
    weights_bytes: int
    allocations: list[Allocation] = field(default_factory=list)
    mem_events: list[MemEvent] = field(default_factory=list)

    def abs_ns(self, rel: int) -> int:
        """Absolute (epoch) ns of a relative timestamp."""
        return self.spec.base_time_ns + rel


class _Allocator:
    """A caching allocator: Total Allocated and a monotone Total Reserved (2 MiB pages)."""

    def __init__(self, run: Run, base: int) -> None:
        self.run = run
        self.allocated = base
        self.reserved = _round_up(base, 2 * MIB)
        self.next_addr = 0x7F3A_0000_0000
        self.live: dict[int, Allocation] = {}

    def alloc(self, name: str, size: int, ts: int) -> int:
        addr = self.next_addr
        self.next_addr += _round_up(size, 512)
        self.allocated += size
        self.reserved = max(self.reserved, _round_up(self.allocated, 2 * MIB))
        a = Allocation(name, addr, size, ts, self.allocated, self.reserved)
        self.live[addr] = a
        self.run.allocations.append(a)
        self.run.mem_events.append(MemEvent(ts, addr, size, self.allocated, self.reserved))
        return addr

    def free(self, addr: int, ts: int) -> None:
        a = self.live.pop(addr)
        self.allocated -= a.size
        a.release_ts = ts
        a.allocated_after_release = self.allocated
        a.reserved_after_release = self.reserved
        self.run.mem_events.append(MemEvent(ts, addr, -a.size, self.allocated, self.reserved))


def _round_up(x: int, unit: int) -> int:
    return (x + unit - 1) // unit * unit


class _Clock:
    """Noisy durations from one seeded RNG, drawn in a fixed order."""

    def __init__(self, spec: RunSpec) -> None:
        self.rng = random.Random(spec.seed)
        self.noise = spec.noise

    def host(self, ns: float) -> int:
        return max(1, round(ns * max(0.3, 1.0 + self.rng.gauss(0.0, 3 * self.noise))))

    def device(self, ns: float) -> int:
        return max(1, round(ns * max(0.5, 1.0 + self.rng.gauss(0.0, self.noise))))


def simulate(spec: RunSpec) -> Run:
    """Run the scheduler, build each step's ops and time them on host and device."""
    dev, var = spec.device, spec.variant
    plans = plan_steps(spec.workload)
    peak_tokens = max(sum(s.context_after for s in p.slots) for p in plans) if plans else 0
    pool_blocks = _round_up(math.ceil(peak_tokens / BLOCK_NVIDIA) + 1, 1024)
    builder = StepBuilder(spec.model, dev.vendor, var.extra_kernel, pool_blocks)
    scale = dict(var.family_scale)
    stalls = {s.step: s for s in spec.stalls}
    clock = _Clock(spec)

    start = spec.start_offset_ns
    weights = spec.model.weight_bytes
    run = Run(spec, [], start, start, weights)
    mem = _Allocator(run, weights + 384 * MIB)
    host = start + 40_000
    gpu_free = host
    kv_resident = 0
    batch_allocs: list[int] = []
    for plan in plans:
        number = plan.index + 1
        step_ts = host
        host += clock.host(dev.step_prepare_ns * 0.6)
        new_kv = plan.tokens * spec.model.kv_bytes_per_token
        batch_allocs.append(mem.alloc("aten::empty", new_kv, host))
        kv_resident += new_kv
        host += clock.host(dev.step_prepare_ns * 0.4)
        ann_ts = host
        host += clock.host(2_000)
        m = spec.model
        work = plan.tokens * max(2 * m.intermediate, (m.heads + 2 * m.kv_heads) * m.head_dim) * m.dtype_bytes
        work_addr = mem.alloc("aten::empty_strided", work, host)
        host += clock.host(1_500)
        ops = builder.ops(plan)
        stall_at = _stall_index(ops, stalls[number].layer) if number in stalls else -1
        stall = None
        for i, op in enumerate(ops):
            if i == stall_at:
                stall = (host, stalls[number].dur_us * 1000)
                host += stall[1]
            host, gpu_free = _run_op(op, host, gpu_free, spec, clock, scale)
        host = max(host, gpu_free + 1_000)
        mem.free(work_addr, host)
        host += clock.host(1_200)
        ann_dur = host - ann_ts
        host += clock.host(dev.step_finish_ns)
        if plan.frees_batch:
            for addr in batch_allocs:
                mem.free(addr, host)
                host += clock.host(900)
            batch_allocs = []
        run.steps.append(StepRun(plan, number, step_ts, host - step_ts, ann_ts, ann_dur, ops, kv_resident, stall))
        if plan.frees_batch:
            kv_resident = 0
        host += clock.host(3_000)
    run.end = host + 30_000
    return run


def _run_op(
    op: HostOp, host: int, gpu_free: int, spec: RunSpec, clock: _Clock, scale: dict[str, float]
) -> tuple[int, int]:
    """Time one host op and its kernels; returns the new host time and device-free time."""
    dev, var = spec.device, spec.variant
    op.ts = host
    host += clock.host(dev.host_overhead_ns * 0.55)
    for k in op.kernels:
        k.launch_ts = host
        k.launch_dur = clock.host(dev.launch_api_ns * var.launch_overhead_scale)
        k.start = max(gpu_free, host + clock.host(dev.launch_latency_ns * var.launch_overhead_scale))
        _cost(k, spec, scale)
        k.dur = clock.device(k.roofline_ns)
        gpu_free = k.start + k.dur
        host += k.launch_dur + clock.host(400)
    if op.sync:
        op.sync_ts = host
        op.sync_dur = max(clock.host(1_800), gpu_free - host + clock.host(1_500))
        host += op.sync_dur
    host += clock.host(dev.host_overhead_ns * 0.2)
    op.dur = host - op.ts
    host += clock.host(dev.host_overhead_ns * 0.25)
    return host, gpu_free


def _stall_index(ops: list[HostOp], layer: int | None) -> int:
    """Index of the op the stall precedes: the first op (layer None) or the layer's first op."""
    if layer is None:
        return 0
    for i, op in enumerate(ops):
        if op.layer == layer:
            return i
    raise ValueError(f"stall layer {layer} is not in the model")


def _cost(k: Kernel, spec: RunSpec, scale: dict[str, float]) -> None:
    """Roofline time of a kernel: max(FLOPs/peak, bytes/bandwidth), floored, family-scaled."""
    dev = spec.device
    if k.kind != "kernel":
        k.memory_ns = k.bytes / PCIE_BYTES_PER_S * 1e9
        k.roofline_ns = max(MEMCPY_FLOOR_NS, k.memory_ns)
        return
    k.compute_ns = k.flops / (dev.peak_flops * dev.compute_efficiency) * 1e9
    k.memory_ns = k.bytes / (dev.hbm_bandwidth * dev.memory_efficiency) * 1e9
    k.roofline_ns = max(dev.kernel_floor_ns, k.compute_ns, k.memory_ns) * scale.get(k.family, 1.0)
