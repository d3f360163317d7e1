"""A lone kernel table's slices are written straight from Arrow (`Staging._device_slices_in_order`);
the file must be the one DuckDB's join and sort would write: same rows, same order, same row groups."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ascend_support import ASCEND

from parsers.ascend.staging import Staging
from traceview.store import ingest

KERNELS = ASCEND / "torch_npu_cann83_level2/rank_0_ascend_pt/ASCEND_PROFILER_OUTPUT/kernel_details.csv"


def _slices(store: Path) -> tuple[list[dict], list[int]]:
    (part,) = (store / "slices").glob("*.parquet")
    file = pq.ParquetFile(part)
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)]
    return file.read().to_pylist(), sizes


def test_arrow_written_slices_equal_duckdb_written_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    arrow_path = Staging._device_slices_in_order

    def spy(self: Staging):
        table = arrow_path(self)
        calls.append(table is not None)
        return table

    monkeypatch.setattr(Staging, "_device_slices_in_order", spy)
    arrow_rows, arrow_groups = _slices(ingest([KERNELS], tmp_path / "arrow.traceview").store)
    monkeypatch.setattr(Staging, "_device_slices_in_order", lambda self: None)
    duck_rows, duck_groups = _slices(ingest([KERNELS], tmp_path / "duckdb.traceview").store)
    assert calls == [True], "the kernel table's slices took the Arrow path"
    assert len(arrow_rows) == 2463
    assert arrow_rows == duck_rows
    assert arrow_groups == duck_groups
