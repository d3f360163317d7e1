"""Hostile and damaged Kineto/Chrome JSON: bounded work and memory, one-line errors, warnings with counts."""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from traceview import parsers
from traceview.cli import app
from traceview.parsers import jsonscan

runner = CliRunner()
EVENT = '{"ph": "X", "cat": "cpu_op", "name": "a", "pid": 1, "tid": 1, "ts": 10, "dur": 1}'


def _kineto(events: int) -> bytes:
    """A trace in Kineto's layout (one event per line block), about 230 bytes an event."""
    lines = []
    for i in range(events):
        event = {
            "ph": "X",
            "cat": "cpu_op",
            "name": f"aten::op{i % 7}",
            "pid": 1,
            "tid": 1 + i % 3,
            "ts": 1000 + 3 * i,
            "dur": 2,
            "args": {"External id": i, "Input Dims": [[4, 8], [], [i % 5]]},
        }
        lines.append("  " + json.dumps(event))
    head = '{\n  "schemaVersion": 1,\n  "distributedInfo": {"rank": 0},\n  "traceEvents": [\n'
    return (head + ",\n".join(lines) + '\n  ],\n  "traceName": "t.json",\n  "x": [{"a": [1]}]\n}\n').encode()


def _ingest(path: Path, *extra: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["ingest", str(path), "-o", str(path.with_suffix(".traceview")), *extra])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr.splitlines()


def _complete_events_before(data: bytes, start: int) -> int:
    """Complete events of the array in a prefix, by an independent event-by-event parse."""
    text, decoder, pos, kept = data.decode("latin-1"), json.JSONDecoder(), start + 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            _, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return kept
        kept += 1


