"""Traces cut short (a crashed job, a partial copy) ingest what was complete before the cut."""

from __future__ import annotations

import functools
import gzip
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import KINETO_CORPUS, gunzip_prefix, kineto_text, load_trace, read_json_bytes, store_rows
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from traceview.cli import app
from traceview.store import ingest

TRUNCATED = re.compile(
    r"trace is truncated or damaged at byte (\d+) of the (?:file|decompressed JSON): kept (\d+) complete events"
)


@dataclass(frozen=True)
class Source:
    """A whole trace as bytes, and where its traceEvents array starts and ends."""

    name: str
    data: bytes
    array_start: int  # offset of '['
    array_end: int  # offset of the closing ']'


def _source(name: str, data: bytes) -> Source:
    start = data.index(b"[", data.index(b'"traceEvents"'))
    end = data.rindex(b"]")
    assert json.loads(data)["traceEvents"]
    return Source(name, data, start, end)


@functools.cache
def sources() -> dict[str, Source]:
    """Two small real traces: HTA's compact one-line base.json, nano-vllm's first 200 events in Kineto layout."""
    base = read_json_bytes(KINETO_CORPUS / "hta/trace_compare/base/base.json.gz")
    doc = load_trace(KINETO_CORPUS / "nano-vllm/decode_gpu_0.json")
    keys = list(doc)
    split = keys.index("traceEvents")
    header = {k: doc[k] for k in keys[:split]}
    trailer = {k: doc[k] for k in keys[split + 1 :]}
    nano = kineto_text(doc["traceEvents"][:200], header, trailer).encode()
    return {"base": _source("base", base), "nano200": _source("nano200", nano)}


@dataclass
class Expected:
    """What an independent event-by-event parse of the prefix finds."""

    kept: int  # complete events before the cut
    x_ids: list[int]  # indices of the complete X events among them
    partial_at: int | None  # offset (from '[') of the event the cut falls in, or None


def expected_for(prefix: bytes, array_start: int) -> Expected:
    """Walk the prefix with json.JSONDecoder.raw_decode, one event at a time."""
    text = prefix.decode("latin-1")  # one char per byte: offsets stay byte offsets
    decoder = json.JSONDecoder()
    pos = array_start + 1
    kept, x_ids = 0, []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            return Expected(kept, x_ids, None)
        try:
            event, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return Expected(kept, x_ids, pos - array_start)
        if event.get("ph") == "X":
            x_ids.append(kept)
        kept += 1


def ingest_bytes(data: bytes, name: str) -> tuple[list[int], list[str]]:
    """Ingest `data` written as file `name`; return sorted slice_ids and the warnings."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        result = ingest([path], Path(tmp) / "out.traceview")
        ids = sorted(row[0] for row in store_rows(result.store, "slices", "slice_id"))
        stored = store_rows(result.store, "traces", "warnings")[0][0]
        assert stored == [w.split(": ", 1)[1] for w in result.warnings if w.startswith(f"{path}: ")]
        return ids, result.warnings


def check_truncated(ids: list[int], warnings: list[str], expected: Expected, array_start: int, size: int) -> None:
    """The kept slices and the truncation warning agree with the independent parse.

    The warning's byte offset counts from the start of the (decompressed) JSON: the start of the
    event the cut falls in, or the end of the data when the cut falls between events.
    """
    assert ids == expected.x_ids
    found = [m for w in warnings if (m := TRUNCATED.search(w))]
    assert len(found) == 1, warnings
    offset, kept = found[0].groups()
    assert int(kept) == expected.kept
    where = array_start + expected.partial_at if expected.partial_at is not None else size
    assert int(offset) == where, warnings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.sampled_from(["base", "nano200"]))
@example(data=None, which="base").via("cut right after '['")
def test_cut_json_keeps_complete_events(data: st.DataObject | None, which: str) -> None:
    """A .json cut at any byte inside traceEvents: no error, a truncation warning, the complete X events."""
    src = sources()[which]
    if data is None:
        cut = src.array_start + 1
    else:
        cut = data.draw(st.integers(min_value=src.array_start + 1, max_value=src.array_end), label="cut")
    prefix = src.data[:cut]
    ids, warnings = ingest_bytes(prefix, f"{which}.json")
    check_truncated(ids, warnings, expected_for(prefix, src.array_start), src.array_start, len(prefix))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.sampled_from(["base", "nano200"]))
def test_cut_gzip_keeps_complete_events(data: st.DataObject, which: str) -> None:
    """A .json.gz whose gzip stream is cut: the decompressible prefix is ingested as a truncated trace."""
    src = sources()[which]
    packed = gzip.compress(src.data, compresslevel=6, mtime=0)
    cut = data.draw(st.integers(min_value=10, max_value=len(packed) - 1), label="cut")
    prefix = gunzip_prefix(packed[:cut])
    assume(src.array_start < len(prefix) <= src.array_end)
    ids, warnings = ingest_bytes(packed[:cut], f"{which}.json.gz")
    check_truncated(ids, warnings, expected_for(prefix, src.array_start), src.array_start, len(prefix))
    assert any("gzip stream ends early" in w for w in warnings), warnings


def test_cut_real_gzip_file_mid_stream() -> None:
    """The corpus file itself (not re-compressed) cut in half still ingests its first events."""
    raw = (KINETO_CORPUS / "hta/trace_filter/sampled_rank-1.json.gz").read_bytes()
    cut = raw[: len(raw) // 2]
    prefix = gunzip_prefix(cut)
    src = _source("rank1", read_json_bytes(KINETO_CORPUS / "hta/trace_filter/sampled_rank-1.json.gz"))
    assert src.array_start < len(prefix) < src.array_end
    ids, warnings = ingest_bytes(cut, "sampled_rank-1.json.gz")
    expected = expected_for(prefix, src.array_start)
    assert expected.kept > 1000
    check_truncated(ids, warnings, expected, src.array_start, len(prefix))


def test_truncated_trace_cli_exit_zero_and_warns(tmp_path: Path) -> None:
    """Through the CLI: exit 0, a `Warning:` line that says truncated, and the summary line."""
    src = sources()["nano200"]
    cut = (src.array_start + src.array_end) // 2
    path = tmp_path / "crashed.json"
    path.write_bytes(src.data[:cut])
    result = CliRunner().invoke(app, ["ingest", str(path), "-o", str(tmp_path / "s.traceview")])
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.output
    warn = [line for line in result.stderr.splitlines() if "truncated" in line]
    assert len(warn) == 1 and warn[0].startswith(f"Warning: {path}: trace is truncated or damaged at byte ")
    expected = expected_for(src.data[:cut], src.array_start)
    assert result.stdout.startswith(f"wrote {tmp_path / 's.traceview'} (1 trace, {len(expected.x_ids)} slices)")


@pytest.mark.parametrize("gap", ["after_brace", "after_comma", "after_newline"])
def test_cut_between_events_still_says_where(gap: str) -> None:
    """A cut that falls between events must still say where the data ends (a byte offset)."""
    src = sources()["nano200"]
    first_end = src.data.index(b"\n  },\n  {", src.array_start) + len(b"\n  }")
    cut = {"after_brace": first_end, "after_comma": first_end + 1, "after_newline": first_end + 2}[gap]
    ids, warnings = ingest_bytes(src.data[:cut], "nano.json")
    assert len(ids) == 1
    found = [m for w in warnings if (m := TRUNCATED.search(w))]
    assert len(found) == 1 and found[0].group(2) == "1"
    assert int(found[0].group(1)) == cut, warnings
