"""Write a simulated run as a modern Kineto (PyTorch profiler) Chrome-trace JSON.

The text layout follows pytorch/kineto `output_json.cpp` as seen in the real corpus file
`kineto/nano-vllm/decode_gpu_0.json`: object form, relative `ts` formatted `{us}.{ns:03}` next
to `baseTimeNanoseconds`, one event per block, keys in Kineto's order.
"""

from __future__ import annotations

import hashlib
import json

from .kernels import HostOp, Kernel, strides_of
from .timeline import Run

STREAM = 7
GPU_PID = 0
CBID = {"cudaLaunchKernel": 211, "cudaMemcpyAsync": 41, "cudaStreamSynchronize": 131}
MEMCPY_NAME = {"memcpy_h2d": "Memcpy HtoD (Pinned -> Device)", "memcpy_d2h": "Memcpy DtoH (Device -> Pinned)"}


def fmt_ts(ns: int) -> str:
    """Kineto's `fmtTs`: exact ns as a microsecond string with three decimals."""
    return f"{ns // 1000}.{ns % 1000:03d}"


def fmt_double(x: float) -> str:
    """fmt's `{}` for a double: shortest round-trip form, integral values without a point."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _j(x: object) -> str:
    return json.dumps(x)


def _device_properties(run: Run) -> str:
    dev = run.spec.device
    return (
        "    {\n"
        f'      "id": 0, "name": {_j(dev.name)}, "totalGlobalMem": {dev.memory_bytes},\n'
        '      "computeMajor": 9, "computeMinor": 0,\n'
        '      "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048,\n'
        '      "regsPerBlock": 65536, "warpSize": 32,\n'
        '      "sharedMemPerBlock": 49152, "numSms": 132\n'
        '    , "regsPerMultiprocessor": 65536, "sharedMemPerBlockOptin": 232448, '
        '"sharedMemPerMultiprocessor": 233472\n'
        "    }"
    )


def trace_id(run: Run) -> str:
    """A stable 32-hex-digit id derived from the run's name and seed."""
    digest = hashlib.sha256(f"{run.spec.name}:{run.spec.seed}".encode()).hexdigest()
    return digest[:32].upper()


def _header(run: Run) -> str:
    dist = {
        "backend": "nccl",
        "rank": 0,
        "world_size": 1,
        "pg_count": 1,
        "pg_config": [
            {"pg_name": "0", "pg_desc": "default_pg", "backend_config": "cuda:nccl", "pg_size": 1, "ranks": [0]}
        ],
        "nccl_version": "2.27.3",
    }
    return (
        "\n  {\n"
        '    "schemaVersion": 1,\n'
        '    "deviceProperties": [\n'
        f"{_device_properties(run)}\n"
        "    ],\n"
        '      "cupti_version": 26,\n'
        '      "cuda_runtime_version": 12080,\n'
        f'      "distributedInfo": {_j(dist)},\n'
        '      "record_shapes": 1,\n'
        '      "cuda_driver_version": 13000,\n'
        '      "profile_memory": 1,\n'
        f'      "trace_id": "{trace_id(run)}",\n'
        '  "displayTimeUnit": "ms",\n'
        f'  "baseTimeNanoseconds": {run.spec.base_time_ns},\n'
        '  "traceEvents": [\n'
    )


def _x(cat: str, name: str, pid: object, tid: object, ts: int, dur: int, args: str) -> str:
    return (
        "  {\n"
        f'    "ph": "X", "cat": "{cat}", "name": {_j(name)}, "pid": {pid}, "tid": {tid},\n'
        f'    "ts": {fmt_ts(ts)}, "dur": {fmt_ts(dur)},\n'
        '    "args": {\n'
        f"      {args}\n"
        "    }\n"
        "  }"
    )


def _flow(ph: str, corr: int, pid: int, tid: int, ts: int) -> str:
    tail = ', "bp": "e"' if ph == "f" else ""
    return (
        "  {\n"
        f'    "ph": "{ph}", "id": {corr}, "pid": {pid}, "tid": {tid}, "ts": {fmt_ts(ts)},\n'
        f'    "cat": "ac2g", "name": "ac2g"{tail}\n'
        "  }"
    )


def _meta(name: str, ts: int, pid: object, tid: object, key: str, value: object) -> str:
    return (
        "  {\n"
        f'    "name": "{name}", "ph": "M", "ts": {fmt_ts(ts)}, "pid": {pid}, "tid": {tid},\n'
        '    "args": {\n'
        f'      "{key}": {_j(value)}\n'
        "    }\n"
        "  }"
    )


