"""The canonical trace model: the tables every parser produces and every analysis reads.

This module is the contract between `parsers` and `traceview`. Each table is a pyarrow schema
whose fields carry a one-line description in their metadata; `docs/model.md` is generated from
it (`python -m traceview.parsers.model`), and a test checks the two agree.
"""

from __future__ import annotations

import sys

import pyarrow as pa

MODEL_VERSION = "4"

SLICE_KINDS = (
    "cpu_op",
    "python",
    "annotation",
    "runtime",
    "driver",
    "kernel",
    "memcpy",
    "memset",
    "comm",
    "sync",
    "step",
    "other",
)

# Ranks and world sizes are int32 columns: a value past this is no rank.
MAX_RANK = 2**31 - 1

DEVICE_TYPES = ("cpu", "cuda", "rocm", "npu", "mtia", "xpu", "other")

COLLECTIVE_OPS = (
    "all_reduce",
    "all_gather",
    "reduce_scatter",
    "all_to_all",
    "broadcast",
    "reduce",
    "send",
    "recv",
    "barrier",
    "other",
)


def _field(name: str, type_: pa.DataType, doc: str) -> pa.Field:
    return pa.field(name, type_, metadata={"doc": doc})


def _common() -> list[pa.Field]:
    return [
        _field("trace_id", pa.string(), "Id of the ingested trace file or rank (see `traces`)."),
        _field("rank", pa.int32(), "Distributed rank (0 when the trace does not say)."),
    ]


TRACES = pa.schema(
    [
        _field("trace_id", pa.string(), "Short content hash of the source file; unique per store."),
        _field("source_path", pa.string(), "Path of the source file as given to ingest."),
        _field("format", pa.string(), "Detected input format, e.g. `kineto`, `chrome`."),
        _field("rank", pa.int32(), "Distributed rank (`distributedInfo.rank`, else 0)."),
        _field("world_size", pa.int32(), "Distributed world size where recorded, else null."),
        _field("host", pa.string(), "Host name where recorded, else null."),
        _field("device_names", pa.list_(pa.string()), "Accelerator names from the trace metadata."),
        _field("tool_versions", pa.string(), "JSON object of tool/runtime versions found."),
        _field("base_time_ns", pa.int64(), "`baseTimeNanoseconds` added to relative timestamps (0 if absent)."),
        _field("event_count", pa.int64(), "Number of events read from the file."),
        _field("slice_count", pa.int64(), "Rows this trace contributes to `slices`."),
        _field("warnings", pa.list_(pa.string()), "Data-quality warnings raised while ingesting."),
    ]
)

SLICES = pa.schema(
    _common()
    + [
        _field("slice_id", pa.int64(), "Id of the slice, unique within its trace (event index in the file)."),
        _field("ts_ns", pa.int64(), "Start time, integer nanoseconds, exact."),
        _field("dur_ns", pa.int64(), "Duration, integer nanoseconds, exact."),
        _field("name", pa.string(), "Event name."),
        _field("cat", pa.string(), "Category as written by the profiler."),
        _field("kind", pa.string(), "Normalised kind: " + ", ".join(SLICE_KINDS) + "."),
        _field("device_type", pa.string(), "Where it ran: " + ", ".join(DEVICE_TYPES) + "."),
        _field("device_id", pa.int32(), "Device index for device work, null for host work."),
        _field("pid", pa.string(), "Process id as written (device id for device events)."),
        _field("tid", pa.string(), "Thread id as written (stream for device events)."),
        _field("stream", pa.int64(), "Device stream or queue, null for host work."),
        _field("core", pa.string(), "Accelerator core type on Ascend (AI_CORE, AI_VECTOR_CORE, MIX_AIC, AI_CPU, ...)."),
        _field("depth", pa.int32(), "Nesting depth on its track (pid, tid); 0 at the top."),
        _field("parent_id", pa.int64(), "slice_id of the enclosing slice on the same track, or null."),
        _field("overlaps_parent", pa.bool_(), "True when it starts inside its parent but ends after it."),
        _field("self_ns", pa.int64(), "Duration minus the time of its direct children on the track."),
        _field("correlation", pa.int64(), "Links a host launch to the device work it caused."),
        _field("external_id", pa.int64(), "Framework op id (`External id`) linking ops, launches and kernels."),
        _field("step", pa.int64(), "ProfilerStep#N the slice falls in (host: by time; device: via correlation)."),
        _field("input_dims", pa.string(), "JSON of `Input Dims` where recorded."),
        _field("input_types", pa.string(), "JSON of `Input type` where recorded."),
        _field("args", pa.string(), "The event's args as a JSON object."),
    ]
)

