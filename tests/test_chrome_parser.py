"""The Kineto/Chrome parser on small synthetic traces written in Kineto's exact layout."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ingest_one, small_kineto_events, store_rows, write_kineto, x_event

from traceview.parsers import chrome

SLICE_COLS = "slice_id, name, kind, device_type, device_id, stream, depth, parent_id, self_ns, correlation, step"


def _synthetic(tmp_path: Path, compress: bool = False) -> Path:
    events = small_kineto_events(2)
    events += [
        {"ph": "i", "cat": "cpu_instant_event", "name": "[memory]", "pid": 100, "tid": 100,
         "ts": Decimal("1712195495519690.5"), "s": "t",
         "args": {"Total Reserved": 2097152, "Total Allocated": 512, "Bytes": 512, "Addr": 140000,
                  "Device Type": 1, "Device Id": 0}},
        {"ph": "C", "name": "gpu_util", "pid": 0, "ts": Decimal("1712195495519690"),
         "args": {"util": Decimal("55.5")}},
        {"name": "process_name", "ph": "M", "ts": Decimal("1712195495519689"), "pid": 0, "tid": 0,
         "args": {"name": "python"}},
        {"ph": "B", "name": "range", "cat": "user_annotation", "pid": 100, "tid": 200,
         "ts": Decimal("1712195495519700.5")},
        {"ph": "E", "pid": 100, "tid": 200, "ts": Decimal("1712195495519710.75")},
    ]
    name = "syn.json.gz" if compress else "syn.json"
    return write_kineto(tmp_path / name, events, header={"schemaVersion": 1, "distributedInfo": {"rank": 3,
                        "world_size": 8}}, trailer={"traceName": "x", "baseTimeNanoseconds": 5}, compress=compress)


@pytest.mark.parametrize("compress", [False, True])
def test_synthetic_kineto_trace_to_model(tmp_path: Path, compress: bool) -> None:
    """Kinds, device columns, nesting, steps, correlation, B/E pairs, memory, counters, flows, metadata."""
    result = ingest_one(_synthetic(tmp_path, compress), tmp_path / "s.traceview")
    assert result.warnings == []
    store = result.store
    rows = {r[0]: r[1:] for r in store_rows(store, "slices", SLICE_COLS)}
    assert rows == {
        0: ("ProfilerStep#7", "step", "cpu", None, None, 0, None, 40500 - 2 * 8250, None, 7),
        1: ("aten::op0", "cpu_op", "cpu", None, None, 1, 0, 8250 - 2002, None, 7),
        2: ("aten::op1", "cpu_op", "cpu", None, None, 1, 0, 8250, None, 7),
        3: ("cudaLaunchKernel", "runtime", "cpu", None, None, 2, 1, 2002, 77, 7),
        4: ("void gemm_kernel<float>(float*)", "kernel", "cuda", 0, 7, 0, None, 4444, 77, 7),
        10: ("range", "annotation", "cpu", None, None, 0, None, 10250, None, 7),
    }
    times = dict((sid, (ts, dur)) for sid, ts, dur in store_rows(store, "slices", "slice_id, ts_ns, dur_ns"))
    assert times[0] == (5 + 1712195495519689047, 40500)
    assert times[10] == (5 + 1712195495519700500, 10250)
    assert store_rows(store, "slices", "DISTINCT rank, trace_id") == [(3, result.manifest["inputs"][0]["trace_id"])]
    memory_cols = "ts_ns, device_type, device_id, addr, bytes, total_allocated, total_reserved"
    assert store_rows(store, "memory", memory_cols) == [(5 + 1712195495519690500, "cuda", 0, 140000, 512, 512, 2097152)]
    assert store_rows(store, "counters", "ts_ns, name, series, value") == [
        (5 + 1712195495519690000, "gpu_util", "util", 55.5)
    ]
    assert store_rows(store, "flows", "kind, flow_id, src_slice_id, dst_slice_id") == [("ac2g", "77", None, 4)]
    assert store_rows(store, "instants", "name, scope") == [("Record Window End", "g")]
    meta = store_rows(store, "metadata", "kind, key, value")
    assert ("process", "process_name", "python") in meta
    assert ("distributed", "distributedInfo", json.dumps({"rank": 3, "world_size": 8})) in meta
    assert store_rows(store, "traces", "rank, world_size, base_time_ns, event_count, slice_count") == [
        (3, 8, 5, 12, 6)
    ]


def test_bare_array_trace(tmp_path: Path) -> None:
    """The JSON Array form of the Chrome format (no enclosing object) is read too."""
    events = [
        {"ph": "X", "name": "outer", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 10, "dur": 10},
        {"ph": "X", "name": "inner", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 12.5, "dur": 2.25},
    ]
    path = tmp_path / "array.json"
    path.write_text(json.dumps(events, indent=1))
    result = ingest_one(path, tmp_path / "s.traceview")
    assert result.warnings == []
    assert store_rows(result.store, "slices", "slice_id, ts_ns, dur_ns, depth, parent_id, self_ns") == [
        (0, 10000, 10000, 0, None, 7750),
        (1, 12500, 2250, 1, 0, 2250),
    ]


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    """A .json.gz made of two gzip members (legal, e.g. `cat a.gz b.gz`) is read as one stream."""
    text = (tmp_path / "t").with_suffix(".json")
    write_kineto(text, small_kineto_events(3))
    data = text.read_bytes()
    half = len(data) // 2
    path = tmp_path / "two.json.gz"
    path.write_bytes(gzip.compress(data[:half], mtime=0) + gzip.compress(data[half:], mtime=0))
    result = ingest_one(path, tmp_path / "s.traceview")
    assert result.warnings == []
    assert len(store_rows(result.store, "slices", "slice_id")) == 6


def _malformed_trace(tmp_path: Path, bad_name: str) -> tuple[Path, list[str]]:
    """Four cpu_ops in Kineto layout; event 1 carries `bad_name` written raw into the JSON text."""
    names = ["aten::first", "BAD", "aten::third", "aten::fourth"]
    events = [
        x_event(n, f"1712195495519{600 + 10 * i}.125", "3.500", args={"External id": i}) for i, n in enumerate(names)
    ]
    text = write_kineto(tmp_path / "t.json", events).read_text()
    raw = text.replace('"name": "BAD"', '"name": "' + bad_name + '"')
    assert raw != text
    path = tmp_path / "malformed.json"
    path.write_bytes(raw.encode())
    with pytest.raises(ValueError):
        json.loads(raw)
    return path, names


MALFORMED = {
    "control_char": "aten::\x01copy\x1f",
    "raw_tab_newline": "record\tfunction\nname",
    "quotes_paired": 'torch/nn/functional.py(2498): layer_norm("x", "y")',
    "quote_single": '<lambda>" at model.py',
}


@pytest.mark.parametrize(
    "case",
    [
        "control_char",
        "raw_tab_newline",
        "quotes_paired",
        "quote_single",
    ],
)
def test_malformed_string_event_rest_ingests(case: str, tmp_path: Path) -> None:
    """A malformed name is repaired or its event skipped, counted in a warning; all other events ingest."""
    bad = MALFORMED[case]
    path, names = _malformed_trace(tmp_path, bad)
    result = ingest_one(path, tmp_path / "s.traceview")
    got = [r[0] for r in store_rows(result.store, "slices", "name", "ORDER BY ts_ns")]
    repaired = [w for w in result.warnings if "malformed strings and were repaired" in w]
    skipped = [w for w in result.warnings if "could not be repaired and were skipped" in w]
    assert not [w for w in result.warnings if "truncated" in w], result.warnings
    if bad in got:
        assert got == [names[0], bad, names[2], names[3]]
        assert len(repaired) == 1 and ": 1 events had malformed strings" in repaired[0], result.warnings
    else:
        assert got == [names[0], names[2], names[3]]
        assert len(skipped) == 1 and ": 1 malformed events could not" in skipped[0], result.warnings


def test_unescaped_quotes_in_kineto_name_are_repaired(tmp_path: Path) -> None:
    """pytorch#130622-style names with inner quotes are repaired, as jsonscan's quote repair intends."""
    bad = MALFORMED["quotes_paired"]
    path, names = _malformed_trace(tmp_path, bad)
    result = ingest_one(path, tmp_path / "s.traceview")
    got = [r[0] for r in store_rows(result.store, "slices", "name", "ORDER BY ts_ns")]
    assert got == [names[0], bad, names[2], names[3]]


