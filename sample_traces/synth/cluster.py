"""A data-parallel training cluster with known faults: the timeline every rank's trace is written from.

Each step on every rank: a compute phase (forward and backward kernels), a ring AllReduce of the
gradients over all ranks, then an optimizer phase on the compute stream while a ring exchange of
send/recv pairs runs on the communication stream (rank r sends to r+1: even senders first, then odd
ones), then a host synchronisation on both streams. The optimizer outlasts the exchange, so a slow
link does not shift the next step. Two faults are injected:

- a straggler: on the given steps one rank's host starts issuing the step `delay_ns` late, so its
  AllReduce kernel starts that much later than it would have (every other rank waits for it);
- a degraded link: the ring link `src -> dst` moves data at `degraded_bandwidth` instead of
  `link_bandwidth`; the AllReduce is paced by its slowest link and the `src -> dst` send/recv pair
  takes `bytes / degraded_bandwidth`.

A collective's transfer starts when the last member arrives (its kernel starts) and ends at the
same instant on every member, so a kernel lasts (wait for the others) + (transit). Kernel times
carry a small seeded noise; everything is a pure function of the spec.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from dataclasses import dataclass, field
from typing import Any

VENDORS = ("gpu", "ascend")
MIB = 1024 * 1024

# (family, nominal ns) of the kernels before the AllReduce and after the send/recv exchange
COMPUTE_A: tuple[tuple[str, int], ...] = (
    ("gemm", 2_400_000),
    ("elementwise", 300_000),
    ("gemm", 2_400_000),
    ("norm", 200_000),
    ("gemm", 4_800_000),
    ("elementwise", 300_000),
)
# the optimizer; it needs only the AllReduce, so the send/recv exchange runs beside it on the comm stream
COMPUTE_B: tuple[tuple[str, int], ...] = (("elementwise", 1_200_000), ("elementwise", 800_000))

HOST_OP_NS = 14_000  # host time of one aten op (launch included)
LAUNCH_OFFSET_NS = 3_000  # op start to its launch call
LAUNCH_NS = 5_000  # launch call duration
LAUNCH_LATENCY_NS = 3_000  # launch end to the earliest device start
COMM_HOST_NS = 30_000  # host time of one collective call
STEP_GAP_NS = 40_000  # end of one step to the start of the next on the host
SYNC_TAIL_NS = 6_000  # device idle to the end of the host's synchronize call
COMM_GAP_NS = 2_000  # one NCCL/HCCL kernel's end to the next one's start on the communication stream
FIRST_STEP_NS = 100_000  # the first step's start after the trace start


@dataclass(frozen=True)
class ClusterSpec:
    """Everything that determines a cluster sample."""

    name: str = "cluster"
    vendor: str = "gpu"
    ranks: int = 4
    steps: int = 4
    seed: int = 0
    ranks_per_node: int = 8
    allreduce_bytes: int = 64 * MIB
    p2p_bytes: int = 16 * MIB
    dtype_bytes: int = 2
    link_bandwidth: float = 80e9  # bytes/s of a healthy ring link
    inter_node_bandwidth: float = 40e9  # bytes/s of a ring link between nodes
    straggler_rank: int = 2
    straggler_steps: tuple[int, ...] = (2, 3)
    straggler_delay_ns: int = 3_000_000
    degraded_src: int = 1
    degraded_dst: int = 2
    degraded_bandwidth: float = 20e9
    noise: float = 0.0005
    base_time_ns: int = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z

    def validate(self) -> None:
        """Raise ValueError naming the first parameter that makes no sense."""
        checks = [
            (self.vendor in VENDORS, f"vendor must be one of {', '.join(VENDORS)}"),
            (self.ranks >= 2 and self.ranks % 2 == 0, "ranks must be an even number >= 2"),
            (self.steps >= 1, "steps must be >= 1"),
            (0 <= self.straggler_rank < self.ranks, "straggler rank must be one of the ranks"),
            (all(1 <= s <= self.steps for s in self.straggler_steps), "straggler steps must be in 1..steps"),
            (self.straggler_delay_ns >= 0, "straggler delay must be >= 0"),
            (0 <= self.degraded_src < self.ranks, "degraded link source must be one of the ranks"),
            (self.degraded_dst == (self.degraded_src + 1) % self.ranks, "degraded link must be a ring link r -> r+1"),
            (0 < self.degraded_bandwidth, "bandwidths must be > 0"),
            (0 < self.link_bandwidth and 0 < self.inter_node_bandwidth, "bandwidths must be > 0"),
            (self.ranks_per_node >= 1, "ranks per node must be >= 1"),
            (self.allreduce_bytes % self.dtype_bytes == 0, "allreduce bytes must be whole elements"),
            (self.p2p_bytes % self.dtype_bytes == 0, "p2p bytes must be whole elements"),
            (0 <= self.noise < 0.1, "noise must be in [0, 0.1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["straggler_steps"] = list(self.straggler_steps)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown cluster spec keys: {', '.join(unknown)}")
        d = dict(data)
        if "straggler_steps" in d:
            d["straggler_steps"] = tuple(d["straggler_steps"])
        return cls(**d)

    def same_node(self, a: int, b: int) -> bool:
        return a // self.ranks_per_node == b // self.ranks_per_node

    def link_bw(self, src: int, dst: int) -> float:
        """Bytes/s of the ring link src -> dst."""
        if (src, dst) == (self.degraded_src, self.degraded_dst):
            return self.degraded_bandwidth
        return self.link_bandwidth if self.same_node(src, dst) else self.inter_node_bandwidth

    def transport(self, src: int, dst: int) -> str:
        """The link's transport in the vendor's words."""
        if self.vendor == "ascend":
            return "HCCS" if self.same_node(src, dst) else "RDMA"
        return "NVLink" if self.same_node(src, dst) else "InfiniBand"


@dataclass
class Collective:
    """One collective call (AllReduce) or one send/recv pair, seen from all its members."""

    step: int
    kind: str  # "allreduce" or "p2p"
    index: int  # order within the step on every member
    nbytes: int
    members: tuple[int, ...]
    arrival: dict[int, int]  # rank -> its kernel start (ns, relative)
    start: int  # transfer start: the last arrival
    end: int  # transfer end, the same on every member
    transit: int
    src: int | None = None
    dst: int | None = None
    seq: int = 0  # the process group's sequence number (per rank for p2p)


@dataclass
class Task:
    """One device task on one rank; compute kernels have no collective."""

    family: str
    start: int
    dur: int
    host_ts: int
    coll: Collective | None = None
    role: str = ""  # "send" / "recv" for p2p, "" otherwise
    seq: int = 0  # PyTorch's `Seq`: per process group, collectives and p2p counted apart
    index: int = 0  # order among this rank's communication ops (HCCL's op index in the group)


@dataclass
class RankStep:
    number: int
    ts: int
    dur: int = 0
    tasks: list[Task] = field(default_factory=list)
    sync_ts: int = 0
    sync_dur: int = 0


@dataclass
class ClusterRun:
    spec: ClusterSpec
    steps: dict[int, list[RankStep]]  # rank -> its steps
    collectives: list[Collective]
    start: int
    end: int

    def abs_ns(self, rel: int) -> int:
        return self.spec.base_time_ns + rel


class _Rank:
    """The running clocks of one rank."""

    def __init__(self, spec: ClusterSpec, rank: int) -> None:
        self.rank = rank
        self.rng = random.Random(f"{spec.seed}:{rank}")
        self.noise = spec.noise
        self.host = FIRST_STEP_NS
        self.compute_free = 0
        self.comm_free = 0
        self.seq_coll = 0
        self.seq_p2p = 0
        self.comm_ops = 0
        self.steps: list[RankStep] = []

    def jitter(self, ns: int) -> int:
        return max(1_000, round(ns * (1.0 + self.rng.gauss(0.0, self.noise))))

    def compute(self, step: RankStep, kernels: tuple[tuple[str, int], ...], after: int) -> None:
        """Issue compute kernels; the device runs them back to back once `after` has passed."""
        for family, nominal in kernels:
            launch_end = self.host + LAUNCH_OFFSET_NS + LAUNCH_NS
            start = max(self.compute_free, after, launch_end + LAUNCH_LATENCY_NS)
            task = Task(family, start, self.jitter(nominal), self.host)
            step.tasks.append(task)
            self.compute_free = start + task.dur
            self.host += HOST_OP_NS

    def numbered(self, task: Task) -> Task:
        task.index = self.comm_ops
        self.comm_ops += 1
        return task

    def comm_ready(self) -> int:
        """When this rank's next communication kernel can start."""
        launch_end = self.host + LAUNCH_OFFSET_NS + LAUNCH_NS
        return max(self.compute_free, self.comm_free + COMM_GAP_NS, launch_end + LAUNCH_LATENCY_NS)


