"""The committed samples are valid to the parsers: they ingest with no warnings, kernels as in truth.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_trace, store_rows, trace_events

from traceview.store import ingest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
SYNTHETIC = ["longctx_h200", "longctx_910b", "runtime_v1", "runtime_v2"]


def sample_input(name: str) -> Path:
    """The trace file, or the torch_npu dump directory (stored gzipped), of a sample."""
    dumps = sorted((SAMPLES / name).glob("*_ascend_pt"))
    return dumps[0] if dumps else (SAMPLES / name / json.loads((SAMPLES / name / "truth.json").read_text())["files"][0])


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_sample_ingests_cleanly(name: str, tmp_path: Path) -> None:
    truth = json.loads((SAMPLES / name / "truth.json").read_text())
    result = ingest([sample_input(name)], tmp_path / "s.traceview")
    assert result.warnings == []
    kernels = store_rows(result.store, "slices", "count(*)", "WHERE kind = 'kernel'")[0][0]
    assert kernels == sum(step["kernel_count"] for step in truth["steps"])
    steps = store_rows(result.store, "slices", "count(*)", "WHERE kind = 'step'")[0][0]
    assert steps == len(truth["steps"])


def test_gzipped_dump_is_read_through_a_mirror_and_left_untouched(tmp_path: Path) -> None:
    dump = sample_input("longctx_910b")
    before = sorted((p.relative_to(dump), p.stat().st_mtime_ns) for p in dump.rglob("*"))
    ingest([dump], tmp_path / "s.traceview")
    assert sorted((p.relative_to(dump), p.stat().st_mtime_ns) for p in dump.rglob("*")) == before


def test_real_cpu_sample_ingests_cleanly(tmp_path: Path) -> None:
    truth = json.loads((SAMPLES / "real_cpu" / "truth.json").read_text())
    result = ingest([SAMPLES / "real_cpu" / "tiny_decoder_cpu.pt.trace.json.gz"], tmp_path / "s.traceview")
    # a real with_stack profile has python frames that overlap partially: the one expected warning
    assert all("overlap their parent partially" in w for w in result.warnings)
    steps = store_rows(result.store, "slices", "count(*)", "WHERE kind = 'step'")[0][0]
    assert steps == len(truth["steps"])


def test_real_h200_sample_ingests_every_complete_event(tmp_path: Path) -> None:
    truth = json.loads((SAMPLES / "real_h200" / "truth.json").read_text())
    trace = SAMPLES / "real_h200" / "small_decoder_h200.pt.trace.json.gz"
    result = ingest([trace], tmp_path / "s.traceview")
    # cuBLASLt's split-K reduce starts before its GEMM ends on the same stream (an early launch on
    # Hopper): the nesting keeps and flags those, and the one warning says where they are
    flagged = store_rows(result.store, "slices", "count(*)", "WHERE overlaps_parent")[0][0]
    (warning,) = result.warnings
    assert f"{flagged} slices overlap their parent partially" in warning
    assert f"; {flagged} of them on device streams, where a task may start before the one before it ends" in warning
    events = trace_events(load_trace(trace))
    x_events = sum(1 for e in events if isinstance(e, dict) and e.get("ph") == "X")
    assert store_rows(result.store, "slices", "count(*)")[0][0] == x_events
    steps = store_rows(result.store, "slices", "count(*)", "WHERE kind = 'step'")[0][0]
    assert steps == len(truth["steps"])
    overlapping = store_rows(result.store, "slices", "DISTINCT device_type, kind", "WHERE overlaps_parent")
    assert overlapping == [("cuda", "kernel")]