def test_slice_id_stays_event_index_after_a_skipped_event(tmp_path: Path) -> None:
    """slice_id is the event's index in the file even when an earlier event had to be skipped."""
    path, names = _malformed_trace(tmp_path, MALFORMED["quotes_paired"])
    result = ingest_one(path, tmp_path / "s.traceview")
    rows = dict(store_rows(result.store, "slices", "name, slice_id"))
    assert rows["aten::first"] == 0
    assert rows["aten::third"] == 2
    assert rows["aten::fourth"] == 3


def test_control_chars_repaired_in_gzip(tmp_path: Path) -> None:
    """The repair works the same inside a .json.gz."""
    path, _ = _malformed_trace(tmp_path, MALFORMED["control_char"])
    gz = tmp_path / "malformed.json.gz"
    gz.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    result = ingest_one(gz, tmp_path / "s.traceview")
    names = [r[0] for r in store_rows(result.store, "slices", "name", "ORDER BY slice_id")]
    assert names[1] == MALFORMED["control_char"] and len(names) == 4
    assert any("1 events had malformed strings and were repaired" in w for w in result.warnings)


def test_events_without_ts_are_counted(tmp_path: Path) -> None:
    """Complete events without a usable ts are skipped and counted."""
    events: list[dict[str, Any]] = [x_event("ok", "10.5", "1")]
    events.append({"ph": "X", "cat": "cpu_op", "name": "no_ts", "pid": 100, "tid": 100, "dur": Decimal("1")})
    result = ingest_one(write_kineto(tmp_path / "t.json", events), tmp_path / "s.traceview")
    assert [r[0] for r in store_rows(result.store, "slices", "name")] == ["ok"]
    assert any("1 complete events had no usable ts and were skipped" in w for w in result.warnings)


