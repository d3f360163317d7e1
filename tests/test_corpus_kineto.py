"""Every real Kineto/Chrome trace of the shared corpus ingests, with exact counts, times and busy time."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import (
    KINETO_CORPUS,
    NOT_CHROME,
    CorpusIngest,
    chrome_corpus_files,
    exact_ns,
    interval_union_ns,
    load_trace,
    store_rows,
    trace_events,
    x_event_indices,
)

import traceview

CHROME = chrome_corpus_files()
NS_RESOLUTION = "hta/ns_resolution_trace/rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz"
NCCL = "hta/nccl_parser_config/nccl_data.json.gz"
KERNEL_CATS = ("kernel", "mtia_ccp_events")  # device work the `kernels` view holds (legacy `Kernel` too)

KERNEL_BUSY_SQL = """
WITH k AS (
  SELECT device_id, ts_ns AS s, ts_ns + dur_ns AS e FROM kernels
),
o AS (
  SELECT *, max(e) OVER (PARTITION BY device_id ORDER BY s, e
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
  FROM k
),
g AS (
  SELECT *, sum(CASE WHEN prev_end IS NULL OR s > prev_end THEN 1 ELSE 0 END)
              OVER (PARTITION BY device_id ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS grp
  FROM o
)
SELECT device_id, CAST(sum(hi - lo) AS BIGINT) AS busy_ns
FROM (SELECT device_id, grp, min(s) AS lo, max(e) AS hi FROM g GROUP BY device_id, grp)
GROUP BY device_id ORDER BY device_id
"""


def test_corpus_is_present() -> None:
    """The corpus holds the traces this suite is written against."""
    assert len(CHROME) >= 30
    for rel in (NS_RESOLUTION, NCCL, *NOT_CHROME):
        assert (KINETO_CORPUS / rel).is_file(), rel


@pytest.mark.parametrize("rel", CHROME)
def test_corpus_trace_ingests_every_complete_event(rel: str, corpus_ingests: dict[str, CorpusIngest]) -> None:
    """The slices are exactly the file's `ph == "X"` events, by count and by slice_id (= event index)."""
    outcome = corpus_ingests[rel]
    assert outcome.error is None, str(outcome.error)
    events = trace_events(load_trace(outcome.path))
    expected = x_event_indices(events)
    ids = sorted(row[0] for row in store_rows(outcome.store, "slices", "slice_id"))
    assert len(ids) == len(expected)
    assert ids == expected
    traces = store_rows(outcome.store, "traces", "slice_count, event_count")
    assert traces == [(len(expected), len(events))]


@pytest.mark.parametrize("rel", sorted(NOT_CHROME))
def test_corpus_non_chrome_file_is_refused_in_one_line(rel: str, corpus_ingests: dict[str, CorpusIngest]) -> None:
    """The Chakra execution trace and the memory-timeline export are named as what they are not."""
    outcome = corpus_ingests[rel]
    assert outcome.result is None
    assert str(outcome.error) == f"{outcome.path}: {NOT_CHROME[rel]}"
    assert "\n" not in str(outcome.error)


@pytest.mark.parametrize("rel", CHROME)
def test_corpus_times_are_exact_ns(rel: str, corpus_ingests: dict[str, CorpusIngest]) -> None:
    """ts_ns/dur_ns of every slice equal baseTimeNanoseconds + the decimal µs text * 1000, exactly."""
    outcome = corpus_ingests[rel]
    doc = load_trace(outcome.path)
    base = int(doc.get("baseTimeNanoseconds") or 0) if isinstance(doc, dict) else 0
    events = trace_events(doc)
    got = {sid: (ts, dur) for sid, ts, dur in store_rows(outcome.store, "slices", "slice_id, ts_ns, dur_ns")}
    expected = {
        i: (base + exact_ns(events[i]["ts"]), exact_ns(events[i].get("dur", 0))) for i in x_event_indices(events)
    }
    assert got == expected
    assert store_rows(outcome.store, "traces", "base_time_ns") == [(base,)]


def test_ns_resolution_trace_keeps_the_ns_digits(corpus_ingests: dict[str, CorpusIngest]) -> None:
    """Absolute µs with 3 decimals (beyond float64) come out as the exact integers of their text."""
    outcome = corpus_ingests[NS_RESOLUTION]
    events = trace_events(load_trace(outcome.path))
    first = events[x_event_indices(events)[0]]
    assert first["ts"] == Decimal("1712195495519689.047")
    assert float(first["ts"]) * 1000 != 1712195495519689047  # a double would lose the ns
    got = {sid: (ts, dur) for sid, ts, dur in store_rows(outcome.store, "slices", "slice_id, ts_ns, dur_ns")}
    assert got[x_event_indices(events)[0]] == (1712195495519689047, 63813)
    for index in x_event_indices(events):
        ev = events[index]
        assert got[index] == (int(ev["ts"] * 1000), int(ev["dur"] * 1000)), index
    assert len(got) == 45420


def test_relative_trace_adds_base_time_ns(corpus_ingests: dict[str, CorpusIngest]) -> None:
    """Relative µs + baseTimeNanoseconds: ts_ns = base + ts_text * 1000, exactly."""
    outcome = corpus_ingests[NCCL]
    doc = load_trace(outcome.path)
    base = int(doc["baseTimeNanoseconds"])
    assert base == 1711964646000000000
    events = trace_events(doc)
    got = dict(store_rows(outcome.store, "slices", "slice_id, ts_ns"))
    indices = x_event_indices(events)
    assert len(got) == len(indices) == 26933
    for index in indices:
        assert got[index] == base + int(events[index]["ts"] * 1000), index


def _python_kernel_busy(path: Path) -> dict[int, int]:
    """Per device: union of kernel intervals in ns, computed from the raw JSON events."""
    doc = load_trace(path)
    base = int(doc.get("baseTimeNanoseconds") or 0) if isinstance(doc, dict) else 0
    per_device: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for ev in trace_events(doc):
        if not isinstance(ev, dict) or ev.get("ph") != "X" or str(ev.get("cat", "")).lower() not in KERNEL_CATS:
            continue
        if str(ev.get("cat")) == "mtia_ccp_events" and str(ev.get("name", "")).startswith("event"):
            continue  # MTIA event waits/records are synchronisation, not kernels
        args = ev.get("args") or {}
        device = int(args["device"]) if "device" in args else int(ev["pid"])
        start = base + exact_ns(ev["ts"])
        per_device[device].append((start, start + exact_ns(ev.get("dur", 0))))
    return {device: interval_union_ns(iv) for device, iv in sorted(per_device.items())}


KERNEL_TRACES = [rel for rel in CHROME if _python_kernel_busy(KINETO_CORPUS / rel)]


def test_kernel_busy_covers_several_traces() -> None:
    """The busy-time check runs over many traces (CUDA, ROCm, MTIA, legacy `Kernel`)."""
    assert len(KERNEL_TRACES) >= 15
    assert "hta/trace_file_list/inference_rank_1.json.gz" in KERNEL_TRACES
    assert "hta/mtia_inference_trace/mtia_inference_rank_0.json.gz" in KERNEL_TRACES


@pytest.mark.parametrize("rel", KERNEL_TRACES)
def test_kernel_busy_time_matches_independent_union(rel: str, corpus_ingests: dict[str, CorpusIngest]) -> None:
    """SQL union of `kernels` intervals per device equals a Python interval union of the raw events."""
    outcome = corpus_ingests[rel]
    with traceview.open(outcome.store) as session:
        frame = session.sql(KERNEL_BUSY_SQL)
    got = {int(row["device_id"]): int(row["busy_ns"]) for row in frame.to_dicts()}
    assert got == _python_kernel_busy(outcome.path)