def _record_walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the arrays the tolerant path walks event by event, as it walks them."""
    walked: list[int] = []
    recover = jsonscan.recover_events
    monkeypatch.setattr(
        jsonscan, "recover_events", lambda src, out: walked.append(src.stat().st_size) or recover(src, out)
    )
    return walked


@pytest.mark.parametrize("fraction", [0.6, 0.999])
def test_cut_trace_reads_all_but_the_last_mib_in_bulk(fraction: float, tmp_path: Path, monkeypatch) -> None:
    """A cut trace keeps every complete event (>= 99.9%), and only the bytes near the cut go event by event."""
    monkeypatch.setattr(jsonscan, "TRUNCATED_TAIL", 1 << 18)
    data = _kineto(20_000)
    total = data.count(b'"ph": "X"')
    start = data.index(b"[", data.index(b'"traceEvents"'))
    prefix = data[: int(len(data) * fraction)]
    path = tmp_path / "cut.json"
    path.write_bytes(prefix)
    walked = _record_walks(monkeypatch)
    code, lines = _ingest(path)
    expected = _complete_events_before(prefix, start)
    assert code == 0
    assert len(lines) == 1 and f": kept {expected} complete events" in lines[0]
    assert expected >= 0.999 * prefix.count(b'"ph": "X"') and total == 20_000
    assert walked and max(walked) <= jsonscan.TRUNCATED_TAIL + 1


def test_find_array_end_reads_a_cut_tail_in_linear_work(monkeypatch) -> None:
    """Many `]` candidates and no valid end: the trailer checks read each byte a bounded number of times."""
    tail = _kineto(3000)[:-40] + b"}"  # ends in '}' but the trailer is cut
    read = [0]
    decode = jsonscan._DECODER.raw_decode

    def counting(text: str, pos: int) -> tuple[object, int]:
        try:
            value, end = decode(text, pos)
        except json.JSONDecodeError as exc:
            read[0] += exc.pos - pos
            raise
        read[0] += end - pos
        return value, end

    monkeypatch.setattr(jsonscan._DECODER, "raw_decode", counting)
    assert jsonscan._find_array_end(tail) is None
    assert read[0] <= 4 * len(tail)


def test_cut_inside_the_trailer_warns(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"traceEvents": [' + EVENT + '], "traceName": "ab')
    assert _ingest(path) == (
        0,
        [
            f"Warning: {path}: trace is cut or damaged after its events, in the top-level keys that follow them:"
            " kept all 1 events, skipped those keys"
        ],
    )


def test_gzip_bomb_is_one_error_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(parsers.limits, "_current", replace(parsers.limits.limits(), inflate_floor_bytes=1 << 20))
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = packer.compress(b'{"traceEvents": [') + b"".join(packer.compress(b" " * (1 << 20)) for _ in range(16))
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(body + packer.compress(b"]}") + packer.flush())
    code, lines = _ingest(path)
    assert code == 2
    size = path.stat().st_size
    assert lines == [
        f"Error: {path}: gzip data inflates past {size * 200:,} bytes, the limit for {size:,} compressed bytes (200x,"
        f" at least {1 << 20:,}); a decompression bomb? Raise the limit with --max-inflate-ratio or"
        " TRACEVIEW_MAX_INFLATE_RATIO"
    ]


def test_huge_header_string_is_refused_past_the_header_limit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(jsonscan, "HEADER_LIMIT", 1 << 20)
    monkeypatch.setattr(jsonscan, "CHUNK", 1 << 16)
    path = tmp_path / "h.json"
    path.write_bytes(b'{"x": "' + b"a" * (4 << 20) + b'", "traceEvents": [' + EVENT.encode() + b"]}")
    assert _ingest(path) == (
        2,
        [
            f"Error: {path}: expected a Chrome/Kineto JSON trace with traceEvents in its first 1 MiB, found none"
            " (jsonscan.HEADER_LIMIT)"
        ],
    )


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_header_scan_in_pieces_finds_only_the_top_level_array(size: int) -> None:
    """Escapes, keys and brackets split across reads; a traceEvents key in a string or deeper is not it."""
    text = (
        b'{"a": "\\"traceEvents\\": [", "b": {"traceEvents": [1]}, "traceEvents" : "x", '
        b'"c": ["\\\\"], "traceEvents"\n:\n [{}]}'
    )
    scan, buf, found = jsonscan._HeaderScan(0), bytearray(), None
    for i in range(0, len(text), size):
        buf += text[i : i + size]
        found = scan.feed(buf) or found
        if found:
            break
    assert found == (text.rindex(b"["), text.rindex(b'"traceEvents"'))


TOP_LEVEL_CASES = {
    "rank_huge": (
        '"distributedInfo": {"rank": 1e30}',
        "ignored distributedInfo.rank 1e+30: expected a whole number from 0 to 2147483647",
    ),
    "rank_superscript": (
        '"distributedInfo": {"rank": "\u00b2"}',
        'ignored distributedInfo.rank "\\u00b2": expected a whole number from 0 to 2147483647',
    ),
    "base_text": (
        '"baseTimeNanoseconds": "abc"',
        'ignored baseTimeNanoseconds "abc": expected a whole number from 0 to 9223372036854775807',
    ),
    "base_nan": (
        '"baseTimeNanoseconds": NaN',
        "ignored baseTimeNanoseconds NaN: expected a whole number from 0 to 9223372036854775807",
    ),
    "device_surrogate": (
        '"deviceProperties": [{"name": "\\ud800"}]',
        "1 strings of the top-level keys held lone surrogates (invalid text), replaced with U+FFFD",
    ),
    "deep_header": (
        '"x": ' + "[" * 1000 + "]" * 1000,
        "the top-level keys before traceEvents are nested too deeply to read; skipped them",
    ),
    "deep_but_parsed": ('"x": ' + "[" * 100 + "]" * 100, "1 top-level keys nested deeper than 64 levels were skipped"),
    "error_string": ('"ERROR": "boom"', "profiler reported: boom"),
}


@pytest.mark.parametrize("case", sorted(TOP_LEVEL_CASES))
def test_bad_top_level_value_is_one_warning(case: str, tmp_path: Path) -> None:
    key, warning = TOP_LEVEL_CASES[case]
    path = tmp_path / f"{case}.json"
    path.write_text("{" + key + ', "traceEvents": [' + EVENT + "]}")
    assert _ingest(path) == (0, [f"Warning: {path}: {warning}"])


@pytest.mark.parametrize("value", ["5", '"H100"', "null", '{"a": 1}'])
def test_device_properties_of_another_type_are_ignored(value: str, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"deviceProperties": ' + value + ', "distributedInfo": [1], "traceEvents": [' + EVENT + "]}")
    assert _ingest(path) == (0, [])


@pytest.mark.parametrize("compress", [False, True])
def test_lone_surrogate_in_an_event_is_repaired(compress: bool, tmp_path: Path) -> None:
    """One bad escape no longer rejects the trace (nor shows a scratch path): the event is repaired."""
    bad = EVENT.replace('"name": "a"', '"name": "\\ud800x"')
    text = ('{"traceEvents": [' + EVENT + ", " + bad + "]}").encode()
    path = tmp_path / ("s.json.gz" if compress else "s.json")
    path.write_bytes(gzip.compress(text, mtime=0) if compress else text)
    code, lines = _ingest(path)
    assert (code, lines) == (0, [f"Warning: {path}: 1 events had malformed strings and were repaired"])
    store = path.with_suffix(".traceview")
    from conftest import store_rows

    assert sorted(row[0] for row in store_rows(store, "slices", "name")) == ["a", "\ufffdx"]


def test_unusable_ts_and_dur_are_counted(tmp_path: Path) -> None:
    events = [
        EVENT,
        '{"ph": "X", "name": "b", "pid": 1, "tid": 1, "ts": "abc", "dur": "x"}',
        '{"ph": "X", "name": "c", "pid": 1, "tid": 1, "ts": NaN, "dur": 1e400}',
        '{"ph": "X", "name": "d", "pid": 1, "tid": 1, "ts": -5, "dur": -3}',
    ]
    path = tmp_path / "ts.json"
    path.write_text('{"traceEvents": [' + ", ".join(events) + "]}")
    assert _ingest(path) == (
        0,
        [
            f"Warning: {path}: 2 complete events had no usable ts and were skipped",
            f"Warning: {path}: 1 slices have a negative duration (kept as written)",
        ],
    )


def test_begin_end_beyond_int64_ns_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "be.json"
    begin_end = '{"ph": "B", "name": "r", "pid": 1, "tid": 1, "ts": 5}, {"ph": "E", "pid": 1, "tid": 1, "ts": 1e30}'
    path.write_text('{"traceEvents": [' + EVENT + ", " + begin_end + "]}")
    assert _ingest(path) == (
        2,
        [f"Error: {path}: expected ts and dur that fit int64 nanoseconds (under 292 years), found larger ones"],
    )


def _compact(events: int, separators: tuple[str, str] = (", ", ": ")) -> bytes:
    """A compact trace (`json.dumps` without indent: no line breaks), whose args hold arrays of
    objects that start like events and strings with `},{` in them: false event boundaries."""
    trace = []
    for i in range(events):
        nested = [{"ph": "X", "ts": i}, {"name": 'q},{"ph": "X"', "args": [{"id": 1}, {"s": "]}"}]}]
        event = {"ph": "X", "name": f"op{i % 7}", "pid": 1, "tid": 1, "ts": 1000 + 3 * i, "dur": 2}
        trace.append({**event, "args": {"External id": i, "list": nested if i % 3 else []}})
    return json.dumps({"schemaVersion": 1, "traceEvents": trace, "traceName": "t.json"}, separators=separators).encode()


def _compact_cuts(data: bytes) -> dict[str, int]:
    """Cuts near the end of `data`: inside a string, inside nested args, right after a `},` between events."""
    squeezed = b'"ts": ' not in data

    def find(pattern: bytes, start: int = 0) -> int:
        return data.index(pattern.replace(b", ", b",").replace(b": ", b":") if squeezed else pattern, start)

    nested = data.rindex(b"list", 0, data.rindex(b"]}]}}]"))
    last = data.rindex(b"{", 0, data.rindex(b'"ph"', 0, data.rindex(b"External id", 0, nested)) + 1)
    return {
        "in_string": find(b"q},{", nested) + 2,
        "in_nested_args": find(b'"ts": 2999}, {"name"', nested) + len(b'"ts": 2999},') - squeezed,
        "in_nested_array": find(b'{"id": 1}, {', nested) + len(b'{"id": 1},') - squeezed,
        "after_comma": data.rindex(b"}", 0, last) + 2,
        "after_brace": data.rindex(b"}", 0, last) + 1,
        "in_trailer": data.rindex(b"t.json"),
    }


CUTS = ["in_string", "in_nested_args", "in_nested_array", "after_comma", "after_brace"]


@pytest.mark.parametrize("where", CUTS)
@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")], ids=["spaced", "squeezed"])
def test_cut_compact_trace_reads_all_but_the_tail_in_bulk(
    where: str, separators: tuple[str, str], tmp_path: Path, monkeypatch
) -> None:
    """A compact trace cut near its end keeps exactly its complete events, and only the tail is walked."""
    monkeypatch.setattr(jsonscan, "TRUNCATED_TAIL", 1 << 15)
    data = _compact(3000, separators)
    start = data.index(b"[", data.index(b'"traceEvents"'))
    prefix = data[: _compact_cuts(data)[where]]
    path = tmp_path / "cut.json"
    path.write_bytes(prefix)
    walked = _record_walks(monkeypatch)
    code, lines = _ingest(path)
    expected = _complete_events_before(prefix, start)
    assert code == 0 and expected == 2999
    assert len(lines) == 1 and f": kept {expected} complete events" in lines[0]
    assert walked and max(walked) <= jsonscan.TRUNCATED_TAIL + 1


def test_cut_compact_trace_in_its_trailer_keeps_all_events(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(jsonscan, "TRUNCATED_TAIL", 1 << 15)
    data = _compact(3000)
    path = tmp_path / "cut.json"
    path.write_bytes(data[: _compact_cuts(data)["in_trailer"]])
    walked = _record_walks(monkeypatch)
    code, lines = _ingest(path)
    assert (code, lines) == (
        0,
        [
            f"Warning: {path}: trace is cut or damaged after its events, in the top-level keys that follow them:"
            " kept all 3000 events, skipped those keys"
        ],
    )
    assert walked and max(walked) <= jsonscan.TRUNCATED_TAIL + 1


def _event_starts(data: bytes, start: int) -> set[int]:
    """Offsets where the array's events start, by an independent parse."""
    text, decoder, pos, starts = data.decode("latin-1"), json.JSONDecoder(), start + 1, set()
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] != "{":
            return starts
        starts.add(pos)
        _, pos = decoder.raw_decode(text, pos)


