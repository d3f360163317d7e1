"""The stored order of `slices`: grouped by what reads them (parsers.slice_order)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import CORPUS, KINETO_CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st

from traceview.parsers.slice_order import GROUP_SQL, GROUPS, ROW_GROUP_ROWS, row_group_rows, row_groups
from traceview.store import ingest


def _reader(codes: list[int], cuts: list[int]) -> pa.RecordBatchReader:
    table = pa.table({"slice_id": list(range(len(codes))), "slice_group": pa.array(codes, type=pa.int8())})
    edges = [0, *sorted({c for c in cuts if 0 < c < len(codes)}), len(codes)]
    batches = [b for a, z in zip(edges, edges[1:], strict=False) for b in table.slice(a, z - a).to_batches()]
    return pa.RecordBatchReader.from_batches(table.schema, batches)


@settings(max_examples=80, deadline=None)
@given(
    codes=st.lists(st.integers(min_value=0, max_value=len(GROUPS) - 1), max_size=400),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
    rows_per_group=st.integers(min_value=1, max_value=50),
)
def test_row_groups_are_full_and_of_one_group_in_arrival_order(
    codes: list[int], cuts: list[int], rows_per_group: int
) -> None:
    runs: list[tuple[int, list[int]]] = []
    for table in row_groups(_reader(codes, cuts), "slice_group", rows_per_group):
        groups = set(table.column("slice_group").to_pylist())
        assert len(groups) == 1 and 0 < table.num_rows <= rows_per_group
        runs.append((groups.pop(), table.column("slice_id").to_pylist()))
    last_run = {group: index for index, (group, _) in enumerate(runs)}
    for index, (group, ids) in enumerate(runs):  # only a group's last row group may be short
        assert len(ids) == rows_per_group or index == last_run[group]
    seen: dict[int, list[int]] = {}
    for group, ids in runs:
        seen.setdefault(group, []).extend(ids)
    expected: dict[int, list[int]] = {}
    for slice_id, group in enumerate(codes):
        expected.setdefault(group, []).append(slice_id)
    assert seen == expected


def _runs(tables: object) -> list[list[int]]:
    return [table.column("slice_id").to_pylist() for table in tables]  # type: ignore[attr-defined]


@settings(max_examples=80, deadline=None)
@given(
    codes=st.lists(st.integers(min_value=0, max_value=len(GROUPS) - 1), max_size=400),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
    rows_per_group=st.integers(min_value=1, max_value=50),
    emit_every=st.integers(min_value=1, max_value=120),
)
def test_row_groups_come_in_the_same_order_whatever_the_batches_with_emit_every(
    codes: list[int], cuts: list[int], rows_per_group: int, emit_every: int
) -> None:
    # The order of batches of `emit_every` rows, from a reader cut anywhere (the Kineto parser streams small
    # batches, whose sizes DuckDB chooses, to hold less memory).
    even = list(range(emit_every, len(codes), emit_every))
    expected = _runs(row_groups(_reader(codes, even), "slice_group", rows_per_group))
    got = _runs(row_groups(_reader(codes, cuts), "slice_group", rows_per_group, emit_every=emit_every))
    assert got == expected


def test_group_sql_puts_each_kind_of_slice_in_its_group() -> None:
    rows = [("cuda", "kernel", 0), ("npu", "comm", 0), ("cuda", "annotation", 0), ("cpu", "runtime", 1),
            ("cpu", "driver", 1), ("cpu", "cpu_op", 2), ("cpu", "python", 3), ("cpu", "step", 3)]
    values = ", ".join(f"('{d}', '{k}', {g})" for d, k, g in rows)
    got = duckdb.sql(f"SELECT {GROUP_SQL} AS g, expected FROM (VALUES {values}) t(device_type, kind, expected)")
    assert [(g, e) for g, e in got.fetchall() if g != e] == []


def _stored_runs(store: Path) -> list[tuple[int, int, list[int]]]:
    """(group, rows, slice ids) of each run of one group in the stored order of `slices`."""
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    rows = con.execute(f"SELECT {GROUP_SQL}, slice_id FROM read_parquet('{store}/slices/*.parquet')").fetchall()
    runs: list[tuple[int, int, list[int]]] = []
    for group, slice_id in rows:
        if runs and runs[-1][0] == group:
            runs[-1][2].append(slice_id)
        else:
            runs.append((group, 0, [slice_id]))
    return [(group, len(ids), ids) for group, _, ids in runs]


def _assert_grouped(store: Path, slices: int) -> None:
    rows_per_group = row_group_rows(slices)
    runs = _stored_runs(store)
    assert len({group for group, _, _ in runs}) >= 2
    last_run = {group: index for index, (group, _, _) in enumerate(runs)}
    for index, (group, rows, ids) in enumerate(runs):
        assert ids == sorted(ids), f"group {group}: slice ids out of order"
        assert rows % rows_per_group == 0 or index == last_run[group], f"group {group}: a short run mid-file"
    all_ids = [slice_id for _, _, ids in runs for slice_id in ids]
    for group in last_run:  # each group's rows, in slice_id order across its runs
        ids = [slice_id for g, _, run in runs if g == group for slice_id in run]
        assert ids == sorted(ids)
    assert len(all_ids) == len(set(all_ids))
    for part in (store / "slices").glob("*.parquet"):  # each Parquet row group holds one group
        con = duckdb.connect()
        file = pq.ParquetFile(part)
        for index in range(file.num_row_groups):
            con.register("row_group", file.read_row_group(index, columns=["device_type", "kind"]))
            assert con.execute(f"SELECT count(DISTINCT {GROUP_SQL}) FROM row_group").fetchall() == [(1,)]


def test_a_kineto_store_keeps_its_slices_grouped(tmp_path: Path) -> None:
    store = tmp_path / "k.traceview"
    result = ingest([KINETO_CORPUS / "hta" / "nccl_parser_config" / "nccl_data.json.gz"], store)
    _assert_grouped(store, result.manifest["tables"]["slices"])


def test_an_ascend_store_keeps_its_slices_grouped(tmp_path: Path) -> None:
    store = tmp_path / "a.traceview"
    result = ingest([CORPUS / "ascend" / "torch_npu_2025_text" / "level2"], store)
    _assert_grouped(store, result.manifest["tables"]["slices"])


def test_row_groups_shrink_for_small_traces_down_to_a_floor() -> None:
    assert row_group_rows(10_000_000) == ROW_GROUP_ROWS
    assert row_group_rows(700_000) == 45_056  # 700,000 / 16 rounded up to whole 2,048-row vectors
    assert row_group_rows(27_000) == 16_384
    assert row_group_rows(0) == 16_384
