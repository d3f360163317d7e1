"""Device time to framework ops, one path for `flame --weight device` and the cross-vendor `diff --by op`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ascend_support import ASCEND, query
from conftest import write_kineto, x_event

from traceview.analysis import flame
from traceview.analysis.attribution import create_owners
from traceview.analysis.diff import diff as run_diff
from traceview.engine import connect, resolve_store

TORCH_NPU_DUMPS = (
    sorted(p.relative_to(ASCEND).as_posix() for p in ASCEND.glob("torch_npu_*/*/*_ascend_pt"))
    if ASCEND.is_dir() else []
)  # fmt: skip
# Dumps without a host timeline (no trace_view.json, no database): no launches, so nothing to attribute to.
NO_HOST_TIMELINE = {"torch_npu_cann83_level2/rank_0_ascend_pt", "torch_npu_cann83_level2/rank_1_ascend_pt"}
MAX_UNATTRIBUTED_SHARE = 0.05

B = 1_700_000_000_000_000  # µs


def _x(name: str, ts: int, dur: int, pid: int, tid: int, cat: str | None = None, **args: Any) -> dict[str, Any]:
    event = {"ph": "X", "name": name, "pid": pid, "tid": tid, "ts": f"{B + ts}.000", "dur": dur, "args": args}
    return event | ({"cat": cat} if cat else {})


def _flow(cat: str, flow_id: int, ph: str, ts: int, pid: int, tid: int) -> dict[str, Any]:
    return {"ph": ph, "bp": "e", "cat": cat, "name": cat, "id": flow_id, "pid": pid, "tid": tid, "ts": f"{B + ts}.000"}


def _meta(name: str, pid: int, value: str, tid: int = 0) -> dict[str, Any]:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "args": {"name": value}}


PY, CANN, HW, HCCL = 100, 200, 300, 400
MAIN, ACL = 100, 101


def _ascend_timeline() -> list[dict[str, Any]]:
    """A torch_npu timeline with each way a device task reaches (or misses) its framework op.

    - the kernel: an async_npu flow from `aclnnInplaceCopy` (depth 2 under aten::copy_) and a HostToDevice flow
      from `Node@launch` (also depth 2, on the ACL thread under Dequeue and AscendCL, inside no op);
    - the collective: an async_npu flow from HcclAllreduce; its two SDMA tasks share its connection id only;
    - a copy launched on the ACL thread outside any op; a kernel with no link at all.
    """
    return [
        _meta("process_name", PY, "Python"), _meta("process_name", CANN, "CANN"),
        _meta("process_name", HW, "Ascend Hardware"), _meta("thread_name", HW, "Stream 2", 2),
        _meta("thread_name", HW, "Stream 4", 4), _meta("process_name", HCCL, "HCCL"),
        _meta("thread_name", HCCL, "Group 0 Communication", 0),
        _x("ProfilerStep#1", 0, 1000, PY, MAIN, "cpu_op"),
        _x("aten::copy_", 10, 100, PY, MAIN, "cpu_op"),
        _x("aclnnInplaceCopy", 20, 40, PY, MAIN, "cpu_op"),
        _x("c10d::allreduce_", 200, 100, PY, MAIN, "cpu_op"),
        _x("HcclAllreduce", 210, 50, PY, MAIN, "cpu_op"),
        _x("Dequeue@aclnnInplaceCopy", 28, 30, CANN, ACL),
        _x("AscendCL@aclnnInplaceCopy", 30, 20, CANN, ACL),
        _x("Node@launch", 31, 5, CANN, ACL, connection_id=11),
        _x("AscendCL@aclrtMemcpyAsync", 300, 10, CANN, ACL, connection_id=13),
        _x("aclnnInplaceCopy_TensorMoveAiCore_TensorMove", 500, 50, HW, 2, **{"Task Type": "AI_CORE"},
           connection_id=11),
        _x("hcom_allReduce__1_0_1", 600, 100, HCCL, 0, connection_id=12),
        _x("SDMA", 610, 20, HW, 4, **{"Task Type": "SDMA"}, connection_id=12),
        _x("SDMA", 650, 30, HW, 4, **{"Task Type": "SDMA"}, connection_id=12),
        _x("MEMCPY_ASYNC", 700, 40, HW, 2, **{"Task Type": "PCIE_DMA_SQE"}, connection_id=13),
        _x("MatMul", 800, 10, HW, 2, **{"Task Type": "AI_CORE"}),
        _flow("async_npu", 1, "s", 20, PY, MAIN), _flow("async_npu", 1, "f", 500, HW, 2),
        _flow("HostToDevice", 11, "s", 31, CANN, ACL), _flow("HostToDevice", 11, "f", 500, HW, 2),
        _flow("async_npu", 2, "s", 210, PY, MAIN), _flow("async_npu", 2, "f", 600, HCCL, 0),
        _flow("HostToDevice", 13, "s", 300, CANN, ACL), _flow("HostToDevice", 13, "f", 700, HW, 2),
    ]  # fmt: skip


def _cuda_trace(path: Path) -> Path:
    """A Kineto trace with the same two framework ops, each launching one device task."""
    base = 1_712_195_495_519_000
    stream = {"device": 0, "stream": 7}
    events = [
        x_event("ProfilerStep#1", f"{base}.000", "500.000", cat="user_annotation"),
        x_event("aten::copy_", f"{base + 10}.000", "50.000", args={"External id": 1}),
        x_event("cudaMemcpyAsync", f"{base + 20}.000", "5.000", cat="cuda_runtime",
                args={"External id": 1, "correlation": 5}),
        x_event("Memcpy DtoD (Device -> Device)", f"{base + 100}.000", "30.000", cat="gpu_memcpy", pid=0, tid=7,
                args={"External id": 1, "correlation": 5} | stream),
        x_event("c10d::allreduce_", f"{base + 200}.000", "50.000", args={"External id": 2}),
        x_event("cudaLaunchKernel", f"{base + 210}.000", "5.000", cat="cuda_runtime",
                args={"External id": 2, "correlation": 6}),
        x_event("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
                f"{base + 300}.000", "120.000", cat="kernel", pid=0, tid=7,
                args={"External id": 2, "correlation": 6} | stream),
    ]  # fmt: skip
    return write_kineto(path, events)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("attribution")
    npu = root / "trace_view.json"
    npu.write_text(json.dumps(_ascend_timeline()))
    return {"npu": npu, "cuda": _cuda_trace(root / "cuda.pt.trace.json"), "cache": root / "cache"}


def test_each_task_gets_its_launcher_and_op(synthetic: dict[str, Path]) -> None:
    con = connect([resolve_store(synthetic["npu"], synthetic["cache"])])
    try:
        owners = create_owners(con)
        rows = con.sql(f"""
            SELECT d.name, l.name, o.name, w.via FROM device_tasks d
            JOIN {owners} w ON w.trace_id = d.trace_id AND w.task_id = d.slice_id
            LEFT JOIN slices l ON l.trace_id = w.trace_id AND l.slice_id = w.launcher_id
            LEFT JOIN slices o ON o.trace_id = w.trace_id AND o.slice_id = w.op_id
            ORDER BY d.ts_ns""").fetchall()
    finally:
        con.close()
    assert rows == [
        ("aclnnInplaceCopy_TensorMoveAiCore_TensorMove", "aclnnInplaceCopy", "aten::copy_", "launch"),
        ("hcom_allReduce__1_0_1", "HcclAllreduce", "c10d::allreduce_", "launch"),
        ("SDMA", "HcclAllreduce", "c10d::allreduce_", "sibling"),
        ("SDMA", "HcclAllreduce", "c10d::allreduce_", "sibling"),
        ("MEMCPY_ASYNC", "AscendCL@aclrtMemcpyAsync", None, "launch_outside_op"),
        ("MatMul", None, None, None),
    ]


def test_flame_and_diff_attribute_the_same_device_time(synthetic: dict[str, Path]) -> None:
    result = flame.run_flame([synthetic["npu"]], "device", cache_dir=synthetic["cache"])
    device = flame.DEVICE_PREFIX
    assert result.stacks == {
        ("ProfilerStep#*", "aten::copy_", "aclnnInplaceCopy", device + "aclnnInplaceCopy_TensorMoveAiCore_TensorMove"):
            50_000,
        ("ProfilerStep#*", "c10d::allreduce_", "HcclAllreduce", device + "hcom_allReduce__1_0_1"): 100_000,
        ("ProfilerStep#*", "c10d::allreduce_", "HcclAllreduce", device + "SDMA"): 50_000,
        ("AscendCL@aclrtMemcpyAsync", device + "MEMCPY_ASYNC"): 40_000,
        (flame.NO_LAUNCHER, device + "MatMul"): 10_000,
    }  # fmt: skip
    assert result.info == {"attributed_ns": 240_000, "unattributed_ns": 10_000}

    report = run_diff(synthetic["cuda"], synthetic["npu"], by="op", with_summary=False, resamples=10,
                      cache_dir=synthetic["cache"])
    assert report.cross_vendor is not None
    ops = {o["op"]: (o["base_device_ns"], o["test_device_ns"]) for o in report.cross_vendor["ops"]}
    # the copy launched outside any op has a host stack but no framework op
    assert ops == {"copy_": (30_000, 50_000), "allreduce_": (120_000, 150_000), "(unattributed)": (0, 50_000)}
    rows = {r.key: (r.base_total_ns, r.test_total_ns) for r in report.rows}
    assert rows == {"copy_": (30_000, 50_000), "allreduce_": (120_000, 150_000), "(unattributed)": (0, 50_000)}


@pytest.mark.parametrize("rel", TORCH_NPU_DUMPS)
def test_corpus_device_time_goes_to_framework_ops(rel: str, synthetic: dict[str, Path]) -> None:
    dump = ASCEND / rel
    store = resolve_store(dump, synthetic["cache"])
    host_slices = query(store, "SELECT count(*) FROM slices WHERE device_type = 'cpu'")[0][0]
    result = flame.run_flame([dump], "device", cache_dir=synthetic["cache"])
    if rel in NO_HOST_TIMELINE:
        assert host_slices == 0
        assert result.info["attributed_ns"] == 0
        return
    assert result.total_ns > 0
    assert result.info["unattributed_ns"] < MAX_UNATTRIBUTED_SHARE * result.total_ns
    report = run_diff(synthetic["cuda"], dump, by="op", with_summary=False, resamples=10, cache_dir=synthetic["cache"])
    assert report.cross_vendor is not None
    test_ns = {o["op"]: o["test_device_ns"] for o in report.cross_vendor["ops"]}
    assert sum(test_ns.values()) == result.total_ns
    assert test_ns.get("(unattributed)", 0) < MAX_UNATTRIBUTED_SHARE * result.total_ns, test_ns