MEMORY = pa.schema(
    _common()
    + [
        _field("ts_ns", pa.int64(), "Time of the allocation or free, ns."),
        _field("device_type", pa.string(), "cpu, cuda, rocm, npu, ..."),
        _field("device_id", pa.int32(), "Device index (-1 for host memory)."),
        _field("addr", pa.int64(), "Address of the block, where recorded."),
        _field("bytes", pa.int64(), "Bytes allocated (positive) or freed (negative)."),
        _field("total_allocated", pa.int64(), "Allocated bytes on the device after this event."),
        _field("total_reserved", pa.int64(), "Reserved bytes on the device after this event."),
        _field("pid", pa.string(), "Process id as written."),
        _field("tid", pa.string(), "Thread id as written."),
    ]
)

COUNTERS = pa.schema(
    _common()
    + [
        _field("ts_ns", pa.int64(), "Sample time, ns."),
        _field("pid", pa.string(), "Process (track) id as written."),
        _field("name", pa.string(), "Counter name."),
        _field(
            "series",
            pa.string(),
            "Series within the counter: the args key (Ascend byte series: their unit), with the event's id keys"
            " (`value acc_id=3`).",
        ),
        _field("value", pa.float64(), "Sample value, in `unit`."),
        _field(
            "unit",
            pa.string(),
            "Unit of `value`: `bytes`, `bytes/s` (the only bandwidth unit), `%`, another unit as written"
            " (`MHz`, `W`), or null when the trace gives none.",
        ),
    ]
)

FLOWS = pa.schema(
    _common()
    + [
        _field("kind", pa.string(), "Flow category: ac2g, fwdbwd, async_gpu, ..."),
        _field("flow_id", pa.string(), "Flow id as written."),
        _field("src_slice_id", pa.int64(), "slice_id of the slice the flow starts at (null if none)."),
        _field("dst_slice_id", pa.int64(), "slice_id of the slice the flow ends at (null if none)."),
    ]
)

INSTANTS = pa.schema(
    _common()
    + [
        _field("ts_ns", pa.int64(), "Time, ns."),
        _field("name", pa.string(), "Event name."),
        _field("cat", pa.string(), "Category."),
        _field("pid", pa.string(), "Process id as written."),
        _field("tid", pa.string(), "Thread id as written."),
        _field("scope", pa.string(), "Instant scope: g, p or t."),
        _field("args", pa.string(), "The event's args as a JSON object."),
    ]
)

METADATA = pa.schema(
    _common()
    + [
        _field("kind", pa.string(), "process, thread, trace (top-level keys), distributed, device (one per device)."),
        _field("pid", pa.string(), "Process id, for process and thread entries."),
        _field("tid", pa.string(), "Thread id, for thread entries."),
        _field("key", pa.string(), "What is described: process_name, thread_name, a top-level key, a device id."),
        _field("value", pa.string(), "The value: a name or label as text, else JSON (secrets redacted)."),
    ]
)

_CORES = {"aic": "Cube-core", "aiv": "Vector-core"}
_PIPES = {
    "mac": "the MAC (matrix) pipe",
    "vec": "the vector pipe",
    "scalar": "the scalar pipe",
    "mte1": "MTE1 (L1 to L0 moves)",
    "mte2": "MTE2 (memory to L1/UB moves)",
    "mte3": "MTE3 (UB to memory moves)",
    "fixpipe": "the fixpipe (L0C out)",
}


def _pmu_fields() -> list[pa.Field]:
    """Per-pipe times and ratios of the PipeUtilization metric set, `aic_*` and `aiv_*` columns."""
    kept_before = ("aic_mac_ratio", "aic_mte2_ratio", "aiv_vec_ratio", "aiv_mte2_ratio")
    fields = []
    for core, pipes in (
        ("aic", ("mac", "scalar", "mte1", "mte2", "fixpipe")),
        ("aiv", ("vec", "mac", "scalar", "mte1", "mte2", "mte3")),
    ):
        unit = _CORES[core]
        for pipe in pipes:
            name = f"{core}_{pipe}"
            fields.append(_field(f"{name}_ns", pa.int64(), f"{unit} time in {_PIPES[pipe]} (`{name}_time(us)`), ns."))
            if f"{name}_ratio" not in kept_before:
                doc = f"Share of {unit.lower()} time in {_PIPES[pipe]} (`{name}_ratio`)."
                fields.append(_field(f"{name}_ratio", pa.float64(), doc))
        doc = f"{unit} instruction-cache miss rate (`{core}_icache_miss_rate`)."
        fields.append(_field(f"{core}_icache_miss_rate", pa.float64(), doc))
    return fields


