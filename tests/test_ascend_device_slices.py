"""A lone kernel table (no timeline) is written straight from Arrow: its slices nested in place of
DuckDB's join and sort (`Staging._lone_device_slices`), its metrics rows taken from the table
(`kernel_csv.metrics_table`) in place of `kernel_csv.metrics_query`. The files must hold what the
DuckDB paths would write: the same slices in the same order and row groups, the same metrics rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ascend_support import ASCEND

from traceview.parsers.ascend import kernel_csv
from traceview.parsers.ascend.staging import Staging
from traceview.store import ingest

KERNELS = ASCEND / "torch_npu_cann83_level2/rank_0_ascend_pt/ASCEND_PROFILER_OUTPUT/kernel_details.csv"
# Memory metric set: bandwidth columns that only the `metrics` JSON holds.
MEMORY_SET = ASCEND / "msinsight_server/test_kernel_parse/op_summary_1.csv"


def _slices(store: Path) -> tuple[list[dict], list[int]]:
    (part,) = (store / "slices").glob("*.parquet")
    file = pq.ParquetFile(part)
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)]
    return file.read().to_pylist(), sizes


def _metrics(store: Path) -> tuple[list[dict], pa.Schema]:
    (part,) = (store / "npu_kernel_metrics").glob("*.parquet")
    table = pq.read_table(part)
    return sorted(table.to_pylist(), key=lambda row: row["slice_id"]), table.schema


def test_arrow_written_slices_equal_duckdb_written_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    arrow_path = Staging._lone_device_slices

    def spy(self: Staging):
        table = arrow_path(self)
        calls.append(table is not None)
        return table

    monkeypatch.setattr(Staging, "_lone_device_slices", spy)
    arrow_rows, arrow_groups = _slices(ingest([KERNELS], tmp_path / "arrow.traceview").store)
    monkeypatch.setattr(Staging, "_lone_device_slices", lambda self: None)
    duck_rows, duck_groups = _slices(ingest([KERNELS], tmp_path / "duckdb.traceview").store)
    assert calls == [True], "the kernel table's slices took the Arrow path"
    assert len(arrow_rows) == 2463
    assert arrow_rows == duck_rows
    assert arrow_groups == duck_groups


@pytest.mark.parametrize("path", [KERNELS, MEMORY_SET], ids=["pipe_utilization", "memory_set"])
def test_arrow_written_metrics_equal_duckdb_written_ones(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrow_rows, arrow_schema = _metrics(ingest([path], tmp_path / "arrow.traceview").store)
    metrics_source = Staging._metrics_source

    def by_query(self: Staging, *args):
        assert self.metrics_arrow is not None, "a lone kernel table's metrics are given as Arrow"
        self.metrics_arrow, self.metrics_query = None, kernel_csv.metrics_query(self)
        return metrics_source(self, *args)

    monkeypatch.setattr(Staging, "_metrics_source", by_query)
    duck_rows, duck_schema = _metrics(ingest([path], tmp_path / "duckdb.traceview").store)
    # Types as read back (DuckDB marks its constant `metrics` column required: nullability may differ).
    assert [(f.name, f.type) for f in arrow_schema] == [(f.name, f.type) for f in duck_schema]
    assert len(arrow_rows) > 20
    assert any(row["metrics"] != "{}" for row in arrow_rows) == (path == MEMORY_SET)
    assert arrow_rows == duck_rows