def test_unmatched_begin_end_are_counted(tmp_path: Path) -> None:
    """B without E and E without B are reported; matched pairs become slices."""
    events: list[dict[str, Any]] = [
        {"ph": "B", "name": "open", "cat": "user_annotation", "pid": 1, "tid": 1, "ts": Decimal("1")},
        {"ph": "B", "name": "pair", "cat": "user_annotation", "pid": 1, "tid": 2, "ts": Decimal("2")},
        {"ph": "E", "pid": 1, "tid": 2, "ts": Decimal("5")},
        {"ph": "E", "pid": 1, "tid": 3, "ts": Decimal("6")},
    ]
    result = ingest_one(write_kineto(tmp_path / "t.json", events), tmp_path / "s.traceview")
    assert store_rows(result.store, "slices", "slice_id, name, dur_ns") == [(1, "pair", 3000)]
    assert any("1 B events without an E and 1 E events without a B were skipped" in w for w in result.warnings)


def test_large_trace_keeps_every_column_of_a_slice_together(tmp_path: Path) -> None:
    """Past one DuckDB row group the work runs in parallel; no column may be joined to another event's row."""
    n = 400_000
    base = 1712195495519689
    lines = []
    for i in range(n):
        kind = ("cpu_op", "cuda_runtime", "kernel")[i % 3]
        pid, tid = (0, 7) if kind == "kernel" else (100, 100 + i % 4)
        lines.append(
            f'{{"ph": "X", "cat": "{kind}", "name": "op{i % 997}", "pid": {pid}, "tid": {tid},'
            f' "ts": {base + i}.{i % 1000:03d}, "dur": {i % 50}.5, "args": {{"External id": {i}, "correlation": {i}}}}}'
        )
    path = tmp_path / "big.json"
    path.write_text('{"traceEvents": [\n' + ",\n".join(lines) + "\n]}\n")
    store = ingest_one(path, tmp_path / "big.traceview").store
    rows = store_rows(
        store, "slices", "count(*), count(*) FILTER (WHERE slice_id <> external_id"
        " OR name <> 'op' || (slice_id % 997) OR ts_ns <> (1712195495519689 + slice_id) * 1000 + slice_id % 1000"
        " OR TRY_CAST(json_extract_string(args, '$.\"External id\"') AS BIGINT) <> slice_id)",
    )
    assert rows == [(n, 0)]