NPU_KERNEL_METRICS = pa.schema(
    _common()
    + [
        _field("slice_id", pa.int64(), "slice_id of the kernel or communication slice in `slices`."),
        _field("device_id", pa.int32(), "Device index (`Device_id`, else the device of the task)."),
        _field("step", pa.int64(), "Profiler step (`Step Id`), else the step of the slice."),
        _field("name", pa.string(), "Kernel name (`Name` / `Op Name`)."),
        _field("op_type", pa.string(), "Operator type (`Type` / `OP Type`), null where `N/A`."),
        _field(
            "core",
            pa.string(),
            "Accelerator core (`Accelerator Core` / `Task Type`): AI_CORE, AI_VECTOR_CORE, MIX_AIC, MIX_AIV,"
            " AI_CPU, DSA_SQE, COMMUNICATION (older: HCCL).",
        ),
        _field("stream", pa.int64(), "Stream id (`Stream ID`)."),
        _field("task_id", pa.int64(), "Task id (`Task ID`)."),
        _field("op_state", pa.string(), "`OP State`: dynamic or static shape."),
        _field("block_dim", pa.int64(), "Blocks launched (`Block Dim`, renamed `Block Num`)."),
        _field("mix_block_dim", pa.int64(), "Blocks of the second core of MIX kernels (`Mix Block Dim`/`Num`)."),
        _field("hf32_eligible", pa.bool_(), "`HF32 Eligible` (YES/NO)."),
        _field("input_shapes", pa.string(), "Input shapes without the literal quotes: tensors `;`, dims `,`."),
        _field("input_dtypes", pa.string(), "Input data types, `;`-separated."),
        _field("input_formats", pa.string(), "Input formats (ND, NCHW, FRACTAL_Z, ...), `;`-separated."),
        _field("output_shapes", pa.string(), "Output shapes, as `input_shapes`."),
        _field("output_dtypes", pa.string(), "Output data types, `;`-separated."),
        _field("output_formats", pa.string(), "Output formats, `;`-separated."),
        _field("wait_ns", pa.int64(), "Gap on the device before the task (`Wait Time(us)`), ns."),
        _field("aicore_ns", pa.int64(), "Cube-core busy time (`aicore_time(us)` / `aic_total_time`), ns."),
        _field("aic_total_cycles", pa.int64(), "Cube-core cycles (`aic_total_cycles`)."),
        _field("aic_mac_ratio", pa.float64(), "Share of cube-core time in the MAC (matrix) pipe (`aic_mac_ratio`)."),
        _field("aic_mte2_ratio", pa.float64(), "Cube-core share moving data in from memory (`aic_mte2_ratio`)."),
        _field("aiv_ns", pa.int64(), "Vector-core busy time (`aiv_time(us)` / `aiv_total_time`), ns."),
        _field("aiv_total_cycles", pa.int64(), "Vector-core cycles (`aiv_total_cycles`)."),
        _field("aiv_vec_ratio", pa.float64(), "Share of vector-core time in the vector pipe (`aiv_vec_ratio`)."),
        _field("aiv_mte2_ratio", pa.float64(), "Vector-core share moving data in from memory (`aiv_mte2_ratio`)."),
        _field("cube_utilization", pa.float64(), "`cube_utilization(%)`, percent."),
        _field("model_id", pa.int64(), "`Model ID` (graph model), null where invalid (4294967295)."),
        _field("context_id", pa.int64(), "`Context ID` (sub-task of MIX and FFTS+ kernels), null where `N/A`."),
        *_pmu_fields(),
        _field(
            "metrics",
            pa.string(),
            "JSON object of the remaining columns: PMU metrics of the sets other than PipeUtilization, ...",
        ),
    ]
)

