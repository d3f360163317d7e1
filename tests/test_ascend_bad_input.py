"""Ascend files that are not what their names say: one `Error: <path>: <message>` line and exit 2,
or, inside a dump whose other files are good, a warning with counts; never a traceback, never a
write into the input."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from ascend_support import ASCEND, query, snapshot
from typer.testing import CliRunner

from traceview.cli import app
from traceview.store import ingest

runner = CliRunner()
KERNEL_HEADER = "Step Id,Name,Type,Accelerator Core,Start Time(us),Duration(us),Wait Time(us),Block Dim\n"


def _kernel_csv_holding_json(tmp: Path) -> Path:
    path = tmp / "kernel_details.csv"
    path.write_text('{"traceEvents": []}\n')
    return path


def _kernel_csv_unknown_header(tmp: Path) -> Path:
    path = tmp / "op_summary_20230628101510.csv"
    path.write_text("Device,Kernel,Begin,Length\n0,gemm,1.0,2.0\n")
    return path


def _empty_kernel_csv(tmp: Path) -> Path:
    path = tmp / "kernel_details.csv"
    path.write_bytes(b"")
    return path


def _timeline_of_random_bytes(tmp: Path) -> Path:
    path = tmp / "trace_view.json"
    data = random.Random(7).randbytes(2048)
    path.write_bytes(b"\x00" + data)
    return path


def _db_that_is_text(tmp: Path) -> Path:
    path = tmp / "ascend_pytorch_profiler_0.db"
    path.write_text("this is not a database\n")
    return path


def _db_without_known_tables(tmp: Path) -> Path:
    path = tmp / "msprof_20230628101510.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE memory_block (id INTEGER, size INTEGER)")
    con.execute("CREATE TABLE status_info (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    return path


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "kernel_csv_holding_json": (
        _kernel_csv_holding_json,
        "expected a kernel_details.csv / op_summary header with Name, Start Time(us), Duration(us),"
        " found columns '{\"traceEvents\": []}' (missing Name, Start Time(us), Duration(us))",
    ),
    "kernel_csv_unknown_header": (
        _kernel_csv_unknown_header,
        "expected a kernel_details.csv / op_summary header with Name, Start Time(us), Duration(us),"
        " found columns 'Device, Kernel, Begin, Length' (missing Name, Start Time(us), Duration(us))",
    ),
    "empty_kernel_csv": (_empty_kernel_csv, "expected a CSV file with a header row, found an empty file"),
    "timeline_of_random_bytes": (
        _timeline_of_random_bytes,
        "expected an Ascend timeline (a JSON array of trace events), found binary data",
    ),
    "db_that_is_text": (
        _db_that_is_text, "expected an SQLite database, found text starting with 'this is not a database'"
    ),
    "db_without_known_tables": (
        _db_without_known_tables,
        "expected an Ascend profiler database (TASK, COMPUTE_TASK_INFO, CANN_API, ...), found tables"
        " memory_block, status_info",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_known_name_foreign_content_is_one_error_line(case: str, tmp_path: Path) -> None:
    make, message = CASES[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    path = make(inputs)
    before = snapshot(inputs)
    result = runner.invoke(app, ["ingest", str(path), "-o", str(tmp_path / "out.traceview")])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == f"Error: {path}: {message}\n"
    assert "Traceback" not in result.output
    assert snapshot(inputs) == before


def _dump_with(tmp: Path, files: dict[str, bytes]) -> Path:
    """A torch_npu rank dump: profiler_info_0.json plus the given ASCEND_PROFILER_OUTPUT files."""
    dump = tmp / "host_1_20250101_ascend_pt"
    out = dump / "ASCEND_PROFILER_OUTPUT"
    out.mkdir(parents=True)
    (dump / "profiler_info_0.json").write_text(json.dumps({"config": {}, "rank_id": 0}))
    for name, data in files.items():
        (out / name).write_bytes(data)
    return dump


def test_truncated_timeline_in_a_dump_keeps_the_complete_events(tmp_path: Path) -> None:
    source = ASCEND / "msprof_analyze" / "ut" / "advisor" / "timeline_advice" / "trace_view.json"
    data = source.read_bytes()
    cut = data[: len(data) * 2 // 3]
    dump = _dump_with(tmp_path, {"trace_view.json": cut})
    before = snapshot(tmp_path)
    result = ingest([dump], tmp_path.parent / f"{tmp_path.name}.traceview")
    assert snapshot(tmp_path) == before
    truncated = [w for w in result.warnings if "timeline is truncated" in w]
    assert len(truncated) == 1 and "kept " in truncated[0] and "complete events" in truncated[0]
    kept = int(truncated[0].split("kept ")[1].split()[0])
    complete = len(json.loads(data))
    assert 0 < kept < complete
    slices = query(result.store, "SELECT count(*) FROM slices")[0][0]
    assert slices > 0


def test_unrecognised_kernel_csv_in_a_dump_is_a_warning(tmp_path: Path) -> None:
    timeline = ASCEND / "msinsight_server" / "heatMap" / "trace_view.json"
    dump = _dump_with(
        tmp_path,
        {"trace_view.json": timeline.read_bytes(), "kernel_details.csv": b"Device,Kernel,Begin\n0,gemm,1.0\n"},
    )
    result = ingest([dump], tmp_path.parent / f"{tmp_path.name}.traceview")
    assert any("kernel_details.csv" in w and "kernels taken from the timeline only" in w for w in result.warnings)
    assert query(result.store, "SELECT count(*) FROM slices")[0][0] == 4


def test_unrecognised_memory_csv_in_a_dump_is_a_warning(tmp_path: Path) -> None:
    dump = _dump_with(
        tmp_path,
        {
            "kernel_details.csv": (KERNEL_HEADER + "50,trans_TransData_0,N/A,N/A,1736405443881410.320\t,50.621,0,0\n")
            .encode(),
            "memory_record.csv": b"When,How much\n1,2\n",
        },
    )
    result = ingest([dump], tmp_path.parent / f"{tmp_path.name}.traceview")
    assert any("memory_record.csv: unrecognised header" in w for w in result.warnings)
    assert query(result.store, "SELECT count(*), sum(dur_ns) FROM slices WHERE kind = 'kernel'") == [(1, 50621)]


def test_memory_csv_whose_column_only_starts_with_a_required_name_is_read(tmp_path: Path) -> None:
    # `Component Name` passes the header check for `Component` (a prefix); it used to crash the ingest
    dump = _dump_with(
        tmp_path,
        {
            "kernel_details.csv": (KERNEL_HEADER + "50,trans_TransData_0,N/A,N/A,1736405443881410.320\t,50.621,0,0\n")
            .encode(),
            "memory_record.csv": b"Component Name,Timestamp(us),Total Allocated(MB),Total Reserved(MB)\nAPP,1,2,3\n",
        },
    )
    result = ingest([dump], tmp_path.parent / f"{tmp_path.name}.traceview")
    assert query(result.store, "SELECT count(*) FROM memory") == [(1,)]


def test_rows_without_times_are_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "kernel_details.csv"
    path.write_text(
        KERNEL_HEADER
        + "50,a,N/A,AI_CORE,1736405443881410.320\t,50.621,0,0\n"
        + "50,b,N/A,AI_CORE,N/A,1.0,0,0\n"
        + "50,c,N/A,AI_CORE,garbage,1.0,0,0\n"
    )
    result = ingest([path], tmp_path / "s.traceview")
    assert any("2 rows without a usable name, start or duration were skipped" in w for w in result.warnings)
    assert query(result.store, "SELECT name FROM slices") == [("a",)]
    assert query(result.store, "SELECT count(*) FROM npu_kernel_metrics") == [(1,)]
