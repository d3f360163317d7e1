"""One Kineto trace per rank of a simulated cluster, in the layout of `kineto.py` (modern Kineto text).

Collectives follow PyTorch + NCCL as in the real `kineto/hta/nccl_parser_config/nccl_data.json.gz`
and PyTorch's `saveNcclMeta`: a `record_param_comms` cpu_op carrying the collective args
(`Collective name`, `In msg nelems`, `Out msg nelems`, `Group size`, `dtype`, `Process Group Name`,
`Process Group Ranks` (a string, cut after 30 ranks as PyTorch does), `Rank`, `Seq`, and `Dst Rank` /
`Src Rank` on send / recv), a `nccl:*` user_annotation inside it, the `cudaLaunchKernel`, and the NCCL
kernel on the communication stream with the same collective args, under a `nccl:*` gpu_user_annotation.
"""

from __future__ import annotations

import json

from .cluster import ClusterRun, Collective, Task
from .kineto import _flow, _meta, _x, profiler_span_event, window_end_event

COMPUTE_STREAM = 7
COMM_STREAM = 20
TRUNCATE_RANKS = 30  # PyTorch's kTruncatLength for "Process Group Ranks"
KERNEL_NAMES = {
    "gemm": "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_warpgroupsize2x1x1_execute_segment_k_off_"
    "kernel__5x_cublas",
    "elementwise": "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
    "std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, std::array<char*, 3ul>)",
    "norm": "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16, float>"
    "(int, float, c10::BFloat16 const*, c10::BFloat16 const*, c10::BFloat16 const*, float*, float*, "
    "c10::BFloat16*)",
}
OP_NAMES = {"gemm": "aten::mm", "elementwise": "aten::add_", "norm": "aten::native_layer_norm"}
NCCL_KERNEL = {
    "allreduce": "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
    "send": "ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)",
    "recv": "ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)",
}
ANNOTATION = {"allreduce": "nccl:all_reduce", "send": "nccl:send", "recv": "nccl:recv"}


def group_ranks_text(n: int) -> str:
    """`Process Group Ranks` as PyTorch's `format_list` writes it (truncated past 30 ranks)."""
    if n > TRUNCATE_RANKS:
        return "[" + ", ".join(str(r) for r in range(TRUNCATE_RANKS)) + ", ...]"
    return "[" + ", ".join(str(r) for r in range(n)) + "]"


def pid_of(rank: int) -> int:
    return 41_000 + 17 * rank


def _j(x: object) -> str:
    return json.dumps(x)


