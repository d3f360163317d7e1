"""`trace_view.json` and `profiler_info_0.json` of a torch_npu text export (Jan-2025 layout)."""

from __future__ import annotations

import json
from typing import Any

from .ascend_csv import (
    DEVICE_OVERHEAD,
    SORT_INDEX,
    STREAM,
    UINT32_MAX,
    app_samples,
    assign_task_ids,
    busy_intervals,
    format_pid,
    us,
)
from .kernels import Kernel
from .timeline import Run


class _TraceView:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.pid = run.spec.pid
        self.acl_tid = run.spec.pid + 7
        self.hw = format_pid(self.pid, "Ascend Hardware")
        self.cann = format_pid(self.pid, "CANN")
        self.mem = format_pid(self.pid, "NPU MEM")
        self.overlap = format_pid(self.pid, "Overlap Analysis")

    def ts(self, rel: int) -> str:
        return us(self.run.abs_ns(rel))

    def torch_events(self) -> list[dict[str, Any]]:
        """Python process: cpu_op ranges, task-queue enqueue/dequeue with their flows, M rows."""
        run, pid = self.run, self.pid
        ops: list[tuple[int, int, int, dict[str, Any]]] = []
        base_args = {"Sequence number": -1, "Fwd thread id": 0}
        for step in run.steps:
            ops.append(
                (step.ts, -step.dur, 0, self._cpu_op(f"ProfilerStep#{step.number}", step.ts, step.dur, dict(base_args)))
            )
            if run.spec.annotations == "vllm":
                ops.append(
                    (
                        step.ann_ts,
                        -step.ann_dur,
                        1,
                        self._cpu_op(step.plan.annotation(), step.ann_ts, step.ann_dur, dict(base_args)),
                    )
                )
            for op in step.ops:
                args = dict(base_args)
                args["Input Dims"] = ";\r\n".join(",".join(str(x) for x in d) for d in op.dims)
                args["Input type"] = ";\r\n".join(op.types)
                ops.append((op.ts, -op.dur, 2, self._cpu_op(op.name("ascend"), op.ts, op.dur, args)))
        ops.sort(key=lambda r: (r[0], r[1], r[2]))
        out = [r[3] for r in ops]
        corr = 8000
        for step in run.steps:
            for op in step.ops:
                for k in op.kernels:
                    corr += 1
                    k.correlation = corr
                    deq = self._dequeue_ts(k)
                    out += [
                        {
                            "ph": "X",
                            "name": "Enqueue",
                            "pid": pid,
                            "tid": pid,
                            "ts": self.ts(k.launch_ts),
                            "dur": k.launch_dur / 1000,
                            "cat": "enqueue",
                            "args": {"correlation_id": corr},
                        },
                        {
                            "ph": "s",
                            "bp": "e",
                            "name": "enqueue_to_dequeue",
                            "id": corr,
                            "pid": pid,
                            "tid": pid,
                            "ts": self.ts(k.launch_ts),
                            "cat": "async_task_queue",
                        },
                        {
                            "ph": "X",
                            "name": f"Dequeue@{op.names.npu_api}",
                            "pid": pid,
                            "tid": self.acl_tid,
                            "ts": self.ts(deq[0]),
                            "dur": deq[1] / 1000,
                            "cat": "dequeue",
                            "args": {"correlation_id": corr},
                        },
                        {
                            "ph": "f",
                            "bp": "e",
                            "name": "enqueue_to_dequeue",
                            "id": corr,
                            "pid": pid,
                            "tid": self.acl_tid,
                            "ts": self.ts(deq[0]),
                            "cat": "async_task_queue",
                        },
                    ]
        out += [
            {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": "Python"}},
            {"ph": "M", "name": "process_labels", "pid": pid, "tid": 0, "args": {"labels": "CPU"}},
            {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": 0}},
        ]
        for tid in (pid, self.acl_tid):
            out += [
                {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": f"Thread {tid}"}},
                {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}},
            ]
        return out

    def _cpu_op(self, name: str, ts: int, dur: int, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ph": "X",
            "name": name,
            "pid": self.pid,
            "tid": self.pid,
            "ts": self.ts(ts),
            "dur": dur / 1000,
            "cat": "cpu_op",
            "args": args,
        }

    @staticmethod
    def _dequeue_ts(k: Kernel) -> tuple[int, int]:
        """The task-queue thread dequeues right after the enqueue and launches before the task."""
        start = k.launch_ts + k.launch_dur + 600
        room = max(1_000, k.start - start - 300)
        return start, min(room, 3 * k.launch_dur)

    def cann_metadata(self) -> list[dict[str, Any]]:
        """`M` rows of the CANN-side processes, in the order msprof writes them."""

        def meta(name: str, pid: int, tid: int, key: str, value: Any) -> dict[str, Any]:
            return {"name": name, "pid": pid, "tid": tid, "args": {key: value}, "ph": "M"}

        out = [
            meta("process_name", self.hw, 0, "name", "Ascend Hardware"),
            meta("thread_name", self.hw, STREAM, "name", f"Stream {STREAM}"),
            meta("thread_sort_index", self.hw, STREAM, "sort_index", STREAM),
            meta("process_labels", self.hw, 0, "labels", "NPU"),
            meta("process_sort_index", self.hw, 0, "sort_index", SORT_INDEX["Ascend Hardware"]),
            meta("process_name", self.mem, 0, "name", "NPU MEM"),
            meta("process_labels", self.mem, 0, "labels", "NPU"),
            meta("process_sort_index", self.mem, 0, "sort_index", SORT_INDEX["NPU MEM"]),
            meta("process_name", self.cann, 0, "name", "CANN"),
        ]
        tids = (self.pid, self.acl_tid)
        out += [meta("thread_name", self.cann, t, "name", f"Thread {t}") for t in tids]
        out += [meta("thread_sort_index", self.cann, t, "sort_index", t) for t in tids]
        out += [
            meta("process_labels", self.cann, 0, "labels", "CPU"),
            meta("process_sort_index", self.cann, 0, "sort_index", SORT_INDEX["CANN"]),
            meta("process_name", self.overlap, 0, "name", "Overlap Analysis"),
        ]
        for tid, name in enumerate(("Computing", "Communication", "Communication(Not Overlapped)", "Free")):
            out.append(meta("thread_name", self.overlap, tid, "name", name))
        out += [
            meta("process_labels", self.overlap, 0, "labels", "NPU"),
            meta("process_sort_index", self.overlap, 0, "sort_index", SORT_INDEX["Overlap Analysis"]),
        ]
        return out

    def cann_events(self) -> list[dict[str, Any]]:
        """CANN API, device tasks, HostToDevice flows, overlap spans and memory counters, by time."""
        timed: list[tuple[int, int, dict[str, Any]]] = []
        seq = 0

        def add(ts: int, ev: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            timed.append((ts, seq, ev))

        conn = 900
        assign_task_ids(self.run)
        for step in self.run.steps:
            for op in step.ops:
                for k in op.kernels:
                    conn += 1
                    deq_ts, deq_dur = self._dequeue_ts(k)
                    api = op.names.npu_api
                    if k.kind == "kernel":
                        add(
                            deq_ts,
                            self._api(f"AscendCL@{api}", deq_ts + 200, deq_dur // 2, "ACL_NN", "acl", api, "0", conn),
                        )
                        launch_ts = deq_ts + 200 + deq_dur // 2 + 150
                        add(
                            launch_ts,
                            self._api(
                                "Node@launch", launch_ts, deq_dur // 3, "launch", "node", "0", k.names.npu_kernel, conn
                            ),
                        )
                    else:
                        launch_ts = deq_ts + 300
                        add(
                            launch_ts,
                            self._api(f"AscendCL@{api}", launch_ts, deq_dur // 2, "ACL_RTS", "acl", api, "0", conn),
                        )
                    add(
                        launch_ts,
                        {
                            "name": f"HostToDevice{conn}",
                            "ph": "s",
                            "cat": "HostToDevice",
                            "id": str(conn),
                            "pid": self.cann,
                            "tid": self.acl_tid,
                            "ts": self.ts(launch_ts),
                        },
                    )
                    mix = k.names.npu_core.startswith("MIX")
                    if k.kind == "kernel":
                        name, task_type = k.names.npu_kernel, k.names.npu_core
                    else:
                        name, task_type = "MEMCPY_ASYNC", "PCIE_DMA_SQE"
                    add(
                        k.start,
                        {
                            "name": name,
                            "pid": self.hw,
                            "tid": STREAM,
                            "ts": self.ts(k.start),
                            "dur": k.dur / 1000,
                            "args": {
                                "Model Id": UINT32_MAX,
                                "Task Type": task_type,
                                "Physic Stream Id": STREAM,
                                "Task Id": k.task_id,
                                "Batch Id": 0,
                                "Subtask Id": 0 if mix else UINT32_MAX,
                                "connection_id": conn,
                            },
                            "ph": "X",
                        },
                    )
                    add(
                        k.start,
                        {
                            "name": f"HostToDevice{conn}",
                            "ph": "f",
                            "id": str(conn),
                            "ts": self.ts(k.start),
                            "cat": "HostToDevice",
                            "pid": self.hw,
                            "tid": STREAM,
                            "bp": "e",
                        },
                    )
                if op.sync:
                    conn += 1
                    add(
                        op.sync_ts,
                        self._api(
                            "AscendCL@aclrtSynchronizeStream",
                            op.sync_ts,
                            op.sync_dur,
                            "ACL_RTS",
                            "acl",
                            "aclrtSynchronizeStream",
                            "0",
                            conn,
                            tid=self.pid,
                        ),
                    )
        kernels = [k for s in self.run.steps for k in s.kernels]
        busy = busy_intervals(kernels)
        for i, (a, b) in enumerate(busy):
            add(
                a,
                {
                    "name": "Computing",
                    "pid": self.overlap,
                    "tid": 0,
                    "ts": self.ts(a),
                    "dur": (b - a) / 1000,
                    "ph": "X",
                },
            )
            if i + 1 < len(busy):
                nxt = busy[i + 1][0]
                add(
                    b,
                    {
                        "name": "Free",
                        "pid": self.overlap,
                        "tid": 3,
                        "ts": self.ts(b),
                        "dur": (nxt - b) / 1000,
                        "ph": "X",
                    },
                )
        for t, app in app_samples(self.run):
            kb = float(app // 1024)
            dkb = float((app + DEVICE_OVERHEAD) // 1024)
            for name, val, dt in (
                ("APP/DDR", 0.0, 0),
                ("APP/HBM", kb, 0),
                ("APP/Memory", kb, 0),
                ("Device/DDR", 0.0, 234_000),
                ("Device/HBM", dkb, 234_000),
                ("Device/Memory", dkb, 234_000),
            ):
                add(
                    t + dt,
                    {"name": name, "ts": self.ts(t + dt), "pid": self.mem, "tid": 0, "args": {"KB": val}, "ph": "C"},
                )
        timed.sort(key=lambda r: (r[0], r[1]))
        return [r[2] for r in timed]

    def _api(
        self,
        name: str,
        ts: int,
        dur: int,
        mode: str,
        level: str,
        api_id: str,
        item: str,
        conn: int,
        tid: int | None = None,
    ) -> dict[str, Any]:
        thread = self.acl_tid if tid is None else tid
        return {
            "name": name,
            "pid": self.cann,
            "tid": thread,
            "ts": self.ts(ts),
            "dur": dur / 1000,
            "args": {
                "Thread Id": thread,
                "Mode": mode,
                "level": level,
                "id": api_id,
                "item_id": item,
                "connection_id": conn,
            },
            "ph": "X",
        }

    def torch_to_npu(self) -> list[dict[str, Any]]:
        """`async_npu` flows from each host op to its device tasks (id = task start in ns)."""
        out = []
        for step in self.run.steps:
            for op in step.ops:
                for k in op.kernels:
                    fid = self.run.abs_ns(k.start)
                    out.append(
                        {
                            "ph": "s",
                            "bp": "e",
                            "name": "torch_to_npu",
                            "id": fid,
                            "pid": self.pid,
                            "tid": self.pid,
                            "ts": self.ts(op.ts),
                            "cat": "async_npu",
                        }
                    )
                    out.append(
                        {
                            "ph": "f",
                            "bp": "e",
                            "name": "torch_to_npu",
                            "id": fid,
                            "pid": self.hw,
                            "tid": STREAM,
                            "ts": self.ts(k.start),
                            "cat": "async_npu",
                        }
                    )
        return out


def trace_view(run: Run) -> str:
    """The merged timeline: a JSON array, Python `json.dumps` spacing."""
    tv = _TraceView(run)
    events = tv.torch_events() + tv.cann_metadata() + tv.cann_events() + tv.torch_to_npu()
    return json.dumps(events)


def profiler_info(run: Run) -> str:
    """`profiler_info_0.json` as the Jan-2025 torch_npu writes it (indent 4)."""
    start_ns = run.abs_ns(run.start)
    end_ns = run.abs_ns(run.end)
    return profiler_info_text(steps=len(run.steps), profile_memory=True, monotonic=172_163_581_670_080,
                              end_ns=end_ns, duration_ns=end_ns - start_ns, rank=0)


def profiler_info_text(*, steps: int, profile_memory: bool, monotonic: int, end_ns: int, duration_ns: int,
                       rank: int) -> str:
    """A `profiler_info_{rank}.json` of a Level1 text export: the profiler's config and its clock pair."""
    info = {
        "config": {
            "common_config": {
                "activities": ["ProfilerActivity.CPU", "ProfilerActivity.NPU"],
                "schedule": {"wait": 0, "active": steps, "warmup": 1, "repeat": 1, "skip_first": 0},
                "record_shapes": True,
                "profile_memory": profile_memory,
                "with_stack": False,
                "with_flops": False,
                "with_modules": False,
            },
            "experimental_config": {
                "_profiler_level": "Level1",
                "_aic_metrics": "ACL_AICORE_PIPE_UTILIZATION",
                "_l2_cache": False,
                "_msprof_tx": False,
                "_data_simplification": True,
                "record_op_args": False,
                "_export_type": "text",
                "_op_attr": False,
                "_gc_detect_threshold": None,
            },
        },
        "start_info": {
            "syscnt_enable": True,
            "freq": 100,
            "start_cnt": monotonic // 10,
            "start_monotonic": monotonic,
        },
        "end_info": {
            "collectionTimeEnd": end_ns,
            "MonotonicTimeEnd": monotonic + duration_ns,
        },
        "rank_id": rank,
    }
    return json.dumps(info, indent=4)
