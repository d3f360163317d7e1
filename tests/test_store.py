"""The Parquet store: layout, readers, reuse, rank directories, and never writing into the input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import KINETO_CORPUS, small_kineto_events, store_rows, write_kineto
from typer.testing import CliRunner

from traceview.cli import app
from traceview.errors import UserError
from traceview.parsers.model import TABLES
from traceview.store import ingest

runner = CliRunner()
TRACE_FILTER = KINETO_CORPUS / "hta/trace_filter"
SMALL = KINETO_CORPUS / "hta/trace_compare/base/base.json.gz"


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root` with a hash of its content (files) or its mode (directories)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            out[rel + "/"] = oct(stat.S_IMODE(path.stat().st_mode))
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() + oct(stat.S_IMODE(path.stat().st_mode))
    return out


def test_layout_manifest_and_one_part_per_table(tmp_path: Path) -> None:
    """manifest.json plus one folder per model table, each holding part-<trace_id>.parquet only."""
    out = tmp_path / "run.traceview"
    result = ingest([TRACE_FILTER], out)
    assert result.store == out and not result.reused
    manifest = json.loads((out / "manifest.json").read_text())
    ids = sorted(item["trace_id"] for item in manifest["inputs"])
    assert len(ids) == 2 and len(set(ids)) == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.json", *TABLES])
    for table in TABLES:
        assert sorted(p.name for p in (out / table).iterdir()) == [f"part-{i}.parquet" for i in ids], table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.traceview"]  # no staging leftovers
    for table, count in manifest["tables"].items():
        assert len(store_rows(out, table, "1")) == count, table


def test_parquet_readable_by_duckdb_and_polars_with_model_schema(tmp_path: Path) -> None:
    """Every part file opens with duckdb read_parquet and polars.read_parquet and has the model's columns."""
    out = tmp_path / "s.traceview"
    ingest([SMALL], out)
    for table, schema in TABLES.items():
        for part in (out / table).glob("*.parquet"):
            assert pq.read_schema(part).remove_metadata().names == schema.names
            assert [f.type for f in pq.read_schema(part)] == [f.type for f in schema], table
            frame = pl.read_parquet(part)
            assert frame.columns == schema.names
            with duckdb.connect() as con:
                n = con.sql(f"SELECT count(*) FROM read_parquet('{part}')").fetchall()
            assert n == [(frame.height,)]
    assert pl.read_parquet(out / "slices" / "*.parquet").height == 33


def test_reuse_then_force_then_changed_input(tmp_path: Path) -> None:
    """Unchanged input is reused; --force rebuilds; a modified input rebuilds without --force."""
    trace = write_kineto(tmp_path / "t.json", small_kineto_events(3))
    out = tmp_path / "t.traceview"
    first = ingest([trace], out)
    assert not first.reused
    created = (out / "manifest.json").read_text()
    again = ingest([trace], out)
    assert again.reused and (out / "manifest.json").read_text() == created
    cli = runner.invoke(app, ["ingest", str(trace), "-o", str(out)])
    assert cli.exit_code == 0 and cli.stdout.startswith("reused ")
    forced = runner.invoke(app, ["ingest", str(trace), "-o", str(out), "--force"])
    assert forced.exit_code == 0 and forced.stdout.startswith("wrote ")
    write_kineto(trace, small_kineto_events(5))
    changed = ingest([trace], out)
    assert not changed.reused
    assert len(store_rows(out, "slices", "1")) == 8


