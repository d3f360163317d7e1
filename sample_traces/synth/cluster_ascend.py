"""One torch_npu text export per rank of a simulated cluster (`rank{N}_ascend_pt/`).

The layout follows the real Level1/Level2 exports in the corpus (`ascend/torch_npu_2025_text/level2/
rank0_ascend_pt`, HCCL era naming, and `ascend/torch_npu_cann83_level2/rank_0_ascend_pt` for
`profiler_metadata.json`'s group list): `profiler_info_{N}.json`, and in `ASCEND_PROFILER_OUTPUT/`
`trace_view.json` (Python, Ascend Hardware, HCCL with a group thread and a plane thread, Overlap
Analysis), `kernel_details.csv` (compute tasks and `HCCL` rows), `step_trace_time.csv`,
`communication.json` and `communication_matrix.json` (per step, per op `{op}@{group hash}`, link keys
`"{src}-{dst}"` in group-local ranks, top1/middle/bottom1 samples beside the `-total`).
The one group is the world, so its local ranks are the global ones.
"""

from __future__ import annotations

import json
from typing import Any

from traceview.parsers.collectives import hccl_group_hash

from .ascend_csv import KERNEL_HEADER, NA, STEP_TRACE_HEADER, UINT32_MAX, _csv, us
from .ascend_view import profiler_info_text
from .cluster import ClusterRun, Collective, RankStep, Task

STREAM = 2
PID_OFFSET, INDEX_OFFSET = 10, 5
SORT_INDEX = {"Ascend Hardware": 13, "HCCL": 15, "Overlap Analysis": 23}
TRANSPORTS = ("RDMA", "HCCS", "PCIE", "SDMA", "SIO")
LOCAL_BANDWIDTH = 300e9  # bytes/s of the on-chip copy HCCL reports as the LOCAL link
COMPUTE = {
    # family: (kernel name, OP type, accelerator core, block dim, input shapes)
    "gemm": ("MatMulV2_a1b2c3_high_performance_1", "MatMulV2", "AI_CORE", 24, '"8192,4096;4096,4096"'),
    "elementwise": ("Add_4d5e6f_high_performance_1", "Add", "AI_VECTOR_CORE", 48, '"8192,4096;8192,4096"'),
    "norm": ("RmsNorm_7a8b9c_high_performance_1", "RmsNorm", "AI_VECTOR_CORE", 48, '"8192,4096;4096"'),
}
OP_TYPE = {"allreduce": "allReduce", "send": "send", "recv": "receive"}
HOST_OP = {"gemm": "aten::mm", "elementwise": "aten::add_", "norm": "npu::npu_rms_norm"}


# The group's key in profiler_metadata.json's parallel_group_info; communication.json names it by its hash.
GROUP_KEY = "group_name_0"


def group_hash(name: str = GROUP_KEY) -> str:
    """The HCCL group id torch_npu writes after `@` for a group name (the profiler's own hash of the name)."""
    return hccl_group_hash(name)


def format_pid(pid: int, process: str) -> int:
    return (pid << PID_OFFSET) | (SORT_INDEX[process] << INDEX_OFFSET)


def process_pid(rank: int) -> int:
    return 3_170_000 + 11 * rank


def op_name(run: ClusterRun, task: Task) -> str:
    """`hcom_{type}__{last 3 digits of the group}_{index in the group}_1`."""
    gh = group_hash()
    return f"hcom_{OP_TYPE[_role(task)]}__{gh[-3:]}_{task.index}_1"


def _role(task: Task) -> str:
    return task.role or "allreduce"


def _f(x: float) -> float:
    return round(x, 6)


