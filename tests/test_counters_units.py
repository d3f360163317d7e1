"""Counters by unit: only counters in a bandwidth unit count as bandwidth, and a counter's value series
is read, not its id series (issue 20, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from ascend_support import ASCEND, query
from conftest import write_kineto, x_event

from traceview.analysis.analyze import AnalysisReport, run_analyze
from traceview.store import ingest

T0_US = 1736405443756311
# torch_npu trace_view.json process ids (pid << 10 | sort_index << 5 | device), as in the corpus.
HW, HBM, LLC, ACC, SOC = 3089232288, 3089232416, 3089232448, 3089232544, 3089232512


def _us(offset_us: int) -> str:
    return f"{T0_US + offset_us}.100"


def _counter(name: str, pid: int, offset_us: int, args: dict) -> dict:
    return {"name": name, "ts": _us(offset_us), "pid": pid, "tid": 0, "args": args, "ph": "C"}


def _ascend_timeline() -> list[dict]:
    """Counters of a torch_npu trace_view.json, in the corpus's forms: HBM in MB/s, LLC hit rate in % and
    throughput in MB/s, Acc PMU `{"value": v, "acc_id": n}` for 28 accelerators, Stars Soc levels."""
    events: list[dict] = [
        {"name": "process_name", "pid": pid, "tid": 0, "args": {"name": label}, "ph": "M"}
        for pid, label in ((HW, "Ascend Hardware"), (HBM, "HBM"), (LLC, "LLC"), (ACC, "Acc PMU"),
                           (SOC, "Stars Soc Info"))
    ]
    events.append({"name": "process_labels", "pid": HW, "tid": 0, "args": {"labels": "NPU 0"}, "ph": "M"})
    events.append({"name": "MatMul", "pid": HW, "tid": 2, "ts": _us(0), "dur": 50.0, "ph": "X",
                   "args": {"Task Type": "AI_CORE", "Physic Stream Id": 2, "Task Id": 1}})
    for i, read_mb in enumerate((1.5, 3.0)):
        at = 10 * i
        events.append(_counter("HBM 0/Read", HBM, at, {"Read(MB/s)": read_mb}))
        events.append(_counter("LLC 0 Read/Hit Rate", LLC, at, {"Hit Rate(%)": 0.894}))
        events.append(_counter("LLC 0 Read/Throughput", LLC, at, {"Throughput(MB/s)": 2.0}))
        events.append(_counter("Mata Bw Level", SOC, at, {"Mata Bw Level": 3}))
        for acc in range(28):
            events.append(_counter("read_bandwidth", ACC, at, {"value": i, "acc_id": acc}))
    return events


def _ascend_dump(tmp: Path) -> Path:
    dump = tmp / "host_1_20250101_ascend_pt"
    out = dump / "ASCEND_PROFILER_OUTPUT"
    out.mkdir(parents=True)
    (dump / "profiler_info_0.json").write_text(json.dumps({"config": {}, "rank_id": 0}))
    (out / "trace_view.json").write_text(json.dumps(_ascend_timeline()))
    return dump


def _bandwidth_counters(report: AnalysisReport) -> pl.DataFrame:
    result = report.result("bandwidth")
    assert result is not None and result.error is None and result.frame is not None
    return result.frame.filter(pl.col("source") == "counter")


def test_ascend_counters_carry_their_unit_and_value_series(tmp_path: Path) -> None:
    store = ingest([_ascend_dump(tmp_path)], tmp_path / "s.traceview").store
    units = dict(query(store, "SELECT DISTINCT name, unit FROM counters"))
    assert units == {
        "HBM 0/Read": "bytes/s",
        "LLC 0 Read/Hit Rate": "%",
        "LLC 0 Read/Throughput": "bytes/s",
        "Mata Bw Level": None,
        "read_bandwidth": None,
    }
    pmu = query(store, "SELECT series, value FROM counters WHERE name = 'read_bandwidth' ORDER BY ts_ns, value")
    assert len(pmu) == 56
    assert {value for _, value in pmu} == {0.0, 1.0}, "the value series, not acc_id 0..27"
    assert sorted({series for series, _ in pmu}) == sorted(f"value acc_id={n}" for n in range(28))
    assert query(store, "SELECT value FROM counters WHERE name = 'LLC 0 Read/Hit Rate' LIMIT 1") == [(0.894,)]


def test_only_bandwidth_units_are_bandwidth(tmp_path: Path) -> None:
    report = run_analyze([_ascend_dump(tmp_path)], cache_dir=tmp_path / "cache")
    counters = _bandwidth_counters(report).sort("name", "ts_ns")
    assert sorted(set(counters["name"])) == [f"HBM 0/Read ({HBM})", f"LLC 0 Read/Throughput ({LLC})"]
    hbm = counters.filter(pl.col("name").str.starts_with("HBM"))
    assert hbm["achieved_bytes_per_s"].to_list() == [1.5 * 1048576, 3.0 * 1048576]


def test_kineto_counter_units_and_id_series(tmp_path: Path) -> None:
    base = 1_712_000_000_000_000
    events = [x_event("aten::mm", base, "5.000")]
    counters = [
        ("HBM (GB/s)", {"read": 2, "write": 1}),  # unit from the counter name: both series in GB/s
        ("NIC", {"rx (KiB/s)": 1}),
        ("L2", {"Hit Rate(%)": 50}),
        ("SM", {"util": 55.5}),
        ("GPU 0 Power", {"W": 300}),
        ("dma_read_bandwidth", {"acc_id": 3, "value": 7}),
        ("tagged", {"id": 9}),  # an id with nothing else is the value
    ]
    for name, args in counters:
        events.append({"ph": "C", "name": name, "pid": 0, "tid": 0, "ts": base + 1, "args": args})
    store = ingest([write_kineto(tmp_path / "c.json", events)], tmp_path / "k.traceview").store
    rows = query(store, "SELECT name, series, value, unit FROM counters ORDER BY name, series")
    assert rows == [
        ("GPU 0 Power", "W", 300.0, "W"),
        ("HBM (GB/s)", "read", 2e9, "bytes/s"),
        ("HBM (GB/s)", "write", 1e9, "bytes/s"),
        ("L2", "Hit Rate(%)", 50.0, "%"),
        ("NIC", "rx (KiB/s)", 1024.0, "bytes/s"),
        ("SM", "util", 55.5, None),
        ("dma_read_bandwidth", "value acc_id=3", 7.0, None),
        ("tagged", "id", 9.0, None),
    ]
    report = run_analyze([tmp_path / "k.traceview"])
    bandwidth = _bandwidth_counters(report).sort("name")
    assert bandwidth["name"].to_list() == ["HBM (GB/s) (0)", "NIC (0)"]
    assert bandwidth["achieved_bytes_per_s"].to_list() == [3e9, 1024.0]


def test_corpus_acc_pmu_and_llc_hit_rate_are_no_bandwidth(tmp_path: Path) -> None:
    """The corpus's torch_npu level0 rank: `read_bandwidth` showed 378 B/s (acc_id 0..27 summed, its values are 0)
    and an LLC hit rate showed as B/s."""
    dump = ASCEND / "torch_npu_2025_text" / "level0" / "rank0_ascend_pt"
    report = run_analyze([dump], cache_dir=tmp_path / "cache")
    names = {name.rsplit(" (", 1)[0] for name in _bandwidth_counters(report)["name"]}
    assert names == {f"HBM {n}/{way}" for n in range(4) for way in ("Read", "Write")} | {
        "LLC 0 Read/Throughput",
        "LLC 1 Read/Throughput",
    }
