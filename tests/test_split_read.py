"""Reading a big events array as several pieces in parallel: the pieces, their undoing, and that the
store is the same as when the array is read whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import KINETO_CORPUS, NOT_CHROME, store_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from traceview.parsers import jsonscan
from traceview.store import ingest


def _array(events: list[dict]) -> bytes:
    return ("[\n" + ",\n".join("  " + json.dumps(e, indent=2).replace("\n", "\n  ") for e in events) + "\n]").encode()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=1, max_value=40), pieces=st.integers(min_value=2, max_value=5))
def test_pieces_hold_the_events_in_order_and_join_back(tmp_path_factory: pytest.TempPathFactory, n: int,
                                                        pieces: int) -> None:
    events = [{"ph": "X", "name": "op},\n{" + str(i), "ts": i, "dur": 1,
               "args": {"list": [{"a": i}, {"b": i}]} if i % 3 == 0 else {"a": i}} for i in range(n)]
    data = _array(events)
    path = tmp_path_factory.mktemp("split") / "events.json"
    path.write_bytes(data)
    split = jsonscan.split_events(path, pieces, min_bytes=0)
    parts = split.parts
    assert 1 <= len(parts) <= pieces
    try:
        pieces_read = [json.loads(p.read_bytes()) for p in parts]
    except json.JSONDecodeError:
        pieces_read = None  # a cut inside an event: never valid pieces, the parser then reads whole
    if pieces_read is not None:
        assert [e for piece in pieces_read for e in piece] == events
    assert jsonscan.join_events(split) == path
    assert path.read_bytes() == data and not any(p.exists() for p in parts[1:])


def test_small_arrays_and_one_line_arrays_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(_array([{"ph": "X", "ts": i} for i in range(100)]))
    assert jsonscan.split_events(path, 2).parts == [path]  # under SPLIT_MIN_BYTES
    path.write_bytes(json.dumps([{"ph": "X", "ts": i} for i in range(100)]).encode())
    assert jsonscan.split_events(path, 2, min_bytes=0).parts == [path]  # no line break between events


def test_a_cut_inside_an_event_falls_back_to_the_whole_array(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # events one per line, except a pretty-printed list inside one event's args: the only boundary with a
    # line break is inside that event, so the pieces are invalid and the parser reads the array whole
    events = [json.dumps({"ph": "X", "name": f"op{i}", "pid": 1, "tid": 1, "ts": 10 * i, "dur": 5,
                          "args": {"External id": i}}) for i in range(8)]
    events[5] = events[5].replace('"args": {', '"args": {"nested": [{"k": 1},\n{"k": 2}], ')
    trace = tmp_path / "t.json"
    trace.write_text('{"traceEvents": [' + ", ".join(events) + "]}")
    split = jsonscan.split_events(_copy(trace, tmp_path / "probe.json"), 2, min_bytes=0)
    assert len(split.parts) == 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(split.parts[0].read_bytes())
    monkeypatch.setattr(jsonscan, "SPLIT_MIN_BYTES", 0)
    result = ingest([trace], tmp_path / "split")
    monkeypatch.setattr(jsonscan, "SPLIT_MIN_BYTES", 1 << 60)
    whole = ingest([trace], tmp_path / "whole").store
    columns = "slice_id, ts_ns, dur_ns, name, args"
    assert store_rows(result.store, "slices", columns) == store_rows(whole, "slices", columns)
    assert len(store_rows(whole, "slices", columns)) == 8 and result.warnings == []


def _copy(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[data.index(b"["):data.rindex(b"]") + 1])
    return dst


CORPUS_TRACES = sorted(
    p for p in KINETO_CORPUS.rglob("*.json*")
    if p.is_file() and str(p.relative_to(KINETO_CORPUS)) not in NOT_CHROME and p.stat().st_size < (64 << 20)
)


@pytest.mark.parametrize("trace", CORPUS_TRACES[:12], ids=lambda p: str(p.relative_to(KINETO_CORPUS)))
def test_corpus_traces_read_in_pieces_give_the_same_store(trace: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonscan, "SPLIT_MIN_BYTES", 0)
    split = ingest([trace], tmp_path / "split").store
    monkeypatch.setattr(jsonscan, "SPLIT_MIN_BYTES", 1 << 60)
    whole = ingest([trace], tmp_path / "whole").store
    for table in ("slices", "flows", "instants", "memory", "counters"):
        assert store_rows(split, table, "* EXCLUDE (trace_id)") == store_rows(whole, table, "* EXCLUDE (trace_id)")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=1, max_value=40), pieces=st.integers(min_value=1, max_value=5))
def test_cutting_from_the_trace_file_gives_the_pieces_of_the_copied_array(
    tmp_path_factory: pytest.TempPathFactory, n: int, pieces: int
) -> None:
    """split_range on the events array inside a trace file writes the same pieces, byte for byte, as
    split_events on a copy of that array, and they join back into the array."""
    events = [{"ph": "X", "name": "op},\n{" + str(i), "ts": i, "dur": 1, "args": {"a": [i, {"b": i}]}}
              for i in range(n)]
    array = _array(events)
    head, tail = b'{"schemaVersion": 1,\n  "traceEvents": ', b',\n  "traceName": "t"\n}\n'
    folder = tmp_path_factory.mktemp("range")
    trace = folder / "trace.json"
    trace.write_bytes(head + array + tail)
    copied = folder / "copy.events.json"
    copied.write_bytes(array)
    want = jsonscan.split_events(copied, pieces, min_bytes=0)
    got = jsonscan.split_range(trace, len(head), len(head) + len(array), pieces, folder / "direct.events.json",
                               min_bytes=0)
    assert [p.read_bytes() for p in got.parts] == [p.read_bytes() for p in want.parts]
    assert got.gaps == want.gaps
    assert jsonscan.join_events(got).read_bytes() == array