class _Rank:
    """Everything written for one rank."""

    def __init__(self, run: ClusterRun, rank: int) -> None:
        self.run = run
        self.spec = run.spec
        self.rank = rank
        self.steps: list[RankStep] = run.steps[rank]
        self.gh = group_hash()
        self.pid = process_pid(rank)
        self.hw = format_pid(self.pid, "Ascend Hardware")
        self.hccl = format_pid(self.pid, "HCCL")
        self.overlap = format_pid(self.pid, "Overlap Analysis")

    def ts(self, rel: int) -> str:
        return us(self.run.abs_ns(rel))

    # -- what each comm op moved ---------------------------------------------------------------

    def links(self, task: Task) -> list[tuple[str, str, int, int]]:
        """(link key, transport, bytes, transit ns) this rank's op moved; LOCAL first."""
        coll = task.coll
        assert coll is not None
        spec = self.spec
        if coll.kind == "allreduce":
            n = spec.ranks
            dst = (self.rank + 1) % n
            size = 2 * (n - 1) * coll.nbytes // n
            local = round(coll.nbytes / LOCAL_BANDWIDTH * 1e9)
            transit = round(size / spec.link_bw(self.rank, dst) * 1e9)
            return [
                (f"{self.rank}-{self.rank}", "LOCAL", coll.nbytes, local),
                (f"{self.rank}-{dst}", spec.transport(self.rank, dst), size, transit),
            ]
        if task.role == "send":
            assert coll.src is not None and coll.dst is not None
            return [(f"{coll.src}-{coll.dst}", spec.transport(coll.src, coll.dst), coll.nbytes, coll.transit)]
        return []

    def transit_ns(self, task: Task) -> int:
        return max((t for _, kind, _, t in self.links(task) if kind != "LOCAL"), default=0)

    # -- communication.json ------------------------------------------------------------------------

    def time_info(self, task: Task) -> dict[str, Any]:
        coll = task.coll
        assert coll is not None
        elapse = task.dur / 1e6
        transit = self.transit_ns(task) / 1e6
        wait = (coll.start - task.start) / 1e6
        ratio = round(wait / (wait + transit), 4) if wait + transit else 0
        return {
            "Start Timestamp(us)": self.run.abs_ns(task.start) / 1000,
            "Elapse Time(ms)": _f(elapse),
            "Transit Time(ms)": _f(transit),
            "Wait Time(ms)": _f(wait),
            "Synchronization Time(ms)": _f(wait),
            "Idle Time(ms)": _f(elapse - transit - wait),
            "Wait Time Ratio": ratio,
            "Synchronization Time Ratio": ratio,
        }

    def bandwidth_info(self, tasks: list[Task], total: bool) -> dict[str, Any]:
        sizes: dict[str, list[tuple[int, int]]] = {t: [] for t in TRANSPORTS}
        for task in tasks:
            for _, kind, size, transit in self.links(task):
                if kind == "LOCAL":
                    continue
                sizes[kind].append((size, transit))
                if kind == "HCCS":
                    sizes["SDMA"].append((size, transit))  # on-node copies run on SDMA as well
        out: dict[str, Any] = {}
        for kind in TRANSPORTS:
            moved = sizes[kind]
            mb = sum(s for s, _ in moved) / 1e6
            ms = sum(t for _, t in moved) / 1e6
            dist: dict[str, list[float]] = {}
            if kind != "SDMA":
                for s, t in moved:
                    entry = dist.setdefault(str(s / 1e6), [0, 0.0])
                    entry[0] += 1
                    entry[1] = _f(entry[1] + t / 1e6)
            if total:
                out[kind] = {"Transit Time(ms)": _f(ms), "Transit Size(MB)": _f(mb), "Size Distribution": dist}
            else:
                out[kind] = {
                    "Transit Size(MB)": _f(mb),
                    "Transit Time(ms)": _f(ms),
                    "Bandwidth(GB/s)": round(mb / ms, 4) if ms else 0,
                    "Large Packet Ratio": 0.0 if moved and kind != "SDMA" else 0,
                    "Size Distribution": dist,
                }
        return out

    def _comm_tasks(self, step: RankStep, p2p: bool) -> list[Task]:
        return [t for t in step.tasks if t.coll is not None and (t.coll.kind == "p2p") == p2p]

    def communication(self) -> str:
        out: dict[str, Any] = {}
        for step in self.steps:
            entry: dict[str, Any] = {}
            for kind, p2p in (("p2p", True), ("collective", False)):
                tasks = self._comm_tasks(step, p2p)
                ops: dict[str, Any] = {}
                for task in tasks:
                    ops[f"{op_name(self.run, task)}@{self.gh}"] = {
                        "Communication Time Info": self.time_info(task),
                        "Communication Bandwidth Info": self.bandwidth_info([task], total=False),
                    }
                if tasks:
                    infos = [self.time_info(t) for t in tasks]
                    keys = [k for k in infos[0] if k not in ("Start Timestamp(us)",) and "Ratio" not in k]
                    summed = {k: _f(sum(i[k] for i in infos)) for k in keys}
                    wait, transit = summed["Wait Time(ms)"], summed["Transit Time(ms)"]
                    ratio = round(wait / (wait + transit), 4) if wait + transit else 0
                    summed["Wait Time Ratio"] = ratio
                    summed["Synchronization Time Ratio"] = ratio
                    ops["Total Op Info"] = {
                        "Communication Time Info": summed,
                        "Communication Bandwidth Info": self.bandwidth_info(tasks, total=True),
                    }
                entry[kind] = ops
            out[f"step{step.number}"] = entry
        return json.dumps(out)

    # -- communication_matrix.json -----------------------------------------------------------------

    def _link_entry(self, task: Task | None, kind: str, size: int, transit: int) -> dict[str, Any]:
        mb, ms = size / 1e6, transit / 1e6
        entry: dict[str, Any] = {
            "Transport Type": kind,
            "Transit Size(MB)": _f(mb),
            "Transit Time(ms)": _f(ms),
            "Bandwidth(GB/s)": round(mb / ms, 4) if ms else 0,
        }
        if task is not None:
            entry["Op Name"] = op_name(self.run, task)
        return entry

    def matrix(self) -> str:
        out: dict[str, Any] = {}
        for step in self.steps:
            entry: dict[str, Any] = {}
            for kind, p2p in (("p2p", True), ("collective", False)):
                ops: dict[str, Any] = {}
                by_type: dict[str, list[Task]] = {}
                for task in self._comm_tasks(step, p2p):
                    if self.links(task):
                        by_type.setdefault(_role(task).lower(), []).append(task)
                for typ, tasks in by_type.items():
                    # one op of a type per step: every sample is that op
                    for sample in ("top1", "middle", "bottom1", "total"):
                        links: dict[str, Any] = {}
                        for key, transport, size, transit in self._summed_links(tasks):
                            links[key] = self._link_entry(
                                None if sample == "total" else tasks[0], transport, size, transit
                            )
                        ops[f"{typ}-{sample}@{self.gh}"] = links
                entry[kind] = ops
            out[f"step{step.number}"] = entry
        return json.dumps(out)

    def _summed_links(self, tasks: list[Task]) -> list[tuple[str, str, int, int]]:
        acc: dict[str, tuple[str, int, int]] = {}
        for task in tasks:
            for key, kind, size, transit in self.links(task):
                _, s, t = acc.get(key, (kind, 0, 0))
                acc[key] = (kind, s + size, t + transit)
        return [(k, v[0], v[1], v[2]) for k, v in acc.items()]

    # -- kernel_details.csv / step_trace_time.csv -------------------------------------------------

    def kernel_details(self) -> str:
        rows = []
        prev_end: int | None = None
        task_id = 11_000
        for step in self.steps:
            for task in step.tasks:
                wait = "0" if prev_end is None else str(round(max(0, task.start - prev_end) / 1000, 3))
                prev_end = task.start + task.dur
                start = us(self.run.abs_ns(task.start)) + "\t"
                dur = str(round(task.dur / 1000, 3))
                if task.coll is not None:
                    name = op_name(self.run, task)
                    row = [step.number, UINT32_MAX, NA, NA, name, name.split("__")[0] + "_", NA, "HCCL", start, dur]
                    rows.append([*row, wait, 0] + [NA] * (len(KERNEL_HEADER) - 12))
                    continue
                task_id += 1
                kernel, op_type, core, block, shapes = COMPUTE[task.family]
                head = [step.number, UINT32_MAX, task_id, STREAM, kernel, op_type, "dynamic", core, start, dur, wait]
                rest = [block, 0, "NO", shapes, "DT_BF16;DT_BF16", "ND;ND", '"8192,4096"', "DT_BF16", "ND", NA]
                rows.append(head + rest + [NA] * (len(KERNEL_HEADER) - len(head) - len(rest)))
        return _csv(KERNEL_HEADER, rows, crlf=True)

    def step_trace_time(self) -> str:
        rows = []
        for step in self.steps:
            compute = _union([t for t in step.tasks if t.coll is None])
            comm = _union([t for t in step.tasks if t.coll is not None])
            sends = _union([t for t in step.tasks if t.coll is not None and t.role != "recv"])
            alone = _length(_subtract(comm, compute)) / 1000
            alone_no_recv = _length(_subtract(sends, compute)) / 1000
            computing, communication = _length(compute) / 1000, _length(comm) / 1000
            stage = step.dur / 1000
            busy = _length(_union(step.tasks)) / 1000
            preparing = (min(t.start for t in step.tasks) - step.ts) / 1000
            overlapped = communication - alone
            row = [step.number, computing, alone, overlapped, communication, stage - busy, stage, 0, alone_no_recv]
            rows.append([*row, preparing])
        return _csv(STEP_TRACE_HEADER, rows, crlf=True)

    # -- trace_view.json ---------------------------------------------------------------------------

    def trace_view(self) -> str:
        events: list[tuple[int, int, dict[str, Any]]] = []
        pid = self.pid
        conn = 900
        for step in self.steps:
            events.append((step.ts, 0, self._x(f"ProfilerStep#{step.number}", pid, pid, step.ts, step.dur, "cpu_op")))
            for task in step.tasks:
                host = HOST_OP.get(task.family) if task.coll is None else f"HcclComm::{OP_TYPE[_role(task)]}"
                events.append((task.host_ts, 1, self._x(host or task.family, pid, pid, task.host_ts, 11_000, "cpu_op")))
                conn += 1
                if task.coll is None:
                    kernel, _, core, _, _ = COMPUTE[task.family]
                    args = {
                        "Model Id": UINT32_MAX,
                        "Task Type": core,
                        "Physic Stream Id": STREAM,
                        "Task Id": conn + 10_000,
                        "Batch Id": 0,
                        "Subtask Id": UINT32_MAX,
                        "connection_id": conn,
                    }
                    events.append(
                        (task.start, 2, {**self._x(kernel, self.hw, STREAM, task.start, task.dur), "args": args})
                    )
                    continue
                events += self._hccl(task, conn)
        events += self._overlap()
        events.sort(key=lambda r: (r[0], r[1]))
        return json.dumps(self._metadata() + [e for _, _, e in events])

    def _x(self, name: str, pid: int, tid: int, ts: int, dur: int, cat: str | None = None) -> dict[str, Any]:
        ev: dict[str, Any] = {"ph": "X", "name": name, "pid": pid, "tid": tid, "ts": self.ts(ts), "dur": dur / 1000}
        if cat:
            ev["cat"] = cat
            ev["args"] = {"Sequence number": -1, "Fwd thread id": 0}
        return ev

    def _hccl(self, task: Task, conn: int) -> list[tuple[int, int, dict[str, Any]]]:
        coll = task.coll
        assert coll is not None
        big = self._x(op_name(self.run, task), self.hccl, 0, task.start, task.dur)
        big["args"] = {
            "connection_id": conn,
            "model id": UINT32_MAX,
            "data_type": "BFP16",
            "alg_type": "RING" if coll.kind == "allreduce" else "NA",
            "count": coll.nbytes // self.spec.dtype_bytes,
        }
        out = [(task.start, 2, big)]
        for ctx, (_, kind, size, transit) in enumerate(self.links(task)):
            src, dst = (self.rank, self.rank) if kind == "LOCAL" else (coll.src, coll.dst)
            if coll.kind == "allreduce" and kind != "LOCAL":
                src, dst = self.rank, (self.rank + 1) % self.spec.ranks
            small = self._x("Memcpy", self.hccl, 1, coll.start, transit)
            small["args"] = {
                "notify_id": "18446744073709551615",
                "duration estimated(us)": transit / 1000,
                "stream id": STREAM + 1,
                "task id": conn,
                "context id": ctx,
                "task type": "Memcpy",
                "src rank": src,
                "dst rank": dst,
                "transport type": "RDMA" if kind == "RDMA" else "SDMA",
                "size(Byte)": size,
                "data type": "INVALID_TYPE",
                "link type": {"LOCAL": "ON_CHIP", "HCCS": "HCCS", "RDMA": "ROCE"}[kind],
                "bandwidth(GB/s)": size / transit if transit else 0.0,
                "model id": UINT32_MAX,
            }
            out.append((coll.start, 3 + ctx, small))
        return out

    def _overlap(self) -> list[tuple[int, int, dict[str, Any]]]:
        tasks = [t for s in self.steps for t in s.tasks]
        compute = _union([t for t in tasks if t.coll is None])
        comm = _union([t for t in tasks if t.coll is not None])
        busy = _union(tasks)
        free = [(a[1], b[0]) for a, b in zip(busy, busy[1:], strict=False)]
        tracks = (
            ("Computing", 0, compute),
            ("Communication", 1, comm),
            ("Communication(Not Overlapped)", 2, _subtract(comm, compute)),
            ("Free", 3, free),
        )
        return [(a, 9, self._x(name, self.overlap, tid, a, b - a)) for name, tid, spans in tracks for a, b in spans]

    def _metadata(self) -> list[dict[str, Any]]:
        def meta(name: str, pid: int, tid: int, key: str, value: Any) -> dict[str, Any]:
            return {"name": name, "pid": pid, "tid": tid, "args": {key: value}, "ph": "M"}

        pid = self.pid
        out = [
            {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": "Python"}},
            {"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "args": {"labels": "CPU"}},
            {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": 0}},
            {"ph": "M", "name": "thread_name", "pid": pid, "tid": pid, "args": {"name": f"Thread {pid}"}},
            {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": pid, "args": {"sort_index": pid}},
            meta("process_name", self.hw, 0, "name", "Ascend Hardware"),
            meta("thread_name", self.hw, STREAM, "name", f"Stream {STREAM}"),
            meta("thread_sort_index", self.hw, STREAM, "sort_index", STREAM),
            meta("process_labels", self.hw, 0, "labels", "NPU"),
            meta("process_sort_index", self.hw, 0, "sort_index", SORT_INDEX["Ascend Hardware"]),
            meta("process_name", self.hccl, 0, "name", "HCCL"),
            meta("thread_name", self.hccl, 0, "name", "Group 0 Communication"),
            meta("thread_sort_index", self.hccl, 0, "sort_index", 0),
            meta("thread_name", self.hccl, 1, "name", "Plane 0"),
            meta("thread_sort_index", self.hccl, 1, "sort_index", 1),
            meta("process_labels", self.hccl, 0, "labels", "NPU"),
            meta("process_sort_index", self.hccl, 0, "sort_index", SORT_INDEX["HCCL"]),
            meta("process_name", self.overlap, 0, "name", "Overlap Analysis"),
        ]
        for tid, name in enumerate(("Computing", "Communication", "Communication(Not Overlapped)", "Free")):
            out.append(meta("thread_name", self.overlap, tid, "name", name))
        out += [
            meta("process_labels", self.overlap, 0, "labels", "NPU"),
            meta("process_sort_index", self.overlap, 0, "sort_index", SORT_INDEX["Overlap Analysis"]),
        ]
        return out

    # -- profiler_info / profiler_metadata --------------------------------------------------------

    def profiler_info(self) -> str:
        return profiler_info_text(
            steps=self.spec.steps,
            profile_memory=False,
            monotonic=175_754_613_953_420 + 1_000_003 * self.rank,
            end_ns=self.run.abs_ns(self.run.end),
            duration_ns=self.run.end - self.run.start,
            rank=self.rank,
        )

    def profiler_metadata(self) -> str:
        n = self.spec.ranks
        meta = {
            "distributed_args": {"data_parallel_size": n, "rank": self.rank, "world_size": n},
            "ENV_VARIABLES": {"ASCEND_GLOBAL_LOG_LEVEL": "3", "HCCL_ALGO": ""},
            "parallel_group_info": {
                GROUP_KEY: {"group_name": "default_group", "group_rank": self.rank, "global_ranks": list(range(n))}
            },
        }
        return json.dumps(meta)


def _union(tasks: list[Task]) -> list[tuple[int, int]]:
    """The merged busy intervals of some tasks."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted((t.start, t.start + t.dur) for t in tasks):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _subtract(spans: list[tuple[int, int]], minus: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Parts of merged `spans` outside merged `minus`."""
    out = []
    for a, b in spans:
        cur = a
        for c, d in minus:
            if d <= cur or c >= b:
                continue
            if c > cur:
                out.append((cur, c))
            cur = max(cur, d)
        if cur < b:
            out.append((cur, b))
    return out


def _length(spans: list[tuple[int, int]]) -> int:
    return sum(b - a for a, b in spans)


def dump_dir(rank: int) -> str:
    return f"rank{rank}_ascend_pt"


def rank_files(run: ClusterRun, rank: int) -> dict[str, str]:
    """Relative path (inside the run directory) to file text, for one rank."""
    r = _Rank(run, rank)
    root, out = dump_dir(rank), f"{dump_dir(rank)}/ASCEND_PROFILER_OUTPUT/"
    return {
        f"{root}/profiler_info_{rank}.json": r.profiler_info(),
        f"{root}/profiler_metadata.json": r.profiler_metadata(),
        out + "trace_view.json": r.trace_view(),
        out + "kernel_details.csv": r.kernel_details(),
        out + "step_trace_time.csv": r.step_trace_time(),
        out + "communication.json": r.communication(),
        out + "communication_matrix.json": r.matrix(),
    }


def ascend_op_names(run: ClusterRun, coll: Collective) -> dict[str, str]:
    """The op name each member gives a collective (member rank as text -> name)."""
    out = {}
    for rank in coll.members:
        for step in run.steps[rank]:
            for task in step.tasks:
                if task.coll is coll:
                    out[str(rank)] = op_name(run, task)
    return out