def test_rank_directory_becomes_one_store_with_two_ranks(tmp_path: Path) -> None:
    """hta/trace_filter/ (sampled_rank-0 and -1) is one store with ranks 0 and 1 in traces and slices."""
    out = tmp_path / "ranks.traceview"
    result = runner.invoke(app, ["ingest", str(TRACE_FILTER), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out} (2 traces, ")
    assert store_rows(out, "traces", "rank, world_size, slice_count", "ORDER BY rank") == [
        (0, 128, 4811), (1, 128, 4676)
    ]
    assert store_rows(out, "slices", "rank, count(*)", "GROUP BY rank ORDER BY rank") == [(0, 4811), (1, 4676)]
    pairs = store_rows(out, "slices", "DISTINCT trace_id, rank")
    assert len(pairs) == 2 and {r for _, r in pairs} == {0, 1}


def test_two_files_as_arguments(tmp_path: Path) -> None:
    """Several files given on the command line also become one store."""
    files = sorted(TRACE_FILTER.iterdir())
    out = tmp_path / "two.traceview"
    result = ingest(files, out)
    assert len(result.manifest["inputs"]) == 2
    assert sorted(store_rows(out, "traces", "rank")) == [(0,), (1,)]


def test_store_inside_input_directory_is_refused(tmp_path: Path) -> None:
    """-o inside the dump directory is a one-line error and writes nothing there."""
    dump = tmp_path / "dump"
    shutil.copytree(TRACE_FILTER, dump)
    before = snapshot(dump)
    with pytest.raises(UserError, match="the store would be inside the input directory"):
        ingest([dump], dump / "inside.traceview")
    assert snapshot(dump) == before


@pytest.fixture()
def read_only_input(tmp_path: Path) -> Path:
    """A copy of a small trace in a read-only (0o555) directory; permissions restored at teardown."""
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy2(SMALL, ro / "base.json.gz")
    (ro / "base.json.gz").chmod(0o444)
    ro.chmod(0o555)
    yield ro
    ro.chmod(0o755)


def test_read_only_input_file_default_output_in_cwd(read_only_input: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`traceview ingest ro/base.json.gz` writes ./base.traceview and nothing into ro/."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TRACEVIEW_CACHE_DIR", str(tmp_path / "cache"))
    before = snapshot(read_only_input)
    result = runner.invoke(app, ["ingest", str(read_only_input / "base.json.gz")])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {work / 'base.traceview'} (1 trace, 33 slices)\n"
    assert snapshot(read_only_input) == before
    assert sorted(p.name for p in work.iterdir()) == ["base.traceview"]
    assert (work / "base.traceview" / "manifest.json").is_file()
    query = runner.invoke(app, ["query", str(read_only_input / "base.json.gz"), "select count(*) as n from slices",
                                "-f", "csv", "--cache-dir", str(tmp_path / "qcache")])
    assert query.exit_code == 0 and query.stdout == "n\n33\n"
    assert snapshot(read_only_input) == before


def test_read_only_input_directory_and_cwd_inside_it(read_only_input: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A dump directory as input: ./ro.traceview from outside; from inside the dump, the store goes to the cache."""
    work = tmp_path / "work"
    work.mkdir()
    cache = tmp_path / "cache"
    monkeypatch.setenv("TRACEVIEW_CACHE_DIR", str(cache))
    before = snapshot(read_only_input)
    monkeypatch.chdir(work)
    outside = runner.invoke(app, ["ingest", str(read_only_input)])
    assert outside.exit_code == 0, outside.stderr
    assert outside.stdout.startswith(f"wrote {work / 'ro.traceview'} (1 trace, 33 slices)")
    monkeypatch.chdir(read_only_input)
    inside = runner.invoke(app, ["ingest", "."])
    assert inside.exit_code == 0, inside.stderr
    written = Path(inside.stdout.split()[1])
    assert written.parent == cache and written.name.endswith(".traceview")
    assert snapshot(read_only_input) == before
    assert os.listdir(read_only_input) == ["base.json.gz"]


def test_manifest_records_inputs(tmp_path: Path) -> None:
    """The manifest names each input with its size, format, trace_id, rank and row counts."""
    out = tmp_path / "m.traceview"
    ingest([SMALL], out)
    manifest = json.loads((out / "manifest.json").read_text())
    (item,) = manifest["inputs"]
    assert item["path"] == str(SMALL.resolve())
    assert item["size"] == SMALL.stat().st_size
    assert item["format"] == "kineto"
    assert item["rank"] == 1
    assert item["rows"]["slices"] == 33 and item["rows"]["traces"] == 1
    assert manifest["model_version"] and manifest["traceview_version"]
    assert store_rows(out, "traces", "trace_id, rank, source_path") == [(item["trace_id"], 1, str(SMALL))]
