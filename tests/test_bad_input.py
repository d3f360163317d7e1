"""Inputs that are not traces: exit code 2 and exactly one `Error: <path>: <message>` line."""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import KINETO_CORPUS, NOT_CHROME
from typer.testing import CliRunner

from traceview.cli import app

runner = CliRunner()
TINY = '{"traceEvents": [{"ph": "X", "name": "a", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 1, "dur": 1}]}'


def _random_bytes(tmp: Path) -> Path:
    data = random.Random(1234).randbytes(4096)
    assert data[:1] not in (b"{", b"[") and data[:2] != b"\x1f\x8b"
    path = tmp / "random.json"
    path.write_bytes(data)
    return path


def _csv(tmp: Path) -> Path:
    path = tmp / "kernels.csv"
    path.write_text("name,ts,dur\nvoid gemm(),1712195495519689.047,4.4\n")
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.json"
    path.write_bytes(b"")
    return path


def _empty_gz(tmp: Path) -> Path:
    path = tmp / "empty.json.gz"
    path.write_bytes(gzip.compress(b"", mtime=0))
    return path


def _dir_nothing_known(tmp: Path) -> Path:
    path = tmp / "dump"
    (path / "logs").mkdir(parents=True)
    (path / "README.txt").write_text("profiling run\n")
    (path / "logs" / "stats.csv").write_text("a,b\n1,2\n")
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "no_such_trace.json.gz"


def _object_without_events(tmp: Path) -> Path:
    path = tmp / "config.json"
    path.write_text('{\n  "schemaVersion": 1,\n  "deviceProperties": [],\n  "displayTimeUnit": "ms"\n}\n')
    return path


def _gz_object_without_events(tmp: Path) -> Path:
    path = tmp / "config.json.gz"
    path.write_bytes(gzip.compress(b'{"name": "run", "steps": [1, 2]}', mtime=0))
    return path


def _events_without_phase(tmp: Path) -> Path:
    path = tmp / "nophase.json"
    path.write_text('{"traceEvents": [{"name": "a", "ts": 1}, {"name": "b", "ts": 2}]}')
    return path


def _events_not_array(tmp: Path) -> Path:
    path = tmp / "notarray.json"
    path.write_text('{"traceEvents": {"ph": "X"}}')
    return path


def _array_of_numbers(tmp: Path) -> Path:
    path = tmp / "numbers.json"
    path.write_text("[1, 2, 3]")
    return path


def _time_beyond_int64_ns(tmp: Path) -> Path:
    path = tmp / "far.json"
    event = '{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 9223372036854775.808, "dur": 1}'
    path.write_text('{"traceEvents": [' + event + "]}")
    return path


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "time_beyond_int64_ns": (
        _time_beyond_int64_ns,
        "expected ts and dur that fit int64 nanoseconds (under 292 years), found larger ones",
    ),
    "events_not_array": (
        _events_not_array,
        "expected a Chrome/Kineto JSON trace with traceEvents, found traceEvents holding an object, not an array",
    ),
    "array_of_numbers": (_array_of_numbers, "expected trace events (JSON objects), found a JSON array of numbers"),
    "random_bytes": (_random_bytes, "expected a Chrome/Kineto JSON trace (.json or .json.gz), found binary data"),
    "csv": (
        _csv,
        "expected a Chrome/Kineto JSON trace (.json or .json.gz), found text starting with 'name,ts,dur'",
    ),
    "empty_file": (_empty, "expected a Chrome/Kineto JSON trace (.json or .json.gz), found an empty file"),
    "empty_gzip": (
        _empty_gz,
        "expected a Chrome/Kineto JSON trace (.json or .json.gz), found an empty or damaged gzip stream",
    ),
    "dir_nothing_known": (
        _dir_nothing_known,
        "expected a directory with traces (Kineto .json or .json.gz, torch_npu *_ascend_pt dumps,"
        " msprof PROF_* collections, Ascend .db or .csv exports), found none",
    ),
    "missing": (_missing, "no such file or directory"),
    "object_without_traceEvents": (
        _object_without_events,
        "expected a Chrome/Kineto JSON trace with traceEvents, found a JSON object with keys"
        " ['deviceProperties', 'displayTimeUnit', 'schemaVersion']",
    ),
    "gz_object_without_traceEvents": (
        _gz_object_without_events,
        "expected a Chrome/Kineto JSON trace with traceEvents, found a JSON object with keys ['name', 'steps']",
    ),
    "events_without_ph": (
        _events_without_phase,
        "expected trace events with a 'ph' field, found JSON objects without one",
    ),
}


def _assert_one_error_line(result: object, path: Path, message: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    assert result.stderr == f"Error: {path}: {message}\n"  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["ingest", "query"])
def test_garbage_input_is_one_error_line(case: str, command: str, tmp_path: Path) -> None:
    """ingest and query refuse garbage with exit 2 and `Error: <path>: <message>`, nothing else."""
    make, message = CASES[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    path = make(inputs)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    if command == "ingest":
        args = ["ingest", str(path), "-o", str(tmp_path / "out.traceview")]
    else:
        args = ["query", str(path), "select count(*) from slices", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, args)
    _assert_one_error_line(result, path, message)
    assert not (tmp_path / "out.traceview").exists()
    left = [p for p in sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) if p not in before]
    assert all(p.parts[0] == "cache" and len(p.parts) == 1 for p in left), left


@pytest.mark.parametrize("rel", sorted(NOT_CHROME))
def test_non_chrome_corpus_file_cli(rel: str, tmp_path: Path) -> None:
    """The CLI names the Chakra execution trace and the memory-timeline export in one line."""
    path = KINETO_CORPUS / rel
    result = runner.invoke(app, ["ingest", str(path), "-o", str(tmp_path / "o.traceview")])
    _assert_one_error_line(result, path, NOT_CHROME[rel])


def test_store_given_as_input_is_refused(tmp_path: Path) -> None:
    """Ingesting a store is a one-line error, not a nested store."""
    trace = tmp_path / "t.json"
    trace.write_text(TINY)
    store = tmp_path / "t.traceview"
    assert runner.invoke(app, ["ingest", str(trace), "-o", str(store)]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(store), "-o", str(tmp_path / "again.traceview")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {store}: is already a traceview store; give the trace files instead\n"


def test_directory_of_non_traces_reports_the_reasons(tmp_path: Path) -> None:
    """A directory whose JSON files are not traces: one line naming the files and what was wrong."""
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "a.json").write_text('{"nodes": []}')
    result = runner.invoke(app, ["ingest", str(dump), "-o", str(tmp_path / "o.traceview")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {dump / 'a.json'}: no readable trace found (a.json: expected a Chrome/Kineto JSON trace"
        " with traceEvents, found a JSON object with keys ['nodes'])\n"
    )


def test_output_that_is_not_a_store_is_not_overwritten(tmp_path: Path) -> None:
    """-o pointing at a non-empty directory that is not a store is refused and left alone."""
    trace = tmp_path / "t.json"
    trace.write_text(TINY)
    out = tmp_path / "precious"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    result = runner.invoke(app, ["ingest", str(trace), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {out}: exists and is not a traceview store; refusing to overwrite it\n"
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".precious")]
