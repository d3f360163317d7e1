"""`kernel_csv.kd_slices`: the slices of kernel-table rows, checked row by row against the rule
written out in plain Python, on every corpus kernel table and on generated rows with the gaps real
tables have (no stream, no core, no device)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from ascend_support import ASCEND
from hypothesis import given, settings
from hypothesis import strategies as st

from traceview.parsers.ascend import kernel_csv
from traceview.parsers.ascend.staging import STAGING_DDL, Staging

CORPUS_KERNEL_CSVS = sorted([*ASCEND.rglob("kernel_details*.csv"), *ASCEND.rglob("op_summary*.csv")])
SLICE_COLUMNS = [column.split()[0] for column in STAGING_DDL["st_slices"].split(",")]


def _expected(row: dict) -> dict:
    device = row["device_id"] if row["device_id"] is not None else 0
    if row["is_comm"]:
        tid = "Communication"
    elif row["stream"] is not None:
        tid = str(row["stream"])
    else:
        tid = row["core"] if row["core"] is not None else "NPU"
    return {
        "slice_id": row["slice_id"],
        "ts_ns": row["ts_ns"],
        "dur_ns": row["dur_ns"],
        "name": row["name"],
        "cat": row["core"],
        "kind": "comm" if row["is_comm"] else "kernel",
        "device_type": "npu",
        "device_id": device,
        "pid": str(device),
        "tid": tid,
        "stream": row["stream"],
        "core": row["core"],
        "correlation": None,
        "external_id": None,
        "step": row["step"],
        "input_dims": row["input_shapes"],
        "input_types": row["input_dtypes"],
        "args": "{}",
    }


def _plain_rows(table: pa.Table) -> list[dict]:
    plain = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f for f in table.schema])
    return table.cast(plain).to_pylist()


def _check(kd: pa.Table) -> None:
    slices = kernel_csv.kd_slices(kd)
    slices.validate(full=True)
    assert slices.column_names == SLICE_COLUMNS
    assert _plain_rows(slices) == [_expected(row) for row in _plain_rows(kd)]


@pytest.mark.parametrize("path", CORPUS_KERNEL_CSVS, ids=lambda p: str(p.relative_to(ASCEND)))
def test_corpus_kernel_rows_become_these_slices(path: Path, tmp_path: Path) -> None:
    staging = Staging(tmp_path, path.stat().st_size, threads=1)
    try:
        assert kernel_csv.load_kernels(staging, [path])
        _check(staging.arrow["kd"])
    finally:
        staging.con.close()


_TEXT = st.one_of(st.none(), st.sampled_from(["AI_CORE", "AI_VECTOR_CORE", "HCCL", "MIX_AIC", "2"]))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.one_of(st.none(), st.integers(0, 15)),
            st.one_of(st.none(), st.integers(-1, 2**40)),
            _TEXT,
        ),
        max_size=30,
    ),
    st.booleans(),
)
def test_generated_rows_become_these_slices(rows: list[tuple], as_dictionaries: bool) -> None:
    count = len(rows)
    core = pa.array([r[3] for r in rows], pa.string())
    kd = pa.table(
        {
            "slice_id": pa.array(range(count), pa.int64()),
            "ts_ns": pa.array([1000 * i for i in range(count)], pa.int64()),
            "dur_ns": pa.array([7] * count, pa.int64()),
            "name": pa.array([f"op{i % 3}" for i in range(count)], pa.string()),
            "core": core.dictionary_encode() if as_dictionaries else core,
            "is_comm": pa.array([r[0] for r in rows], pa.bool_()),
            "device_id": pa.array([r[1] for r in rows], pa.int32()),
            "stream": pa.array([r[2] for r in rows], pa.int64()),
            "step": pa.array([None] * count, pa.int64()),
            "input_shapes": pa.array(['"1,2"'] * count, pa.string()),
            "input_dtypes": pa.array([None] * count, pa.string()),
        }
    )
    _check(kd)
