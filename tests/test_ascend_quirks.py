"""The quirks of Ascend CSVs and timelines, one by one (all seen in the real corpus).

Property tests check the decimal µs text -> integer ns conversion, in Python and in the SQL the
parsers run, against exact integer arithmetic; the other tests write small files in the layouts
of `../shared/reference/ascend-formats.md` (section named in each) and ingest them.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
from ascend_support import query
from hypothesis import given, settings
from hypothesis import strategies as st

from traceview.parsers.ascend.csv_util import int_sql, ns_sql, shape_sql, text_sql, us_text_to_ns
from traceview.store import ingest

_CON = duckdb.connect()


def _sql(expr_of_col, value: str):
    return _CON.execute(f"SELECT {expr_of_col('v')} FROM (SELECT ?::VARCHAR AS v)", [value]).fetchone()[0]


def _us_text(ns: int) -> str:
    sign = "-" if ns < 0 else ""
    return f"{sign}{abs(ns) // 1000}.{abs(ns) % 1000:03d}"


@settings(max_examples=300, deadline=None)
@given(
    ns=st.integers(min_value=-(10**15), max_value=9 * 10**18),
    suffix=st.sampled_from(["", "\t", " ", "\t\t", "\r"]),
    quoted=st.booleans(),
    extra_zeros=st.integers(min_value=0, max_value=3),
)
def test_us_text_with_quirks_is_exact_ns(ns: int, suffix: str, quoted: bool, extra_zeros: int) -> None:
    """`"1736408883704643.212\\t"`-style text: the ns part survives, beyond a double's 53 bits."""
    text = _us_text(ns) + "0" * extra_zeros + suffix
    if quoted:
        text = f'"{text}"'
    assert us_text_to_ns(text) == ns
    assert _sql(ns_sql, text) == ns


@settings(max_examples=200, deadline=None)
@given(
    whole=st.integers(min_value=-(10**12), max_value=9 * 10**15),
    fraction=st.text(alphabet="0123456789", max_size=9),
)
def test_sql_and_python_round_alike(whole: int, fraction: str) -> None:
    """More than 3 decimals (2023 files write `496.8508`): both paths round to the nearest ns alike."""
    text = f"{whole}.{fraction}" if fraction else str(whole)
    micro = Decimal(text).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    expected = int((micro * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert us_text_to_ns(text) == expected
    assert _sql(ns_sql, text) == expected


def test_out_of_range_is_missing_not_wrong() -> None:
    assert us_text_to_ns("9223372036854776") is None
    assert _sql(ns_sql, "9223372036854776") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("N/A", None), ("", None), ("4294967295", None), ("12", 12), ("12\t", 12), ('"12"', 12), ("0", 0)],
)
def test_integer_fields_and_missing_markers(text: str, expected: int | None) -> None:
    assert _sql(int_sql, text) == expected


def test_text_and_shape_fields() -> None:
    assert _sql(text_sql, "N/A") is None
    assert _sql(text_sql, "AI_CORE") == "AI_CORE"
    assert _sql(shape_sql, '"32,1,224,224,8;121,4,16,8;64"') == "32,1,224,224,8;121,4,16,8;64"
    assert _sql(shape_sql, "N/A") is None
    assert us_text_to_ns("N/A") is None and us_text_to_ns("abc") is None and us_text_to_ns(None) is None


# kernel_details.csv of Level0, Jan 2025 (§2.2 "Real headers seen"): CRLF, `N/A` type and core.
LEVEL0 = (
    "Step Id,Name,Type,Accelerator Core,Start Time(us),Duration(us),Wait Time(us),Block Dim\r\n"
    "50,trans_TransData_0,N/A,N/A,1736405443881410.320\t,50.621,0,0\r\n"
    "50,hcom_allReduce__868_0_1,N/A,HCCL,1736405443909176.934\t,72994.438,320.026,0\r\n"
)
# Current torch_npu master (§2.2, PTA-DOC Table 1): `Device_id` first, `Block Num` / `Mix Block Num`.
CURRENT = (
    "Step Id,Device_id,Model ID,Task ID,Stream ID,Name,Type,OP State,Accelerator Core,Start Time(us),"
    "Duration(us),Wait Time(us),Block Num,Mix Block Num,HF32 Eligible,Input Shapes,Input Data Types,"
    "Input Formats,Output Shapes,Output Data Types,Output Formats,Context ID,aicore_time(us),aic_total_cycles\n"
    '13,5,4294967295,34486,2,aclnnEmbedding_GatherV2AiCore_GatherV2,GatherV2,dynamic,MIX_AIV,'
    '"1764246877077343.740\t",48.680,1881.080000,40,20,NO,"""151936,1024;1,4096;1""",DT_BF16;INT64;INT64,'
    'ND;ND;ND,"""1,4096,1024""",DT_BF16,ND,N/A,40.296,2659547\n'
    "13,5,4294967295,N/A,N/A,hcom_batchSendRecv__128_3_1,hcom_batchSendRecv_,N/A,COMMUNICATION,"
    "1764246877147674.500\t,436.140,833.420000,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A\n"
)