STEPS = pa.schema(
    _common()
    + [
        _field("step", pa.int64(), "Step number (`Step`; `step13` becomes 13)."),
        _field("device_id", pa.int32(), "Device (`Device_id`) where recorded, else null."),
        _field("computing_ns", pa.int64(), "Device time running compute tasks (`Computing`), ns."),
        _field(
            "communication_not_overlapped_ns",
            pa.int64(),
            "Communication not hidden by compute (`Communication(Not Overlapped)`), ns.",
        ),
        _field("overlapped_ns", pa.int64(), "Communication overlapped by compute (`Overlapped`), ns."),
        _field("communication_ns", pa.int64(), "All communication time (`Communication`), ns."),
        _field("free_ns", pa.int64(), "Device idle time within the step (`Free`), ns."),
        _field("stage_ns", pa.int64(), "Step length on the device minus bubble (`Stage`), ns."),
        _field("bubble_ns", pa.int64(), "Pipeline bubble: time in receive ops (`Bubble`), ns."),
        _field(
            "communication_not_overlapped_exclude_receive_ns",
            pa.int64(),
            "`Communication(Not Overlapped and Exclude Receive)`, ns.",
        ),
        _field("preparing_ns", pa.int64(), "From step start on the host to the first device task (`Preparing`), ns."),
        _field("source", pa.string(), "Where the row came from: step_trace_time.csv or analysis.db."),
    ]
)

COLLECTIVES = pa.schema(
    _common()
    + [
        _field(
            "slice_id", pa.int64(), "slice_id of the call's slice (NCCL/RCCL kernel, gloo range, HCCL op), or null."
        ),
        _field("step", pa.int64(), "Profiler step where recorded (Ascend), else null: join `slices` on slice_id."),
        _field(
            "name", pa.string(), "Name as recorded, e.g. `ncclDevKernel_AllGather_RING_LL`, `hcom_allReduce__534_6_1`."
        ),
        _field("op", pa.string(), "Normalised operation: " + ", ".join(COLLECTIVE_OPS) + "."),
        _field(
            "group",
            pa.string(),
            "Process group (`Process Group Name`) or HCCL group (the number after `@` in communication.json).",
        ),
        _field(
            "group_desc", pa.string(), "Group description (`Process Group Description`, Ascend parallel group name)."
        ),
        _field("group_ranks", pa.list_(pa.int32()), "Global ranks of the group, where recorded."),
        _field("group_size", pa.int32(), "Number of ranks in the group, where recorded."),
        _field(
            "seq",
            pa.int64(),
            "Aligns one collective across ranks: the recorded sequence number (`Seq`; the index in an HCCL op"
            " name), else the call's index within its group on this rank (from 0, by start time).",
        ),
        _field("ts_ns", pa.int64(), "Start, ns (the device kernel for NCCL/RCCL and HCCL, the host range for gloo)."),
        _field("dur_ns", pa.int64(), "Duration, ns."),
        _field(
            "bytes",
            pa.int64(),
            "Message size: elements times dtype size; the larger of input and output (the whole buffer of"
            " all_gather and reduce_scatter, as nccl-tests count it). Null where not recorded.",
        ),
        _field("dtype", pa.string(), "Element type as recorded (`Float`, `BFloat16`, `FP32`, ...)."),
        _field("transit_ns", pa.int64(), "Time moving data (Ascend `Transit Time`), ns."),
        _field("wait_ns", pa.int64(), "Time waiting for the other ranks (Ascend `Wait Time`), ns."),
        _field("sync_ns", pa.int64(), "Synchronisation time (Ascend `Synchronization Time`), ns."),
        _field("idle_ns", pa.int64(), "Time neither moving data nor waiting (Ascend `Idle Time`), ns."),
        _field("algorithm", pa.string(), "Algorithm where recorded (HCCL `alg_type`, e.g. MESH-RING)."),
        _field(
            "source",
            pa.string(),
            "The call's record: kernel, gloo (Kineto); trace_view.json, kernel_details, COMMUNICATION_OP (Ascend, with"
            " the time split of communication.json or analysis.db where they name the op),"
            " communication.json (an op without a slice).",
        ),
    ]
)

