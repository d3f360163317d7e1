"""Untrusted Ascend dumps: never written to or through, gzip bombs capped, odd files and odd
`profiler_info` said in one line (exit 2) or a warning, never an internal error or a hang."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from ascend_support import ASCEND, query
from typer.testing import CliRunner

from traceview.cli import app
from traceview.parsers import detect
from traceview.parsers.ascend import layout
from traceview.parsers.limits import limits, set_limits
from traceview.store import _stat_key, content_hash, ingest

runner = CliRunner()
HEADER = "Step Id,Name,Type,Accelerator Core,Start Time(us),Duration(us),Wait Time(us),Block Dim\n"
KERNELS = (
    HEADER + "1,a,MatMul,AI_CORE,1736405443881410.320\t,50.621,0,0\n1,b,Add,AI_VECTOR_CORE,1736405443881500,2,0,0\n"
)
OTHER_KERNELS = HEADER + "1,z,MatMul,AI_CORE,1,3,0,0\n"


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A read that blocks (a FIFO opened) fails the test instead of hanging it."""

    def fail(*_: object) -> None:
        raise TimeoutError("blocked: something waited on a FIFO?")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def small_inflate_floor() -> Iterator[None]:
    """A 1 MiB floor, so that bombs of a few MiB are enough."""
    saved = limits()
    set_limits(inflate_floor_bytes=1 << 20)
    yield
    set_limits(max_inflate_ratio=saved.max_inflate_ratio, inflate_floor_bytes=saved.inflate_floor_bytes)


def _dump(tmp: Path, files: dict[str, bytes], info: object | None = None) -> Path:
    """A torch_npu rank dump: profiler_info_0.json and the given files under ASCEND_PROFILER_OUTPUT."""
    dump = tmp / "host_1_20250101_ascend_pt"
    out = dump / layout.OUTPUT_DIR
    out.mkdir(parents=True)
    info = {"config": {}, "rank_id": 0} if info is None else info
    (dump / "profiler_info_0.json").write_text(json.dumps(info))
    for name, data in files.items():
        (out / name).write_bytes(data)
    return dump