def test_level0_crlf_kernel_details(tmp_path: Path) -> None:
    path = tmp_path / "kernel_details.csv"
    path.write_bytes(LEVEL0.encode())
    store = ingest([path], tmp_path / "s.traceview").store
    rows = query(store, "SELECT name, kind, ts_ns, dur_ns, core, step FROM slices ORDER BY ts_ns")
    assert rows == [
        ("trans_TransData_0", "kernel", 1736405443881410320, 50621, None, 50),
        ("hcom_allReduce__868_0_1", "comm", 1736405443909176934, 72994438, "HCCL", 50),
    ]
    assert query(store, "SELECT op_type, block_dim, wait_ns FROM npu_kernel_metrics ORDER BY slice_id") == [
        (None, 0, 0), (None, 0, 320026)
    ]


def test_current_header_block_num_device_id_and_tripled_quotes(tmp_path: Path) -> None:
    path = tmp_path / "kernel_details.csv"
    path.write_text(CURRENT)
    store = ingest([path], tmp_path / "s.traceview").store
    rows = query(
        store,
        "SELECT device_id, stream, task_id, block_dim, mix_block_dim, hf32_eligible, input_shapes, input_dtypes,"
        " output_shapes, aicore_ns, aic_total_cycles, metrics, model_id, context_id FROM npu_kernel_metrics"
        " ORDER BY slice_id",
    )
    assert rows[0][:11] == (5, 2, 34486, 40, 20, False, "151936,1024;1,4096;1", "DT_BF16;INT64;INT64",
                            "1,4096,1024", 40296, 2659547)
    # Model ID 4294967295 is the invalid id, Context ID N/A: both null, and no column is left for the JSON
    assert (json.loads(rows[0][11]), rows[0][12], rows[0][13]) == ({}, None, None)
    assert rows[1][:5] == (5, None, None, 0, None)
    assert query(store, "SELECT kind, device_id, ts_ns FROM slices ORDER BY ts_ns") == [
        ("kernel", 5, 1764246877077343740), ("comm", 5, 1764246877147674500)
    ]


def _timeline(pid_hw: int, sort_index: int) -> list[dict]:
    """§3.2: the Ascend Hardware pid is synthetic and its sort index moved between versions."""
    return [
        {"name": "process_name", "pid": pid_hw, "tid": 0, "args": {"name": "Ascend Hardware"}, "ph": "M"},
        {"name": "process_sort_index", "pid": pid_hw, "tid": 0, "args": {"sort_index": sort_index}, "ph": "M"},
        {"name": "process_name", "pid": 17, "tid": 0, "args": {"name": "Overlap Analysis"}, "ph": "M"},
        {"name": "MatMul", "pid": pid_hw, "tid": 3, "ts": "1704161511422904.204", "dur": 1.35,
         "args": {"Model Id": 4294967295, "Task Type": "AI_CORE", "Stream Id": 3, "Task Id": 279}, "ph": "X"},
        {"name": "EVENT_RECORD", "pid": pid_hw, "tid": 3, "ts": "1704161511422906.000", "dur": 0.02,
         "args": {"Task Type": "EVENT_RECORD_SQE", "Physic Stream Id": 3}, "ph": "X"},
        {"name": "Computing", "pid": 17, "tid": 0, "ts": "1704161511422904.204", "dur": 1.35, "ph": "X"},
    ]


@pytest.mark.parametrize(("pid", "sort_index"), [(3254508960, 13), (3254509000 << 2, 14), (800, 3)])
def test_tracks_are_identified_by_process_name(pid: int, sort_index: int, tmp_path: Path) -> None:
    path = tmp_path / "trace_view.json"
    path.write_text(json.dumps(_timeline(pid, sort_index)))
    store = ingest([path], tmp_path / "s.traceview").store
    assert query(store, "SELECT name, kind, device_type, stream, ts_ns FROM slices ORDER BY ts_ns") == [
        ("MatMul", "kernel", "npu", 3, 1704161511422904204),
        ("EVENT_RECORD", "sync", "npu", 3, 1704161511422906000),
    ], "Overlap Analysis intervals are derived data and are not slices"


def test_partial_rank_dump_warns_and_goes_on(tmp_path: Path) -> None:
    """A rank with only some files (like the corpus's torch_npu_cann83_level2/rank_1_ascend_pt)."""
    rank = tmp_path / "node1_1234_20250101_ascend_pt"
    out = rank / "ASCEND_PROFILER_OUTPUT"
    out.mkdir(parents=True)
    (rank / "profiler_info_3.json").write_text(json.dumps({"config": {}, "rank_id": 3}))
    (out / "step_trace_time.csv").write_text(
        "Device_id,Step,Computing,Communication(Not Overlapped),Overlapped,Communication,Free,Stage,Bubble,"
        "Communication(Not Overlapped and Exclude Receive),Preparing\n"
        "1,13,230903.7200000004,441708.37999999995,0.0,441708.37999999995,136819.560000002,809431.75,0,"
        "441708.37999999995,205.0\n"
    )
    result = ingest([tmp_path], tmp_path.parent / f"{tmp_path.name}.traceview")
    assert any("partial dump" in w for w in result.warnings)
    store = result.store
    assert query(store, "SELECT rank FROM traces") == [(3,)]
    assert query(store, "SELECT step, device_id, computing_ns, free_ns, preparing_ns FROM steps") == [
        (13, 1, 230903720, 136819560, 205000)
    ]
