"""The columns of a kernel table (`kernel_details.csv`, `op_summary_*.csv`) that the model keeps.

torch_npu renames msprof's headers (`Op Name` to `Name`, `Task Type` to `Accelerator Core`, ...),
and headers moved across CANN versions (`Block Dim` became `Block Num`, `Device_id` and `OP State`
appeared), so each column is found by any of its names. The PMU columns are those of the default
metric set (`aic_metrics=PipeUtilization`); the other sets' columns, and any column not listed
here, go to the `metrics` JSON.

Kinds: `int` (the invalid id 4294967295 is null), `int32`, `start` (absolute µs to ns), `ns` (µs
to ns), `ratio` (a float), `text`, `shape` (text without msprof's literal quotes), `yes_no`.
"""

from __future__ import annotations

from typing import NamedTuple


class KernelColumn(NamedTuple):
    name: str  # the column in `kd` and npu_kernel_metrics
    kind: str
    headers: tuple[str, ...]  # accepted header names, newest first


def _pmu(core: str, pipes: tuple[str, ...]) -> list[KernelColumn]:
    columns = []
    for pipe in pipes:
        columns.append(KernelColumn(f"{core}_{pipe}_ns", "ns", (f"{core}_{pipe}_time(us)",)))
        columns.append(KernelColumn(f"{core}_{pipe}_ratio", "ratio", (f"{core}_{pipe}_ratio",)))
    return columns + [KernelColumn(f"{core}_icache_miss_rate", "ratio", (f"{core}_icache_miss_rate",))]


KERNEL_COLUMNS: tuple[KernelColumn, ...] = (
    KernelColumn("step", "int", ("Step Id",)),
    KernelColumn("device_id", "int32", ("Device_id",)),
    KernelColumn("model_id", "int", ("Model ID",)),
    KernelColumn("task_id", "int", ("Task ID",)),
    KernelColumn("stream", "int", ("Stream ID",)),
    KernelColumn("context_id", "int", ("Context ID",)),
    KernelColumn("name", "text", ("Name", "Op Name")),
    KernelColumn("op_type", "text", ("Type", "OP Type")),
    KernelColumn("op_state", "text", ("OP State",)),
    KernelColumn("core", "text", ("Accelerator Core", "Task Type")),
    KernelColumn("ts_ns", "start", ("Start Time(us)", "Task Start Time(us)")),
    KernelColumn("dur_ns", "ns", ("Duration(us)", "Task Duration(us)")),
    KernelColumn("wait_ns", "ns", ("Wait Time(us)", "Task Wait Time(us)")),
    KernelColumn("block_dim", "int", ("Block Num", "Block Dim")),
    KernelColumn("mix_block_dim", "int", ("Mix Block Num", "Mix Block Dim")),
    KernelColumn("hf32_eligible", "yes_no", ("HF32 Eligible",)),
    KernelColumn("input_shapes", "shape", ("Input Shapes",)),
    KernelColumn("input_dtypes", "text", ("Input Data Types",)),
    KernelColumn("input_formats", "text", ("Input Formats",)),
    KernelColumn("output_shapes", "shape", ("Output Shapes",)),
    KernelColumn("output_dtypes", "text", ("Output Data Types",)),
    KernelColumn("output_formats", "text", ("Output Formats",)),
    KernelColumn("aicore_ns", "ns", ("aicore_time(us)", "aic_total_time(us)")),
    KernelColumn("aic_total_cycles", "int", ("aic_total_cycles",)),
    *_pmu("aic", ("mac", "scalar", "mte1", "mte2", "fixpipe")),
    KernelColumn("aiv_ns", "ns", ("aiv_time(us)", "aiv_total_time(us)")),
    KernelColumn("aiv_total_cycles", "int", ("aiv_total_cycles",)),
    *_pmu("aiv", ("vec", "mac", "scalar", "mte1", "mte2", "mte3")),
    KernelColumn("cube_utilization", "ratio", ("cube_utilization(%)",)),
)
REQUIRED = ("name", "ts_ns", "dur_ns")
COMM_CORES = ("HCCL", "COMMUNICATION")
# `kd` columns holding the header's other columns, as numbers, until they become the metrics JSON
METRIC_PREFIX = "metric:"
