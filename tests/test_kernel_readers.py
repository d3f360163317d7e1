"""The two readers of kernel CSVs give the same `kd` rows: pyarrow's typed read (`kernel_arrow`),
and DuckDB's every-cell-as-text read (`kernel_csv._read_sql`) that takes the files the first refuses.

Fixtures follow the current torch_npu `kernel_details.csv` header (PTA-DOC Table 1, as quoted in
`shared/reference/ascend-formats.md` §2.2) and the quirks of the corpus files.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from ascend_support import ASCEND
from fresh_python import fresh_python
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traceview.parsers.ascend import kernel_arrow
from traceview.parsers.ascend.kernel_csv import _read_sql, kernel_header
from traceview.parsers.ascend.staging import Staging

CORPUS_KERNEL_CSVS = sorted([*ASCEND.rglob("kernel_details*.csv"), *ASCEND.rglob("op_summary*.csv")])
HEADER = (
    "Step Id,Device_id,Model ID,Task ID,Stream ID,Name,Type,OP State,Accelerator Core,Start Time(us),"
    "Duration(us),Wait Time(us),Block Num,Mix Block Num,HF32 Eligible,Input Shapes,Input Data Types,"
    "Input Formats,Output Shapes,Output Data Types,Output Formats,Context ID,aicore_time(us),aic_total_cycles,"
    "aic_mac_time(us),aic_mac_ratio,aic_l0a_read_bw(GB/s)"
)


def _both(path: Path, scratch: Path) -> tuple[pa.Table | None, pa.Table]:
    header, names, found, rest = kernel_header(path)
    fast = kernel_arrow.read_kernels([path], names, found, rest)
    staging = Staging(scratch, path.stat().st_size, threads=1)
    try:
        slow = _read_sql(staging, [path], header, found, rest)
    finally:
        staging.con.close()
    return fast, slow


def _rows(table: pa.Table) -> list[dict]:
    plain = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f for f in table.schema])
    return table.cast(plain).to_pylist()


@pytest.mark.parametrize("path", CORPUS_KERNEL_CSVS, ids=lambda p: str(p.relative_to(ASCEND)))
def test_corpus_files_read_alike(path: Path, tmp_path: Path) -> None:
    fast, slow = _both(path, tmp_path)
    if fast is not None:
        assert fast.schema.names == slow.schema.names
        assert _rows(fast) == _rows(slow)


def test_the_typed_reader_takes_the_torch_npu_files_and_refuses_sub_ns_times(tmp_path: Path) -> None:
    taken = {p.relative_to(ASCEND).parts[0] for p in CORPUS_KERNEL_CSVS if _both(p, tmp_path)[0] is not None}
    assert {"torch_npu_2025_text", "torch_npu_cann83_level2", "msprof_analyze"} <= taken
    # MindStudio Insight's 2023 files have 4-decimal durations (496.8508) and short rows: the DuckDB path
    assert "msinsight_server" not in taken


_INT = st.one_of(st.integers(0, 1 << 40).map(str), st.sampled_from(["N/A", "4294967295", ""]))
_DEVICE = st.one_of(st.integers(0, 63).map(str), st.sampled_from(["N/A", ""]))
_NS = st.integers(0, 10**12)
_DUR = st.one_of(
    _NS.map(lambda ns: f"{ns // 1000}.{ns % 1000:03d}"),
    _NS.map(lambda ns: f"{ns // 1000}.{ns % 1000:03d}000"),  # 6 decimals, zeros (Wait Time in torch_npu 2.5)
    st.integers(0, 10**6).map(str),
)
_START = st.tuples(st.integers(10**15, 2 * 10**15), st.integers(0, 999), st.sampled_from(["\t", "", '"'])).map(
    lambda t: f'"{t[0]}.{t[1]:03d}\t"' if t[2] == '"' else f"{t[0]}.{t[1]:03d}{t[2]}"
)
_TEXT = st.sampled_from(["MatMulV2", "Conv2D", "N/A", "", "DT_BF16;INT64", "ND;FRACTAL_NZ"])
_SHAPE = st.sampled_from(['"""151936,1024;1,4096"""', '"""1,4096,1024"""', "N/A", '""""""', '";"'])
_CORE = st.sampled_from(["AI_CORE", "AI_VECTOR_CORE", "MIX_AIC", "HCCL", "COMMUNICATION", "communication", "N/A"])
_RATIO = st.one_of(st.floats(0, 1, allow_nan=False).map(lambda f: f"{f:.3f}"), st.just("N/A"), st.just("1e-05"))
_ROW = st.tuples(
    _INT, _DEVICE, _INT, _INT, _INT, _TEXT, _TEXT, st.sampled_from(["dynamic", "static", "N/A"]), _CORE, _START,
    _DUR, _DUR, _INT, _INT, st.sampled_from(["YES", "NO", "N/A", "yes"]), _SHAPE, _TEXT, _TEXT, _SHAPE, _TEXT,
    _TEXT, _INT, _DUR, _INT, _DUR, _RATIO, _RATIO,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW, min_size=1, max_size=30), crlf=st.booleans())
def test_typed_reader_equals_the_duckdb_reader(rows: list[tuple[str, ...]], crlf: bool, tmp_path: Path) -> None:
    path = tmp_path / "kernel_details.csv"
    end = "\r\n" if crlf else "\n"
    path.write_bytes((HEADER + end + "".join(",".join(row) + end for row in rows)).encode())
    fast, slow = _both(path, tmp_path)
    assert fast is not None
    assert _rows(fast) == _rows(slow)


@pytest.mark.parametrize(
    ("cell", "why"),
    [("48.6805", "a duration finer than 1 ns"), ("abc", "text in a number column"), ("1.5e3x", "a broken number")],
)
def test_cells_the_typed_reader_refuses_go_to_the_duckdb_reader(cell: str, why: str, tmp_path: Path) -> None:
    path = tmp_path / "kernel_details.csv"
    row = (
        "13,5,0,1,2,MatMul,MatMul,dynamic,AI_CORE,1764246877077343.740\t,{},0,40,0,NO,"
        "N/A,N/A,N/A,N/A,N/A,N/A,N/A,1,1,1,0.5,1"
    )
    path.write_text(HEADER + "\n" + row.format(cell) + "\n")
    fast, slow = _both(path, tmp_path)
    assert fast is None, why
    assert slow.num_rows == 1
    assert slow.column("dur_ns").to_pylist() == ([48681] if cell == "48.6805" else [None])


def test_the_typed_reader_does_not_import_pandas() -> None:
    """pyarrow's conversions of Python values import pandas (about 0.3 s); the reader makes none."""
    path = next(p for p in CORPUS_KERNEL_CSVS if p.parts[-4] == "level2")
    code = (
        "import sys; from pathlib import Path; from traceview.parsers.ascend import kernel_arrow;"
        "from traceview.parsers.ascend.kernel_csv import kernel_header;"
        f"p = Path({str(path)!r}); _, n, f, r = kernel_header(p);"
        "assert kernel_arrow.read_kernels([p], n, f, r) is not None; print('pandas' in sys.modules)"
    )
    assert fresh_python(code) == "False"