class _RankWriter:
    def __init__(self, run: ClusterRun, rank: int) -> None:
        self.run = run
        self.spec = run.spec
        self.rank = rank
        self.pid = pid_of(rank)
        self.gpu = rank % self.spec.ranks_per_node
        self.ev_idx = 0
        self.external = 0
        self.corr = 1000
        self.out: list[tuple[int, int, str]] = []

    def add(self, ts: int, order: int, text: str) -> None:
        self.out.append((ts, order, text))

    def header(self) -> str:
        n = self.spec.ranks
        dist = {
            "backend": "nccl",
            "rank": self.rank,
            "world_size": n,
            "pg_count": 1,
            "pg_config": [
                {
                    "pg_name": "0",
                    "pg_desc": "default_pg",
                    "backend_config": "cuda:nccl",
                    "pg_size": n,
                    "ranks": list(range(n)),
                }
            ],
            "nccl_version": "2.27.3",
        }
        return (
            "\n  {\n"
            '    "schemaVersion": 1,\n'
            '    "deviceProperties": [\n'
            "    {\n"
            f'      "id": {self.gpu}, "name": "NVIDIA H100 80GB HBM3", "totalGlobalMem": 85045395456,\n'
            '      "computeMajor": 9, "computeMinor": 0,\n'
            '      "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048,\n'
            '      "regsPerBlock": 65536, "warpSize": 32,\n'
            '      "sharedMemPerBlock": 49152, "numSms": 132\n'
            '    , "regsPerMultiprocessor": 65536, "sharedMemPerBlockOptin": 232448, '
            '"sharedMemPerMultiprocessor": 233472\n'
            "    }\n"
            "    ],\n"
            '      "cupti_version": 26,\n'
            '      "cuda_runtime_version": 12080,\n'
            f'      "distributedInfo": {_j(dist)},\n'
            '      "record_shapes": 1,\n'
            '      "cuda_driver_version": 13000,\n'
            f'      "trace_id": "{self.run.spec.seed:016X}{self.rank:016X}",\n'
            '  "displayTimeUnit": "ms",\n'
            f'  "baseTimeNanoseconds": {self.spec.base_time_ns},\n'
            '  "traceEvents": [\n'
        )

    def _next_external(self) -> int:
        self.external += 1
        return self.external

    def _cpu(self, cat: str, name: str, ts: int, dur: int, extra: str = "") -> tuple[str, int]:
        ext = self._next_external()
        args = f'"External id": {ext},"Record function id": 0, {extra}"Ev Idx": {self.ev_idx}'
        self.ev_idx += 1
        return _x(cat, name, self.pid, self.pid, ts, dur, args), ext

    def comm_args(self, task: Task) -> str:
        """The collective args of `record_param_comms` and of its NCCL kernel, in one fixed order."""
        coll = task.coll
        assert coll is not None
        n = self.spec.ranks
        nelems = coll.nbytes // self.spec.dtype_bytes
        name = "allreduce" if coll.kind == "allreduce" else task.role
        parts = [
            f'"Collective name": "{name}"',
            f'"In msg nelems": {nelems}',
            f'"Out msg nelems": {nelems}',
            f'"Group size": {n}',
            '"dtype": "BFloat16"',
            '"In split size": "[]"',
            '"Out split size": "[]"',
            '"Process Group Name": "0"',
            '"Process Group Description": "default_pg"',
            f'"Process Group Ranks": "{group_ranks_text(n)}"',
        ]
        peer = coll.dst if task.role == "send" else coll.src
        parts.append(f'"Rank": {peer if task.role else self.rank}')
        if task.role == "send":
            parts.append(f'"Dst Rank": {coll.dst}')
        elif task.role == "recv":
            parts.append(f'"Src Rank": {coll.src}')
        parts.append(f'"Seq": {task.seq}')
        return ", ".join(parts)

    def step_events(self) -> None:
        for step in self.run.steps[self.rank]:
            text, _ = self._cpu("user_annotation", f"ProfilerStep#{step.number}", step.ts, step.dur)
            self.add(step.ts, 0, text)
            for task in step.tasks:
                if task.coll is None:
                    self.compute(task)
                else:
                    self.collective(task)
            self.sync(step.sync_ts, step.sync_dur)

    def _launch(self, ext: int, host_ts: int, stream: int, task_start: int) -> int:
        self.corr += 1
        ts = host_ts + 3_000
        args = f'"External id": {ext},      "cbid": 211, "correlation": {self.corr}'
        self.add(ts, 3, _x("cuda_runtime", "cudaLaunchKernel", self.pid, self.pid, ts, 5_000, args))
        self.add(ts, 4, _flow("s", self.corr, self.pid, self.pid, ts))
        self.add(task_start, 6, _flow("f", self.corr, self.gpu, stream, task_start))
        return self.corr

    def _kernel(self, name: str, ext: int, corr: int, stream: int, task: Task, extra: str = "") -> str:
        grid, block, regs, smem = (
            ((132, 1, 1), (384, 1, 1), 168, 213_000)
            if stream == COMPUTE_STREAM
            else (
                (16, 1, 1),
                (640, 1, 1),
                96,
                87_568,
            )
        )
        per_sm = grid[0] / 132
        args = (
            f'"External id": {ext},      "queued": 0, "device": {self.gpu}, "context": 1,      '
            f'"stream": {stream}, "correlation": {corr},      '
            f'"registers per thread": {regs},      "shared memory": {smem},      '
            f'"blocks per SM": {per_sm:f},      "warps per SM": {per_sm * block[0] / 32:f},      '
            f'"grid": [{grid[0]}, {grid[1]}, {grid[2]}],      '
            f'"block": [{block[0]}, {block[1]}, {block[2]}],      '
            f'"est. achieved occupancy %": 0{extra}'
        )
        return _x("kernel", name, self.gpu, stream, task.start, task.dur, args)

    def compute(self, task: Task) -> None:
        text, ext = self._cpu("cpu_op", OP_NAMES[task.family], task.host_ts, 11_000)
        self.add(task.host_ts, 1, text)
        corr = self._launch(ext, task.host_ts, COMPUTE_STREAM, task.start)
        self.add(task.start, 5, self._kernel(KERNEL_NAMES[task.family], ext, corr, COMPUTE_STREAM, task))

    def collective(self, task: Task) -> None:
        key = "allreduce" if task.role == "" else task.role
        comm = self.comm_args(task)
        text, ext = self._cpu("cpu_op", "record_param_comms", task.host_ts, 24_000, comm + ", ")
        self.add(task.host_ts, 1, text)
        inner_ts = task.host_ts + 1_000
        text, _ = self._cpu("user_annotation", ANNOTATION[key], inner_ts, 21_000)
        self.add(inner_ts, 2, text)
        corr = self._launch(ext, inner_ts, COMM_STREAM, task.start)
        self.add(task.start, 5, self._kernel(NCCL_KERNEL[key], ext, corr, COMM_STREAM, task, ",      " + comm))
        gpu_ext = self._next_external()
        self.add(
            task.start - 1,
            4,
            _x(
                "gpu_user_annotation",
                ANNOTATION[key],
                self.gpu,
                COMM_STREAM,
                task.start - 1,
                task.dur + 2,
                f'"External id": {gpu_ext}',
            ),
        )

    def sync(self, ts: int, dur: int) -> None:
        text, ext = self._cpu("cpu_op", "aten::_local_scalar_dense", ts, dur)
        self.add(ts, 1, text)
        self.corr += 1
        args = f'"External id": {ext},      "cbid": 131, "correlation": {self.corr}'
        self.add(ts, 3, _x("cuda_runtime", "cudaStreamSynchronize", self.pid, self.pid, ts + 1_000, dur - 2_000, args))

    def metadata(self) -> list[str]:
        ts = self.run.start + 88_117
        pid, gpu = self.pid, self.gpu
        out = [
            _meta("process_name", ts, pid, 0, "name", "python3"),
            _meta("process_labels", ts, pid, 0, "labels", "CPU"),
            _meta("process_sort_index", ts, pid, 0, "sort_index", pid),
            _meta("process_name", ts, gpu, 0, "name", "python3"),
            _meta("process_labels", ts, gpu, 0, "labels", f"GPU {gpu}"),
            _meta("process_sort_index", ts, gpu, 0, "sort_index", 5000000 + gpu),
        ]
        for stream in (COMPUTE_STREAM, COMM_STREAM):
            out.append(_meta("thread_name", ts, gpu, stream, "name", f"stream {stream} "))
            out.append(_meta("thread_sort_index", ts, gpu, stream, "sort_index", stream))
        out.append(_meta("thread_name", ts, pid, pid, "name", f"thread {pid} (python3)"))
        out.append(_meta("thread_sort_index", ts, pid, pid, "sort_index", pid))
        out.append(profiler_span_event(self.run.start, self.run.end))
        out.append(window_end_event(self.run.end))
        return out

    def text(self, trace_name: str) -> str:
        self.step_events()
        self.out.sort(key=lambda r: (r[0], r[1]))
        events = [t for _, _, t in self.out] + self.metadata()
        return self.header() + ",\n".join(events) + f'\n  ],\n  "traceName": {_j(trace_name)}\n}}'


def trace_name(name: str, rank: int) -> str:
    return f"{name}_rank{rank}.pt.trace.json"


def rank_trace(run: ClusterRun, rank: int) -> str:
    """The trace file text of one rank."""
    return _RankWriter(run, rank).text(trace_name(run.spec.name, rank))


def collective_label(coll: Collective) -> str:
    """How the truth names a collective: `allreduce` or `send/recv src->dst`."""
    return "allreduce" if coll.kind == "allreduce" else f"send/recv {coll.src}->{coll.dst}"