def test_slices_out_of_file_order_are_sorted_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`slices0` is built without a sort, relying on DuckDB keeping the scan's order; were the rows
    ever out of slice_id order, linking sorts them back and the store is the same."""
    from traceview.parsers import chrome

    trace = _synthetic(tmp_path)
    want = store_rows(ingest_one(trace, tmp_path / "a.traceview").store, "slices", SLICE_COLS)
    build_slices = chrome._Builder.build_slices

    def shuffled(self: chrome._Builder) -> None:
        build_slices(self)
        self.sql("CREATE OR REPLACE TABLE slices0 AS SELECT * FROM slices0 ORDER BY slice_id DESC")

    monkeypatch.setattr(chrome._Builder, "build_slices", shuffled)
    assert store_rows(ingest_one(trace, tmp_path / "b.traceview").store, "slices", SLICE_COLS) == want


def _flow_point(ph: str, cat: str, flow_id: int | str, tid: int, ts: int) -> dict[str, Any]:
    point = {"ph": ph, "cat": cat, "id": flow_id, "pid": 1, "tid": tid, "ts": ts}
    return {**point, "bp": "e"} if ph in ("t", "f") else point


@pytest.mark.parametrize("lone_id", [6, "0x6"], ids=["integer ids", "a text id"])
def test_flows_pair_on_cat_and_id(tmp_path: Path, lone_id: int | str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first start of a (cat, id) is the source of each of its steps and ends; a start that nothing
    ends is kept alone; an end without a start keeps a null source. Integer ids are paired in numpy,
    a text id sends the trace through the SQL pairing: the same rows, in the same order."""
    events = [x_event(name, 0, 100, pid=1, tid=tid) for name, tid in (("A", 1), ("B", 2), ("C", 3))]
    events += [
        _flow_point("s", "fwdbwd", 5, 1, 10),
        _flow_point("s", "fwdbwd", 5, 3, 20),  # a second start of flow 5: not its source
        _flow_point("f", "fwdbwd", 5, 2, 30),
        _flow_point("t", "fwdbwd", 5, 3, 40),
        _flow_point("s", "fwdbwd", lone_id, 1, 50),
        _flow_point("f", "ac2g", 7, 2, 60),
        _flow_point("s", "other", 5, 2, 70),  # same id, other cat: another flow
        _flow_point("f", "other", 5, 1, 80),
        _flow_point("s", "fwdbwd", 8, 9, 90),  # on no slice's track
        _flow_point("f", "fwdbwd", 8, 3, 95),
    ]
    in_sql = []
    pair_in_sql = chrome._Builder._pair_flows_in_sql
    monkeypatch.setattr(chrome._Builder, "_pair_flows_in_sql", lambda *a: in_sql.append(1) or pair_in_sql(*a))
    result = ingest_one(write_kineto(tmp_path / "flows.json", events), tmp_path / "f.traceview")
    assert bool(in_sql) == isinstance(lone_id, str)
    slice_of = {name: sid for sid, name in store_rows(result.store, "slices", "slice_id, name")}
    a, b, c = slice_of["A"], slice_of["B"], slice_of["C"]
    expected = [
        ("fwdbwd", "5", a, b), ("fwdbwd", "5", a, c), ("fwdbwd", str(lone_id), a, None), ("ac2g", "7", None, b),
        ("other", "5", b, a), ("fwdbwd", "8", None, c),
    ]
    order = [(dst is None, dst or 0, src is None, src or 0, kind, flow) for kind, flow, src, dst in expected]
    expected = [row for _, row in sorted(zip(order, expected, strict=True))]
    assert store_rows(result.store, "flows", "kind, flow_id, src_slice_id, dst_slice_id") == expected
