"""Bounded gzip inflation: concatenated members, caps, damage, and no writes through links."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from traceview.cli import app
from traceview.parsers import limits as limits_mod
from traceview.parsers.inflate import (
    OUT_BLOCK,
    DamagedGzipError,
    InflateLimitError,
    InflateState,
    gunzip_to,
    inflate_chunks,
    inflate_head,
    inflate_with_state,
)
from traceview.parsers.limits import inflate_cap, limits, set_limits


@pytest.fixture(autouse=True)
def _default_limits():
    before = limits()
    yield
    set_limits(max_inflate_ratio=before.max_inflate_ratio, inflate_floor_bytes=before.inflate_floor_bytes)


def _inflate(data: bytes, name: str = "x.gz") -> bytes:
    return b"".join(inflate_chunks(io.BytesIO(data), name, len(data)))


def test_members_and_padding_inflate_whole() -> None:
    body = os.urandom(1000) * 12_000  # 12 MB: more than one output block
    data = gzip.compress(body) + gzip.compress(b"tail") + b"\0" * 64
    assert _inflate(data) == body + b"tail"


def test_pieces_are_bounded() -> None:
    data = gzip.compress(b"a" * (3 * OUT_BLOCK))
    pieces = list(inflate_chunks(io.BytesIO(data), "a.gz", len(data)))
    assert max(len(p) for p in pieces) <= OUT_BLOCK
    assert sum(len(p) for p in pieces) == 3 * OUT_BLOCK


def test_bomb_is_refused_with_one_line() -> None:
    bomb = gzip.compress(b"\0" * (100 << 20))
    with pytest.raises(InflateLimitError) as caught:
        _inflate(bomb, "bomb.json.gz")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"bomb.json.gz: gzip data inflates past {inflate_cap(len(bomb)):,} bytes")
    assert "--max-inflate-ratio" in message


def test_raised_limit_lets_the_stream_through() -> None:
    data = gzip.compress(b"\0" * (100 << 20))
    set_limits(max_inflate_ratio=1_000_000)
    assert len(_inflate(data)) == 100 << 20


def test_cap_is_relative_with_a_floor() -> None:
    set_limits(max_inflate_ratio=10, inflate_floor_bytes=1000)
    assert inflate_cap(50) == 1000
    assert inflate_cap(10_000) == 100_000


@pytest.mark.parametrize("cut", [0, 5, 100, -20])
def test_cut_stream(cut: int) -> None:
    data = gzip.compress(os.urandom(50_000))
    cut_data = data[:cut] if cut >= 0 else data[:cut]
    with pytest.raises(DamagedGzipError, match="^c.gz: gzip stream"):
        _inflate(cut_data, "c.gz")
    state = InflateState()
    kept = b"".join(inflate_with_state(io.BytesIO(cut_data), "c.gz", len(data), state, strict=False))
    assert state.damage is not None and state.damage.startswith("gzip stream")
    assert len(kept) <= 50_000


def test_corrupt_stream() -> None:
    data = bytearray(gzip.compress(os.urandom(10_000)))
    data[3] = 0xFF  # reserved flag bits
    with pytest.raises(DamagedGzipError, match="damaged"):
        _inflate(bytes(data))


def test_gunzip_to_never_writes_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    source = tmp_path / "notes.txt.gz"
    source.write_bytes(gzip.compress(b"payload"))
    link = tmp_path / "scratch" / "notes.txt"
    link.parent.mkdir()
    link.symlink_to(outside)
    with pytest.raises(FileExistsError):
        gunzip_to(source, link)
    assert outside.read_bytes() == b"precious"
    fresh = tmp_path / "scratch" / "fresh.txt"
    assert gunzip_to(source, fresh) == 7 and fresh.read_bytes() == b"payload"


def test_gunzip_to_removes_a_partial_file(tmp_path: Path) -> None:
    source = tmp_path / "bomb.gz"
    source.write_bytes(gzip.compress(b"\0" * (80 << 20)))
    target = tmp_path / "out"
    with pytest.raises(InflateLimitError):
        gunzip_to(source, target)
    assert not target.exists()


def test_inflate_head_is_bounded() -> None:
    data = gzip.compress(b"{" * (50 << 20))
    assert inflate_head(data, 4096) == b"{" * 4096
    assert inflate_head(b"\x1f\x8bnot gzip", 10) == b""


def test_cli_option_sets_the_ratio() -> None:
    result = CliRunner().invoke(app, ["--max-inflate-ratio", "1000", "schema"])
    assert result.exit_code == 0, result.output
    assert limits_mod.limits().max_inflate_ratio == 1000
    result = CliRunner().invoke(app, ["--max-inflate-ratio", "0.5", "schema"])
    assert result.exit_code == 2


def test_environment_sets_the_ratio() -> None:
    code = "from traceview.parsers.limits import limits; print(limits().max_inflate_ratio)"
    env = {**os.environ, "TRACEVIEW_MAX_INFLATE_RATIO": "750"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.strip() == "750.0"


def test_an_infinite_ratio_is_no_cap_and_nan_is_refused() -> None:
    set_limits(max_inflate_ratio=float("inf"))
    assert inflate_cap(10) == sys.maxsize
    result = CliRunner().invoke(app, ["--max-inflate-ratio", "nan", "schema"])
    assert result.exit_code == 2
