"""How the store's views read part files (engine.connect): by the first file's columns when every store is of this
model version (every format writes one schema per table), united by name otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import small_kineto_events, write_kineto

from traceview import engine
from traceview.parsers.model import MODEL_VERSION, TABLES
from traceview.store import ingest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"


def test_every_format_writes_one_schema_per_table(tmp_path: Path) -> None:
    """Kineto (GPU, CPU, gloo) and Ascend part files in one store: each table's files have the model's columns."""
    inputs = [SAMPLES / name for name in ("real_h200", "real_cpu", "real_gloo", "longctx_910b", "cluster_ascend")]
    store = ingest(inputs, tmp_path / "all.traceview").store
    formats = {item["format"] for item in json.loads((store / "manifest.json").read_text())["inputs"]}
    assert len(formats) >= 2, formats
    for table, schema in TABLES.items():
        parts = sorted((store / table).glob("*.parquet"))
        assert parts, table
        for part in parts:
            assert pq.read_schema(part).names == schema.names, f"{table}/{part.name}"


def two_stores(tmp_path: Path, old_version: str) -> tuple[Path, Path]:
    """A store of this version and one whose manifest says `old_version` and whose slices lack `args`."""
    new = ingest([write_kineto(tmp_path / "a.json", small_kineto_events())], tmp_path / "new.traceview").store
    old = ingest([write_kineto(tmp_path / "b.json", small_kineto_events(12))], tmp_path / "old.traceview").store
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "model_version": old_version}))
    part = next((old / "slices").glob("*.parquet"))
    pq.write_table(pq.read_table(part).drop_columns(["args"]), part)
    return new, old


def test_a_store_of_another_model_version_is_united_by_name(tmp_path: Path) -> None:
    """The old store's slices come with `args` NULL, the new one's as they are."""
    new, old = two_stores(tmp_path, old_version="0")
    old_id = json.loads((old / "manifest.json").read_text())["inputs"][0]["trace_id"]
    per_store = "SELECT trace_id = $1 AS old, count(*), count(args) FROM slices GROUP BY ALL ORDER BY old"
    new_only = engine.connect(new).execute(per_store, [old_id]).fetchall()
    old_rows = pq.read_table(next((old / "slices").glob("*.parquet"))).num_rows
    assert new_only[0][2] > 0
    assert engine.connect([new, old]).execute(per_store, [old_id]).fetchall() == [*new_only, (True, old_rows, 0)]


def test_a_part_file_that_differs_fails_the_query_rather_than_changing_it(tmp_path: Path) -> None:
    """The same damage under a manifest that claims this model version: a loud error, not rows without `args`."""
    new, old = two_stores(tmp_path, old_version=MODEL_VERSION)
    with pytest.raises(duckdb.Error, match="args"):
        engine.connect([new, old]).sql("SELECT count(args) FROM slices").fetchall()
