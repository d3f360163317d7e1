"""parsers.parsed: DuckDB sources written to Parquet, in order or not."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from parsers.model import TABLES
from parsers.parsed import DuckDBSource


@pytest.mark.parametrize("keep_order", [True, False])
def test_duckdb_source_writes_every_row_and_puts_the_order_setting_back(tmp_path: Path, keep_order: bool) -> None:
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