class _KinetoWriter:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.pid = run.spec.pid
        self.vendor = run.spec.device.vendor
        self.ev_idx = 0
        self.external = 0

    def cpu_events(self) -> list[str]:
        """user_annotation and cpu_op events, parents before children, with External ids."""
        rows: list[tuple[int, int, int, str, str, HostOp | None]] = []
        for step in self.run.steps:
            rows.append((step.ts, -step.dur, 0, "user_annotation", f"ProfilerStep#{step.number}", None))
            if self.run.spec.annotations == "vllm":
                rows.append((step.ann_ts, -step.ann_dur, 1, "user_annotation", step.plan.annotation(), None))
            for op in step.ops:
                rows.append((op.ts, -op.dur, 2, "cpu_op", op.name(self.vendor), op))
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        out = []
        for ts, neg_dur, _, cat, name, op in rows:
            self.external += 1
            ext = self.external
            if op is not None:
                op.external_id = ext
                args = (
                    f'"External id": {ext},"Record function id": 0, '
                    f'"Concrete Inputs": {_j(op.concrete)}, "Input type": {_j(op.types)}, '
                    f'"Input Strides": {_j(strides_of(op))}, "Input Dims": {_j(op.dims)}, '
                    f'"Ev Idx": {self.ev_idx}'
                )
            else:
                args = f'"External id": {ext},"Record function id": 0, "Ev Idx": {self.ev_idx}'
            self.ev_idx += 1
            out.append(_x(cat, name, self.pid, self.pid, ts, -neg_dur, args))
        return out

    def memory_events(self) -> list[str]:
        """`[memory]` instant events of the CUDA caching allocator."""
        out = []
        for ev in self.run.mem_events:
            out.append(
                "  {\n"
                '    "ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]",\n'
                f'    "pid": {self.pid}, "tid": {self.pid},\n'
                f'    "ts": {fmt_ts(ev.ts)},\n'
                '    "args": {\n'
                f'      "Total Reserved": {ev.total_reserved}, "Total Allocated": {ev.total_allocated}, '
                f'"Bytes": {ev.size}, "Device Id": 0, "Device Type": 1, "Addr": {ev.addr}, '
                f'"finished": false, "Ev Idx": {self.ev_idx}\n'
                "    }\n"
                "  }"
            )
            self.ev_idx += 1
        return out

    def gpu_events(self) -> list[str]:
        """Runtime calls, kernels and memcpys with their ac2g flows; step GPU annotations."""
        out: list[str] = []
        corr = 1000
        for step in self.run.steps:
            for op in step.ops:
                for k in op.kernels:
                    corr += 1
                    k.correlation = corr
                    api = "cudaLaunchKernel" if k.kind == "kernel" else "cudaMemcpyAsync"
                    out.append(self._runtime(api, op.external_id, corr, k.launch_ts, k.launch_dur))
                    out.append(_flow("s", corr, self.pid, self.pid, k.launch_ts))
                    out.append(self._device(op, k))
                    out.append(_flow("f", corr, GPU_PID, STREAM, k.start))
                if op.sync:
                    corr += 1
                    op.sync_correlation = corr
                    out.append(self._runtime("cudaStreamSynchronize", op.external_id, corr, op.sync_ts, op.sync_dur))
                    out.append(_flow("s", corr, self.pid, self.pid, op.sync_ts))
            if self.run.spec.annotations == "vllm":
                ks = step.kernels
                first = ks[0].start - 1
                last = max(k.start + k.dur for k in ks) + 1
                self.external += 1
                out.append(
                    _x(
                        "gpu_user_annotation",
                        step.plan.annotation(),
                        GPU_PID,
                        STREAM,
                        first,
                        last - first,
                        f'"External id": {self.external}',
                    )
                )
        return out

    def _runtime(self, api: str, ext: int, corr: int, ts: int, dur: int) -> str:
        args = f'"External id": {ext},      "cbid": {CBID[api]}, "correlation": {corr}'
        return _x("cuda_runtime", api, self.pid, self.pid, ts, dur, args)

    def _device(self, op: HostOp, k: Kernel) -> str:
        if k.kind != "kernel":
            bw = fmt_double(k.bytes / k.dur) if k.dur else "0"
            args = (
                f'"External id": {op.external_id},      "device": 0, "context": 1,      '
                f'"stream": {STREAM}, "correlation": {k.correlation},      '
                f'"bytes": {int(k.bytes)}, "memory bandwidth (GB/s)": {bw}'
            )
            return _x("gpu_memcpy", MEMCPY_NAME[k.kind], GPU_PID, STREAM, k.start, k.dur, args)
        threads = k.block[0] * k.block[1] * k.block[2]
        blocks = k.grid[0] * k.grid[1] * k.grid[2]
        per_sm = blocks / 132
        warps = per_sm * threads / 32
        occupancy = min(100, int(warps / 64 * 100))
        regs = 128 if k.family in ("gemm", "attention") else 32
        smem = 98304 if k.family in ("gemm", "attention") else 0
        args = (
            f'"External id": {op.external_id},      "queued": 0, "device": 0, "context": 1,      '
            f'"stream": {STREAM}, "correlation": {k.correlation},      '
            f'"registers per thread": {regs},      "shared memory": {smem},      '
            f'"blocks per SM": {per_sm:f},      "warps per SM": {warps:f},      '
            f'"grid": [{k.grid[0]}, {k.grid[1]}, {k.grid[2]}],      '
            f'"block": [{k.block[0]}, {k.block[1]}, {k.block[2]}],      '
            f'"est. achieved occupancy %": {occupancy}'
        )
        return _x("kernel", k.name(self.vendor), GPU_PID, STREAM, k.start, k.dur, args)

    def metadata(self) -> list[str]:
        """Process/thread `M` events, the profiler span and the window markers."""
        run, pid = self.run, self.pid
        ts = run.start + 88_117
        out = [
            _meta("process_name", ts, pid, 0, "name", "python3"),
            _meta("process_labels", ts, pid, 0, "labels", "CPU"),
            _meta("process_sort_index", ts, pid, 0, "sort_index", pid),
            _meta("process_name", ts, GPU_PID, 0, "name", "python3"),
            _meta("process_labels", ts, GPU_PID, 0, "labels", "GPU 0"),
            _meta("process_sort_index", ts, GPU_PID, 0, "sort_index", 5000000),
            _meta("thread_name", ts, GPU_PID, STREAM, "name", f"stream {STREAM} "),
            _meta("thread_sort_index", ts, GPU_PID, STREAM, "sort_index", STREAM),
            _meta("thread_name", ts, pid, pid, "name", f"thread {pid} (python3)"),
            _meta("thread_sort_index", ts, pid, pid, "sort_index", pid),
        ]
        out.append(profiler_span_event(run.start, run.end))
        out.append(
            "  {\n"
            f'    "name": "process_sort_index", "ph": "M", "ts": {fmt_ts(run.start)},\n'
            '    "pid": "Spans", "tid": 0,\n'
            '    "args": {\n'
            '      "sort_index": 536870912\n'
            "    }\n"
            "  }"
        )
        out.append(
            "  {\n"
            '    "name": "Iteration Start: PyTorch Profiler", "ph": "i", "s": "g",\n'
            f'    "pid": "Traces", "tid": "Trace PyTorch Profiler", "ts": {fmt_ts(run.start)}\n'
            "  }"
        )
        out.append(window_end_event(run.end))
        return out


def profiler_span_event(start: int, end: int) -> str:
    """The profiler's own span (`PyTorch Profiler (0)`), ending 20 µs before the record window as Kineto's does."""
    return (
        "  {\n"
        f'    "ph": "X", "cat": "Trace", "ts": {fmt_ts(start)}, "dur": {fmt_ts(end - start - 20_000)},\n'
        '    "pid": "Spans", "tid": "PyTorch Profiler",\n'
        '    "name": "PyTorch Profiler (0)",\n'
        '    "args": {\n'
        '      "Op count": 0\n'
        "    }\n"
        "  }"
    )


def window_end_event(end: int) -> str:
    """The `Record Window End` instant that closes a Kineto trace."""
    return (
        "  {\n"
        '    "name": "Record Window End", "ph": "i", "s": "g",\n'
        f'    "pid": "", "tid": "", "ts": {fmt_ts(end)}\n'
        "  }"
    )


def kineto_text(run: Run, trace_name: str) -> str:
    """The complete trace file text."""
    w = _KinetoWriter(run)
    events = w.cpu_events() + w.memory_events() + w.gpu_events() + w.metadata()
    return _header(run) + ",\n".join(events) + f'\n  ],\n  "traceName": {_j(trace_name)}\n}}'
