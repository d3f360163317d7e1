"""Write a simulated run as a torch_npu text export (`<name>_ascend_pt/`).

Layout, headers, column order and quirks follow the real Jan-2025 torch_npu Level1 export in
the corpus (`ascend/torch_npu_2025_text/level1/rank0_ascend_pt`, CANN 8.0 era): no
`Device_id` columns, `Block Dim` headers, timestamps ending in a TAB, shapes with literal
quotes, CRLF for the CSVs torch_npu writes itself and LF for the CANN copy (op_statistic).
"""

from __future__ import annotations

from .ascend_csv import kernel_details, memory_record, op_statistic, operator_memory, step_trace_time
from .ascend_view import profiler_info, trace_view
from .timeline import Run


def ascend_files(run: Run) -> dict[str, str]:
    """Relative path (inside `<name>_ascend_pt/`) to file text."""
    out = "ASCEND_PROFILER_OUTPUT/"
    return {
        "profiler_info_0.json": profiler_info(run),
        out + "trace_view.json": trace_view(run),
        out + "kernel_details.csv": kernel_details(run),
        out + "op_statistic.csv": op_statistic(run),
        out + "step_trace_time.csv": step_trace_time(run),
        out + "memory_record.csv": memory_record(run),
        out + "operator_memory.csv": operator_memory(run),
    }
