"""parsers.parsed: DuckDB sources written to Parquet, in order or not."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from traceview.parsers.model import TABLES
from traceview.parsers.parsed import DuckDBSource, RowGroupSource


@pytest.mark.parametrize("keep_order", [True, False])
def test_duckdb_source_writes_every_row_and_leaves_the_order_setting_alone(tmp_path: Path, keep_order: bool) -> None:
    con = duckdb.connect(config={"threads": 2})
    con.execute("SET preserve_insertion_order = true")
    query = (
        "SELECT kind, CAST(range AS VARCHAR) AS pid, NULL AS tid, 'k' AS key, repeat('v', 200) AS value"
        " FROM (SELECT 'thread' AS kind, range FROM range(300000))"
    )
    source = DuckDBSource(TABLES["metadata"], con, query, "t1", 3, row_group_rows=10_240, keep_order=keep_order)
    out = tmp_path / "m.parquet"
    assert source.write_parquet(out) == 300_000
    rows = duckdb.sql(f"SELECT pid FROM read_parquet('{out}')").fetchall()
    assert sorted(int(r[0]) for r in rows) == list(range(300_000))
    if keep_order:
        assert [int(r[0]) for r in rows] == list(range(300_000))
    assert con.sql("SELECT current_setting('preserve_insertion_order')").fetchall() == [(True,)]


def test_row_group_source_writes_each_table_as_one_row_group(tmp_path: Path) -> None:
    """trace_id and rank are added, the rest cast to the schema; args is plain text without statistics, the
    integers delta-encoded, the other strings dictionary-encoded."""
    schema = TABLES["flows"]  # trace_id, rank, kind, flow_id, src_slice_id, dst_slice_id
    parts = [
        pa.table({"kind": ["ac2g"] * n, "flow_id": [str(i) for i in range(n)], "src_slice_id": list(range(n)),
                  "dst_slice_id": pa.array([None] * n, pa.int32())})
        for n in (3, 0, 5)
    ]
    out = tmp_path / "f.parquet"
    assert RowGroupSource(schema, lambda: iter(parts), "t1", 4, free_text=("flow_id",)).write_parquet(out) == 8
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 5]
    columns = {meta.schema.column(i).name: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in columns["src_slice_id"].encodings
    assert "RLE_DICTIONARY" in columns["kind"].encodings
    assert "RLE_DICTIONARY" not in columns["flow_id"].encodings and not columns["flow_id"].is_stats_set
    rows = duckdb.sql(f"SELECT * FROM read_parquet('{out}')").fetchall()
    assert rows[0] == ("t1", 4, "ac2g", "0", 0, None) and len(rows) == 8
    assert pq.read_schema(out) == schema
