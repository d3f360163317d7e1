"""The `traceview` command line: query output, schema, ingest summaries, the Python API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import (
    KINETO_CORPUS,
    chrome_corpus_files,
    load_trace,
    small_kineto_events,
    trace_events,
    write_kineto,
    x_event_indices,
)
from typer.testing import CliRunner

import traceview
from traceview.cli import app
from traceview.engine import CONVENIENCE_VIEWS
from traceview.parsers.model import TABLES

runner = CliRunner()
KIND_COUNTS = "select kind, count(*) from slices group by 1"
QUERY_TRACES = [
    "hta/trace_compare/base/base.json.gz",
    "hta/trace_file_list/inference_rank_1.json.gz",
    "hta/amd_trace/mi250_minitoy_train_ROCm6_2_kineto.json.gz",
    "hta/mtia_inference_trace/mtia_inference_rank_0.json.gz",
    "hta/ns_resolution_trace/rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz",
    "nano-vllm/decode_gpu_0.json",
    "tracelens/b200/eager_trace.json.gz",
]


def invoke(*args: str) -> Any:
    """Run the CLI in-process; stdout and stderr are kept apart."""
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("rel", QUERY_TRACES)
def test_query_json_counts_add_up_to_complete_events(rel: str, tmp_path: Path) -> None:
    """`traceview query TRACE ... --format json` gives row objects whose counts sum to the X events."""
    assert rel in chrome_corpus_files()
    path = KINETO_CORPUS / rel
    result = invoke("query", str(path), KIND_COUNTS, "--format", "json", "--cache-dir", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and rows
    assert all(isinstance(row, dict) and set(row) == {"kind", "count_star()"} for row in rows)
    kinds = [row["kind"] for row in rows]
    assert len(kinds) == len(set(kinds))
    assert sum(row["count_star()"] for row in rows) == len(x_event_indices(trace_events(load_trace(path))))
    assert not (path.parent / f"{path.name}.traceview").exists()


def test_query_reuses_the_cached_store(tmp_path: Path) -> None:
    """A second query of the same trace reads the cache store built by the first."""
    path = KINETO_CORPUS / QUERY_TRACES[0]
    first = invoke("query", str(path), "select count(*) as n from slices", "-f", "csv", "--cache-dir", str(tmp_path))
    stores = sorted(tmp_path.iterdir())
    assert len(stores) == 1 and (stores[0] / "manifest.json").is_file()
    mtime = (stores[0] / "manifest.json").stat().st_mtime_ns
    second = invoke("query", str(path), "select count(*) as n from slices", "-f", "csv", "--cache-dir", str(tmp_path))
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout == "n\n33\n"
    assert (stores[0] / "manifest.json").stat().st_mtime_ns == mtime


def test_query_output_file_and_table_format(tmp_path: Path) -> None:
    """`-o FILE` writes the rendering to FILE; the default table rendering names the columns."""
    trace = write_kineto(tmp_path / "t.json", small_kineto_events(3))
    out = tmp_path / "result.json"
    result = invoke("query", str(trace), KIND_COUNTS, "-f", "json", "-o", str(out), "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 0 and result.stdout == ""
    rows = json.loads(out.read_text())
    assert sum(row["count_star()"] for row in rows) == 6
    table = invoke("query", str(trace), "select name from slices order by slice_id", "--cache-dir", str(tmp_path / "c"))
    assert table.exit_code == 0
    assert "name" in table.stdout and "ProfilerStep#7" in table.stdout and "gemm_kernel" in table.stdout


def test_query_sql_error_is_one_line(tmp_path: Path) -> None:
    """A bad query is a user error: exit 2, one `Error: query failed: ...` line."""
    trace = write_kineto(tmp_path / "t.json", small_kineto_events(2))
    result = invoke("query", str(trace), "select nope from slices", "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: query failed: ")
    assert "Traceback" not in result.output


def test_schema_prints_every_table_and_column() -> None:
    """`traceview schema`: one line per table, per column (table.column) and per convenience view."""
    result = invoke("schema")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    firsts = [line.split()[0] for line in lines]
    expected = []
    for table, schema in TABLES.items():
        expected.append(table)
        expected += [f"{table}.{name}" for name in schema.names]
    assert firsts[: len(expected)] == expected
    views = lines[len(expected) :]
    assert all(line.split()[1] == "view" for line in views), views
    assert set(CONVENIENCE_VIEWS) <= {line.split()[0] for line in views}
    assert all(lines[firsts.index(table)].split()[1] == "table" for table in TABLES)
    for line in lines:
        name = line.split()[0]
        if "." in name:
            table, column = name.split(".", 1)
            assert str(TABLES[table].field(column).type) in line
            assert len(line.split()) >= 3, f"no description: {line}"


def test_version() -> None:
    """`--version` prints the package version."""
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"traceview {traceview.__version__}"


def test_ingest_cli_summary_reused_and_forced(tmp_path: Path) -> None:
    """ingest says `wrote`, then `reused` for unchanged input, then `wrote` again with --force."""
    trace = write_kineto(tmp_path / "run.json", small_kineto_events(4))
    out = tmp_path / "run.traceview"
    first = invoke("ingest", str(trace), "-o", str(out))
    assert first.exit_code == 0, first.stderr
    assert first.stdout == f"wrote {out} (1 trace, 7 slices)\n"
    again = invoke("ingest", str(trace), "-o", str(out))
    assert again.exit_code == 0 and again.stdout.startswith("reused ")
    assert again.stdout == f"reused {out} (1 trace, 7 slices)\n"
    forced = invoke("ingest", str(trace), "-o", str(out), "--force")
    assert forced.exit_code == 0 and forced.stdout.startswith("wrote ")


def test_python_api_returns_polars(tmp_path: Path) -> None:
    """`traceview.open(path).sql(...)` returns a polars DataFrame, for a trace file or a store."""
    trace = write_kineto(tmp_path / "api.json", small_kineto_events(3))
    with traceview.open(trace, cache_dir=tmp_path / "cache") as session:
        frame = session.sql("select count(*) as n from kernels")
        assert isinstance(frame, pl.DataFrame)
        assert frame.to_dicts() == [{"n": 1}]
        store = session.store
        assert session.manifest["tables"]["slices"] == 6
        params = session.sql("select name from slices where dur_ns > ? order by slice_id", [5000])
        assert params["name"].to_list() == ["ProfilerStep#7", "aten::op0", "aten::op1", "aten::op2"]
    with traceview.open(store) as session:
        assert isinstance(session.sql("select * from ops"), pl.DataFrame)
        assert session.sql("select count(*) as n from annotations").item() == 1


def test_real_process_error_has_no_traceback(tmp_path: Path) -> None:
    """In a real process a bad input gives exit 2 and exactly one stderr line."""
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    proc = subprocess.run(
        [sys.executable, "-m", "traceview", "ingest", str(bad), "-o", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        f"Error: {bad}: expected a Chrome/Kineto JSON trace (.json or .json.gz), found text starting with 'hello'\n"
    )