def _ring_transit(spec: ClusterSpec) -> int:
    """Ring AllReduce: 2(n-1)/n of the buffer over every link, paced by the slowest link."""
    n = spec.ranks
    slowest = min(spec.link_bw(r, (r + 1) % n) for r in range(n))
    return math.ceil(2 * (n - 1) / n * spec.allreduce_bytes / slowest * 1e9)


def _p2p_transit(spec: ClusterSpec, src: int, dst: int) -> int:
    return math.ceil(spec.p2p_bytes / spec.link_bw(src, dst) * 1e9)


def simulate(spec: ClusterSpec) -> ClusterRun:
    """Play every rank's steps; collectives synchronise them."""
    spec.validate()
    n = spec.ranks
    ranks = [_Rank(spec, r) for r in range(n)]
    collectives: list[Collective] = []
    everyone = tuple(range(n))
    ar_transit = _ring_transit(spec)
    for number in range(1, spec.steps + 1):
        current = []
        for rk in ranks:
            step = RankStep(number, rk.host)
            rk.steps.append(step)
            current.append(step)
            if rk.rank == spec.straggler_rank and number in spec.straggler_steps:
                rk.host += spec.straggler_delay_ns
            rk.compute(step, COMPUTE_A, 0)
        # gradients: one AllReduce over everyone
        arrival = {rk.rank: rk.comm_ready() for rk in ranks}
        start = max(arrival.values())
        ar = Collective(
            number, "allreduce", 0, spec.allreduce_bytes, everyone, arrival, start, start + ar_transit, ar_transit
        )
        ar.seq = ranks[0].seq_coll + 1
        collectives.append(ar)
        for rk, step in zip(ranks, current, strict=True):
            rk.seq_coll += 1
            task = Task("allreduce", arrival[rk.rank], ar.end - arrival[rk.rank], rk.host, ar, "", rk.seq_coll)
            step.tasks.append(rk.numbered(task))
            rk.comm_free = ar.end
            rk.host += COMM_HOST_NS
        # ring exchange: even senders first, then odd ones
        for parity in (0, 1):
            pairs = [(s, (s + 1) % n) for s in range(parity, n, 2)]
            ready = {rk.rank: rk.comm_ready() for rk in ranks}
            for src, dst in pairs:
                arr = {src: ready[src], dst: ready[dst]}
                begin = max(arr.values())
                transit = _p2p_transit(spec, src, dst)
                pair = Collective(
                    number,
                    "p2p",
                    1 + parity,
                    spec.p2p_bytes,
                    (src, dst),
                    arr,
                    begin,
                    begin + transit,
                    transit,
                    src,
                    dst,
                )
                collectives.append(pair)
                for rank, role in ((src, "send"), (dst, "recv")):
                    rk = ranks[rank]
                    rk.seq_p2p += 1
                    task = Task(role, arr[rank], pair.end - arr[rank], rk.host, pair, role, rk.seq_p2p)
                    current[rank].tasks.append(rk.numbered(task))
                    rk.comm_free = pair.end
            for rk in ranks:
                rk.host += COMM_HOST_NS
        for rk, step in zip(ranks, current, strict=True):
            rk.compute(step, COMPUTE_B, ar.end)
            step.sync_ts = rk.host
            step.sync_dur = max(rk.compute_free, rk.comm_free, rk.host) + SYNC_TAIL_NS - rk.host
            rk.host = step.sync_ts + step.sync_dur + 4_000
            step.dur = rk.host - step.ts
            rk.host += STEP_GAP_NS
    end = max(rk.host for rk in ranks)
    return ClusterRun(spec, {rk.rank: rk.steps for rk in ranks}, collectives, 0, end)


def straggler_lateness(run: ClusterRun) -> dict[int, int]:
    """Per step: the straggler's AllReduce arrival minus the median arrival of the other ranks."""
    spec = run.spec
    out = {}
    for c in run.collectives:
        if c.kind != "allreduce":
            continue
        others = [t for r, t in c.arrival.items() if r != spec.straggler_rank]
        out[c.step] = c.arrival[spec.straggler_rank] - round(statistics.median(others))
    return out