def test_compact_boundaries_are_only_the_arrays_own(tmp_path: Path) -> None:
    """Wherever the window starts, each candidate `},{` that passes the walk is between two events of the array."""
    data = _compact(400)
    starts = _event_starts(data, data.index(b"[", data.index(b'"traceEvents"')))
    path = tmp_path / "events.json"
    path.write_bytes(data)
    found = 0
    for offset in range(0, len(data) - 2000, 331):
        for before, after in jsonscan._compact_boundaries(path, offset, len(data)):
            assert after in starts and data[before - 1 : before] == b"}"
            found += 1
    assert found > 100


def test_recovery_finds_well_formed_events_without_the_token_loop(tmp_path: Path, monkeypatch) -> None:
    """The tolerant path delimits well-formed events with the C JSON scanner (about 5x the token loop's
    speed); the token loop is left for damaged events, and events across the window's end read whole."""
    monkeypatch.setattr(jsonscan, "_WALK_WINDOW", 1 << 12)
    monkeypatch.setattr(jsonscan, "_WALK_MARGIN", 1 << 8)
    data = _compact(60)
    events = data[data.index(b"[", data.index(b'"traceEvents"')) : data.rindex(b"]") + 1]
    bad = events.replace(b'"name": "op3"', b'"name": "o\tp3"', 1)  # a raw tab: repaired
    path = tmp_path / "events.json"
    path.write_bytes(bad[:-1])  # and cut after the last event
    token_loop: list[int] = []
    object_end = jsonscan._object_end
    monkeypatch.setattr(jsonscan, "_object_end", lambda data, pos: token_loop.append(pos) or object_end(data, pos))
    rec = jsonscan.recover_events(path, tmp_path / "out.json")
    assert (rec.kept, rec.repaired, rec.skipped, rec.damage_offset) == (60, 1, 0, len(bad) - 1)
    assert json.loads(rec.events_path.read_bytes()) == json.loads(bad.replace(b"o\tp3", b"o\\u0009p3"))
    assert len(token_loop) <= 2 + len(events) // (1 << 12)


def test_unusable_dur_is_counted_not_zero(tmp_path: Path) -> None:
    """A dur given as text that is not a number, NaN, Infinity or past DECIMAL(38,3) no longer becomes 0."""
    durations = ['"abc"', '"NaN"', "NaN", "-Infinity", "1e400", "null", '"8"', "2"]
    events = [EVENT.replace('"dur": 1', f'"dur": {dur}').replace('"a"', f'"e{i}"') for i, dur in enumerate(durations)]
    path = tmp_path / "dur.json"
    path.write_text('{"traceEvents": [' + ", ".join(events) + "]}")
    assert _ingest(path) == (
        0,
        [f"Warning: {path}: 6 complete events had no usable dur (missing or not a number) and were skipped"],
    )
    from conftest import store_rows

    rows = sorted(store_rows(path.with_suffix(".traceview"), "slices", "name, dur_ns"))
    assert rows == [("e6", 8000), ("e7", 2000)]