def _contents(root: Path) -> dict[str, bytes | str]:
    """Every entry under `root`: bytes of files, the target of links (never followed)."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_file():
            found[key] = path.read_bytes()
    return found


def _ingest_cli(dump: Path, tmp: Path) -> object:
    return runner.invoke(app, ["ingest", str(dump), "-o", str(tmp / "out.traceview")])


def _analyze_cli(dump: Path, tmp: Path) -> object:
    return runner.invoke(app, ["analyze", str(dump), "--cache-dir", str(tmp / "cache")])


# --- an input dump can overwrite the user's files -------------------------------------------------


def _gzip_k_dump(tmp: Path) -> Path:
    """`gzip -k` left both copies; the .gz differs, so a write of it over the plain file would show."""
    return _dump(
        tmp, {"kernel_details.csv": KERNELS.encode(), "kernel_details.csv.gz": gzip.compress(OTHER_KERNELS.encode())}
    )


def test_gunzipped_mirror_reads_the_plain_file_and_writes_only_scratch(tmp_path: Path) -> None:
    dump = _gzip_k_dump(tmp_path / "in")
    before = _contents(dump)
    (tmp_path / "scratch_root").mkdir()
    ignored: list[str] = []
    mirror = layout.gunzipped_mirror(dump, tmp_path / "scratch_root", ignored)
    assert _contents(dump) == before
    assert mirror.root.is_relative_to(tmp_path / "scratch_root")
    assert (mirror.root / layout.OUTPUT_DIR / "kernel_details.csv").read_text() == KERNELS
    assert ignored == [
        "both ASCEND_PROFILER_OUTPUT/kernel_details.csv and ASCEND_PROFILER_OUTPUT/kernel_details.csv.gz:"
        " read kernel_details.csv"
    ]


@pytest.mark.parametrize("command", [_ingest_cli, _analyze_cli])
def test_dump_with_x_and_x_gz_is_left_byte_identical(command: object, tmp_path: Path) -> None:
    dump = _gzip_k_dump(tmp_path / "in")
    before = _contents(dump)
    result = command(dump, tmp_path)  # type: ignore[operator]
    assert result.exit_code == 0, result.output
    assert _contents(dump) == before
    if command is _ingest_cli:
        assert (
            f"Warning: {dump}: both ASCEND_PROFILER_OUTPUT/kernel_details.csv and"
            " ASCEND_PROFILER_OUTPUT/kernel_details.csv.gz: read kernel_details.csv\n" in result.stderr
        )


def test_the_plain_file_is_what_is_read(tmp_path: Path) -> None:
    dump = _gzip_k_dump(tmp_path / "in")
    result = ingest([dump], tmp_path / "s.traceview")
    assert query(result.store, "SELECT name FROM slices WHERE kind = 'kernel' ORDER BY name") == [("a",), ("b",)]


def _dump_with_link_out(tmp: Path) -> tuple[Path, Path]:
    outside = tmp / "outside" / "precious.txt"
    outside.parent.mkdir(parents=True)
    outside.write_text("the user's own file\n")
    dump = _dump(tmp / "in", {"kernel_details.csv": KERNELS.encode(), "notes.txt.gz": gzip.compress(b"PAYLOAD\n")})
    (dump / layout.OUTPUT_DIR / "notes.txt").symlink_to(outside)
    return dump, outside


def test_mirror_never_writes_through_a_link_out_of_the_dump(tmp_path: Path) -> None:
    dump, outside = _dump_with_link_out(tmp_path)
    before = _contents(tmp_path)
    (tmp_path / "scratch").mkdir()
    ignored: list[str] = []
    mirror = layout.gunzipped_mirror(dump, tmp_path / "scratch", ignored)
    assert outside.read_text() == "the user's own file\n"
    assert {k: v for k, v in _contents(tmp_path).items() if not k.startswith("scratch")} == before
    assert "ASCEND_PROFILER_OUTPUT/notes.txt: leads outside the dump (through a link); not read" in ignored
    assert (mirror.root / layout.OUTPUT_DIR / "notes.txt").read_bytes() == b"PAYLOAD\n"


@pytest.mark.parametrize("command", [_ingest_cli, _analyze_cli])
def test_link_out_of_the_dump_beside_its_gz_changes_nothing(command: object, tmp_path: Path) -> None:
    dump, outside = _dump_with_link_out(tmp_path)
    before = _contents(tmp_path)
    result = command(dump, tmp_path / "work")  # type: ignore[operator]
    assert result.exit_code == 0, result.output
    assert outside.read_text() == "the user's own file\n"
    assert {k: v for k, v in _contents(tmp_path).items() if not k.startswith("work")} == before


def test_link_out_of_the_dump_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "kernel_details.csv"
    secret.parent.mkdir()
    secret.write_text(OTHER_KERNELS)
    dump = _dump(tmp_path / "in", {"step_trace_time.csv": b"Step,Computing\n"})
    (dump / layout.OUTPUT_DIR / "kernel_details.csv").symlink_to(secret)
    result = ingest([dump], tmp_path / "s.traceview")
    assert f"{dump}: ASCEND_PROFILER_OUTPUT/kernel_details.csv: leads outside the dump (through a link); not read" in (
        result.warnings
    )
    assert query(result.store, "SELECT count(*) FROM slices WHERE name = 'z'") == [(0,)]


def test_directory_link_out_of_the_dump_is_not_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "kernel_details.csv").write_text(OTHER_KERNELS)
    dump = tmp_path / "in" / "host_1_20250101_ascend_pt"
    dump.mkdir(parents=True)
    (dump / "profiler_info_0.json").write_text(json.dumps({"config": {}, "rank_id": 0}))
    (dump / layout.OUTPUT_DIR).symlink_to(elsewhere)
    sources = layout.collect(dump, layout.ASCEND_PT)
    assert sources.kernels == []
    assert sources.ignored == ["ASCEND_PROFILER_OUTPUT: leads outside the dump (through a link); not read"]


def test_link_inside_the_dump_is_read(tmp_path: Path) -> None:
    dump = _dump(tmp_path / "in", {})
    (dump / "kernels.csv").write_text(KERNELS)
    (dump / layout.OUTPUT_DIR / "kernel_details.csv").symlink_to(dump / "kernels.csv")
    result = ingest([dump], tmp_path / "s.traceview")
    assert query(result.store, "SELECT count(*) FROM slices WHERE kind = 'kernel'") == [(2,)]


# --- decompression bombs --------------------------------------------------------------------------


def test_kernel_csv_gz_bomb_is_one_error_line(tmp_path: Path, small_inflate_floor: None) -> None:
    bomb = gzip.compress(HEADER.encode() + b"0" * (8 << 20))
    dump = _dump(tmp_path / "in", {"kernel_details.csv.gz": bomb})
    result = _ingest_cli(dump, tmp_path)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"Error: {dump}: no readable trace found ({dump.name}: ASCEND_PROFILER_OUTPUT/kernel_details.csv.gz:"
        f" gzip data inflates past {len(bomb) * 200:,} bytes, the limit for {len(bomb):,} compressed bytes"
        " (200x, at least 1,048,576); a decompression bomb?"
        " Raise the limit with --max-inflate-ratio or TRACEVIEW_MAX_INFLATE_RATIO)\n"
    )
    assert not list((tmp_path).glob(".out.traceview.*"))


def test_many_small_gz_files_share_one_cap(tmp_path: Path, small_inflate_floor: None) -> None:
    part = gzip.compress(b"0" * (700 << 10))
    dump = _dump(tmp_path / "in", {"kernel_details.csv": KERNELS.encode(), "a.csv.gz": part, "b.csv.gz": part})
    result = _ingest_cli(dump, tmp_path)
    assert result.exit_code == 2, result.output
    assert f"Error: {dump}: no readable trace found ({dump.name}: gzip data inflates past 1,048,576 bytes" in (
        result.stderr
    )


def test_detect_sniffs_a_gzip_head_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(b"[" + b" " * (256 << 20)))
    tracemalloc.start()
    head = detect._head(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert head.startswith(b"[") and len(head) == 4096
    assert peak < 4 << 20


# --- damaged gzip, odd files, odd profiler_info ---------------------------------------------------


def _db_gz_not_sqlite() -> bytes:
    return gzip.compress(b"hello")


def _gz_truncated() -> bytes:
    data = gzip.compress(KERNELS.encode() * 50)
    return data[: len(data) // 2]


def _gz_corrupt() -> bytes:
    data = bytearray(gzip.compress(KERNELS.encode() * 50))
    data[20:40] = b"\xff" * 20
    return bytes(data)


BAD_GZ = {
    "truncated_csv_gz": ("kernel_details.csv.gz", _gz_truncated, "gzip stream ends early (file truncated)"),
    "corrupt_csv_gz": ("kernel_details.csv.gz", _gz_corrupt, "gzip stream is damaged ("),
    "truncated_db_gz": ("ascend_pytorch_profiler_0.db.gz", _gz_truncated, "gzip stream ends early (file truncated)"),
    "db_gz_not_sqlite": (
        "ascend_pytorch_profiler_0.db.gz",
        _db_gz_not_sqlite,
        "expected an SQLite database, found text starting with 'hello'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_GZ))
def test_damaged_gz_in_a_dump_is_one_line_naming_it(case: str, tmp_path: Path) -> None:
    name, make, problem = BAD_GZ[case]
    dump = _dump(tmp_path / "in", {name: make()})
    before = _contents(dump)
    result = _ingest_cli(dump, tmp_path)
    assert result.exit_code == 2, result.output
    prefix = f"Error: {dump}: no readable trace found ({dump.name}: ASCEND_PROFILER_OUTPUT/{name}: {problem}"
    assert result.stderr.startswith(prefix) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    assert _contents(dump) == before


def test_fifo_given_as_input_is_named_and_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "kernel_details.csv"
    os.mkfifo(fifo)
    result = _ingest_cli(fifo, tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {fifo}: not a regular file (a FIFO)\n"


def test_link_loop_given_as_input_is_named(tmp_path: Path) -> None:
    loop = tmp_path / "trace.json"
    loop.symlink_to(loop)
    result = _ingest_cli(loop, tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {loop}: a symbolic link loop\n"


@pytest.mark.parametrize("gzipped", [False, True])
def test_fifo_in_a_dump_is_a_warning_and_never_opened(gzipped: bool, tmp_path: Path) -> None:
    files = {"kernel_details.csv": KERNELS.encode()}
    if gzipped:
        files["step_trace_time.csv.gz"] = gzip.compress(b"Step,Computing\n")
    dump = _dump(tmp_path / "in", files)
    os.mkfifo(dump / layout.OUTPUT_DIR / "trace_view.json")
    result = ingest([dump], tmp_path / "s.traceview")
    assert f"{dump}: ASCEND_PROFILER_OUTPUT/trace_view.json: not a regular file (a FIFO); not read" in result.warnings
    assert query(result.store, "SELECT count(*) FROM slices WHERE kind = 'kernel'") == [(2,)]


@pytest.mark.parametrize("gzipped", [False, True])
def test_link_loops_in_a_dump_are_warnings(gzipped: bool, tmp_path: Path) -> None:
    files = {"kernel_details.csv": KERNELS.encode()}
    if gzipped:
        files["step_trace_time.csv.gz"] = gzip.compress(b"Step,Computing\n")
    dump = _dump(tmp_path / "in", files)
    (dump / "a").mkdir()
    (dump / "a" / "loop").symlink_to("..")
    (dump / layout.OUTPUT_DIR / "trace_view.json").symlink_to("trace_view.json")
    result = _ingest_cli(dump, tmp_path)
    assert result.exit_code == 0, result.output
    assert f"Warning: {dump}: ASCEND_PROFILER_OUTPUT/trace_view.json: a symbolic link loop; not read\n" in result.stderr


def test_directory_named_like_a_kernel_csv_is_a_warning(tmp_path: Path) -> None:
    dump = _dump(tmp_path / "in", {"step_trace_time.csv": b"Step,Computing\n"})
    (dump / layout.OUTPUT_DIR / "kernel_details.csv").mkdir()
    result = ingest([dump], tmp_path / "s.traceview")
    assert f"{dump}: ASCEND_PROFILER_OUTPUT/kernel_details.csv: a directory, not a file; not read" in result.warnings


ODD_INFO: dict[str, tuple[object, str | None]] = {
    "config_number": ({"config": 5, "rank_id": 3}, None),
    "experimental_config_number": ({"config": {"experimental_config": 5}, "rank_id": 3}, None),
    "profiler_level_list": ({"config": {"experimental_config": {"_profiler_level": [1]}}, "rank_id": 3}, None),
    "info_list": ([1, 2], "profiler_info_0.json is not a JSON object; ignored"),
    "info_string": ("x", "profiler_info_0.json is not a JSON object; ignored"),
    "info_number": (5, "profiler_info_0.json is not a JSON object; ignored"),
    "rank_1e30": (
        {"rank_id": 1e30},
        "profiler_info_0.json: rank_id '1e+30' is not a rank (a whole number from 0 to 2147483647); ignored",
    ),
    "rank_huge": (
        {"rank_id": 99999999999999999999999},
        "profiler_info_0.json: rank_id '99999999999999999999999' is not a rank (a whole number from 0 to"
        " 2147483647); ignored",
    ),
    "rank_huge_text": (
        {"rank_id": "99999999999999999999999"},
        "profiler_info_0.json: rank_id '99999999999999999999999' is not a rank (a whole number from 0 to"
        " 2147483647); ignored",
    ),
    "rank_negative": (
        {"rank_id": -5},
        "profiler_info_0.json: rank_id '-5' is not a rank (a whole number from 0 to 2147483647); ignored",
    ),
    "rank_float": (
        {"rank_id": 1.5},
        "profiler_info_0.json: rank_id '1.5' is not a rank (a whole number from 0 to 2147483647); ignored",
    ),
    "rank_text": (
        {"rank_id": "abc"},
        "profiler_info_0.json: rank_id 'abc' is not a rank (a whole number from 0 to 2147483647); ignored",
    ),
    "rank_superscript": (
        {"rank_id": "²"},
        "profiler_info_0.json: rank_id '²' is not a rank (a whole number from 0 to 2147483647); ignored",
    ),
    "rank_bool": (
        {"rank_id": True},
        "profiler_info_0.json: rank_id 'True' is not a rank (a whole number from 0 to 2147483647); ignored",
    ),
}


@pytest.mark.parametrize("case", sorted(ODD_INFO))
def test_odd_profiler_info_is_a_warning_at_most(case: str, tmp_path: Path) -> None:
    info, warning = ODD_INFO[case]
    dump = _dump(tmp_path / "in", {"kernel_details.csv": KERNELS.encode()}, info)
    result = ingest([dump], tmp_path / "s.traceview")
    assert (warning is None) == (not [w for w in result.warnings if "profiler_info_0.json" in w])
    if warning is not None:
        assert f"{dump}: {warning}" in result.warnings
    expected = 3 if warning is None else 0
    assert query(result.store, "SELECT DISTINCT rank FROM slices") == [(expected,)]


def test_huge_rank_in_a_directory_name_is_not_used(tmp_path: Path) -> None:
    dump = _dump(tmp_path / "in", {"kernel_details.csv": KERNELS.encode()}, {"rank_id": -1})
    named = dump.rename(dump.parent / "rank99999999999999999999_ascend_pt")
    result = ingest([named], tmp_path / "s.traceview")
    assert query(result.store, "SELECT DISTINCT rank FROM traces") == [(0,)]


def test_huge_rank_in_a_database_is_not_used(tmp_path: Path) -> None:
    source = ASCEND / "torch_npu_2025_db/level0/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT/ascend_pytorch_profiler_0.db"
    path = tmp_path / source.name
    shutil.copyfile(source, path)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE RANK_DEVICE_MAP SET rankId = 99999999999")
    con.close()
    result = ingest([path], tmp_path / "s.traceview")
    assert query(result.store, "SELECT DISTINCT rank FROM traces") == [(0,)]


@pytest.mark.parametrize("depth", [65, 3000])
def test_deeply_nested_profiler_info_is_a_warning(depth: int, tmp_path: Path) -> None:
    dump = _dump(tmp_path / "in", {"kernel_details.csv": KERNELS.encode()})
    (dump / "profiler_info_0.json").write_text('{"rank_id": 3, "config": ' + "[" * depth + "]" * depth + "}")
    result = _ingest_cli(dump, tmp_path)
    assert result.exit_code == 0, result.output
    assert "profiler_info_0.json is nested more than 64 levels deep; ignored" in result.output


# An id past BIGINT sends the file to the DuckDB text reader; a device id past INTEGER stays on the Arrow one.
# Such an id is no id: null, or for the device its fallback, the device of the task (0 here).
ODD_IDS = {
    "task_id_past_bigint": ("Task ID", "-9223372036854775809", "task_id", None),
    "device_id_past_integer": ("Device_id", "99999999999", "device_id", 0),
}


@pytest.mark.parametrize("case", sorted(ODD_IDS))
def test_kernel_ids_out_of_range_are_null(case: str, tmp_path: Path) -> None:
    header, value, column, expected = ODD_IDS[case]
    text = (
        f"{header},Name,Type,Accelerator Core,Start Time(us),Duration(us)\n"
        f"{value},a,MatMul,AI_CORE,1736405443881410.320,50.621\n7,b,Add,AI_CORE,1736405443881500,2\n"
    )
    path = tmp_path / "kernel_details.csv"
    path.write_text(text)
    result = _ingest_cli(path, tmp_path)
    assert result.exit_code == 0, result.output
    store = tmp_path / "out.traceview"
    assert query(store, f"SELECT name, {column} FROM npu_kernel_metrics ORDER BY name") == [("a", expected), ("b", 7)]


def test_links_out_of_a_dump_are_not_read_even_to_hash(tmp_path: Path) -> None:
    dump = _dump(tmp_path / "in", {"kernel_details.csv": KERNELS.encode()})
    outside = tmp_path / "big.bin"
    outside.write_bytes(b"x" * 1000)
    (dump / layout.OUTPUT_DIR / "extra.bin").symlink_to(outside)
    before = content_hash(dump), _stat_key(dump)["size"]
    outside.write_bytes(b"y" * 5000)
    assert (content_hash(dump), _stat_key(dump)["size"]) == before
    assert before[1] == sum(p.stat().st_size for p in dump.rglob("*") if p.is_file() and not p.is_symlink())