COMM_LINKS = pa.schema(
    _common()
    + [
        _field("step", pa.int64(), "Profiler step (`step13` becomes 13)."),
        _field("group", pa.string(), "HCCL group, as `collectives.group`."),
        _field("op", pa.string(), "Normalised operation of the op type (see `collectives.op`)."),
        _field("op_type", pa.string(), "Op type as recorded (`allreduce`, `batchsendrecv`, ...)."),
        _field("src_rank", pa.int32(), "Global rank sending; null where the group's rank list is not recorded."),
        _field("dst_rank", pa.int32(), "Global rank receiving; null where the group's rank list is not recorded."),
        _field("src_local_rank", pa.int32(), 'Sending rank within the group, as recorded (`"1-0"` keys).'),
        _field("dst_local_rank", pa.int32(), "Receiving rank within the group, as recorded."),
        _field("transport", pa.string(), "Link type: HCCS, PCIE, RDMA, SIO, LOCAL, ..."),
        _field(
            "bytes",
            pa.int64(),
            "Bytes sent over the link by all ops of the type in the step (`Transit Size(MB)`, 10^6).",
        ),
        _field("transit_ns", pa.int64(), "Time moving them (`Transit Time(ms)`), ns."),
        _field(
            "bandwidth_gbps",
            pa.float64(),
            "Bytes over transit time, 10^9 bytes/s (`Bandwidth(GB/s)` as recorded where the time is 0).",
        ),
        _field("source", pa.string(), "communication_matrix.json or analysis.db."),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "traces": TRACES,
    "slices": SLICES,
    "memory": MEMORY,
    "counters": COUNTERS,
    "flows": FLOWS,
    "instants": INSTANTS,
    "metadata": METADATA,
    "npu_kernel_metrics": NPU_KERNEL_METRICS,
    "steps": STEPS,
    "collectives": COLLECTIVES,
    "comm_links": COMM_LINKS,
}

TABLE_DOCS: dict[str, str] = {
    "traces": "One row per ingested trace file or rank.",
    "slices": (
        "Every duration event (host ops, annotations, runtime calls, kernels, copies, ...). Stored grouped"
        " (parsers/slice_order.py): device work, launch calls, framework ops, other host slices, each in"
        " row groups of its own, in slice_id order within a group; a query that filters on kind or"
        " device_type reads only its groups."
    ),
    "memory": "Allocator events (`[memory]` instants): allocations, frees and running totals.",
    "counters": "Counter samples (`C` events).",
    "flows": "Links between slices: launch to kernel (ac2g), forward to backward (fwdbwd), ...",
    "instants": "Instant events other than memory events.",
    "metadata": "Process and thread names, device properties, distributed info, top-level keys.",
    "npu_kernel_metrics": (
        "One row per Ascend kernel or communication op (rows of kernel_details.csv, op_summary_*.csv,"
        " COMPUTE_TASK_INFO / COMMUNICATION_OP): its hardware metrics. Rows are stored in no particular"
        " order: join them to `slices` on slice_id."
    ),
    "steps": "Per-step device time breakdown written by the Ascend profiler (step_trace_time.csv, analysis.db).",
    "collectives": (
        "One row per collective call per rank: NCCL/RCCL kernels (with the `record_param_comms` args they"
        " carry), gloo ranges (`gloo:all_reduce`, ...), Ascend HCCL ops (communication.json, the"
        " timeline/kernel_details op rows, COMMUNICATION_OP with analysis.db's time split). One collective"
        " is the same (group, seq) on every rank of its group."
    ),
    "comm_links": (
        "Per-link traffic totals per (rank, step, group, op type, src, dst, transport), as the Ascend"
        " profiler records them (communication_matrix.json, analysis.db CommAnalyzerMatrix): the"
        " `-total` entries only, never the top/middle/bottom samples; group-local ranks mapped to global"
        " ranks through the group's rank list (profiler_metadata.json). Empty where the profiler records"
        " no per-link data (NCCL)."
    ),
}


def render_markdown() -> str:
    """Render the model as the Markdown of `docs/model.md`."""
    lines = [
        "# The traceview trace model",
        "",
        "Generated from `parsers/model.py` by `python -m traceview.parsers.model > docs/model.md`; a test checks",
        "that this file matches the code. Times are int64 nanoseconds everywhere.",
        "",
        f"Model version: {MODEL_VERSION}",
    ]
    for table, schema in TABLES.items():
        lines += ["", f"## `{table}`", "", TABLE_DOCS[table], "", "| column | type | meaning |", "| --- | --- | --- |"]
        for field in schema:
            doc = (field.metadata or {}).get(b"doc", b"").decode()
            lines.append(f"| `{field.name}` | `{field.type}` | {doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
