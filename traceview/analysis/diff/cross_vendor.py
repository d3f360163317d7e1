"""A Kineto (CUDA/ROCm) trace against an Ascend one: device time per framework op (traceview.analysis.attribution)."""

from __future__ import annotations

from typing import Any, TypedDict

from traceview.analysis.diff.sides import Side


class OpComparison(TypedDict):
    """One framework op on both sides (a row of `cross_vendor_ops()["ops"]`)."""

    op: str
    base_device_ns: int
    test_device_ns: int
    ratio: float | None
    base_tasks_per_op: float | None
    test_tasks_per_op: float | None
    base_aicpu_tasks: int
    test_aicpu_tasks: int


def is_cross_vendor(base: Side, test: Side) -> bool:
    """One side on an Ascend NPU and the other on another device."""
    b, t = base.vendors() - {"cpu"}, test.vendors() - {"cpu"}
    return bool(b and t) and (("npu" in b) != ("npu" in t))


def cross_vendor_ops(base: Side, test: Side, min_effect: float) -> dict[str, Any]:
    """Per framework op (vendor-neutral key): device time, tasks per op, AI_CPU fallbacks on each side,
    and the ops slower on either side by at least `min_effect` %, falling back to AI_CPU, or split more."""
    b, t = _per_op(base), _per_op(test)
    ops: list[OpComparison] = []
    for key in sorted(set(b) | set(t)):
        x, y = b.get(key, {}), t.get(key, {})
        ops.append({
            "op": key, "base_device_ns": x.get("device_ns", 0), "test_device_ns": y.get("device_ns", 0),
            "ratio": (y["device_ns"] / x["device_ns"]) if x.get("device_ns") and y.get("device_ns") else None,
            "base_tasks_per_op": x["tasks"] / x["ops"] if x.get("ops") else None,
            "test_tasks_per_op": y["tasks"] / y["ops"] if y.get("ops") else None,
            "base_aicpu_tasks": x.get("aicpu_tasks", 0), "test_aicpu_tasks": y.get("aicpu_tasks", 0),
        })  # fmt: skip
    slow = 1 + min_effect / 100
    ratios = {o["op"]: o["ratio"] for o in ops if o["ratio"] is not None}
    return {
        "base_vendors": sorted(base.vendors()),
        "test_vendors": sorted(test.vendors()),
        "ops": ops,
        "slower_on_test": [op for op in sorted(ratios, key=lambda op: -ratios[op]) if ratios[op] >= slow],
        "slower_on_base": [op for op in sorted(ratios, key=lambda op: ratios[op]) if ratios[op] <= 1 / slow],
        "aicpu_fallback": [o["op"] for o in ops if o["base_aicpu_tasks"] or o["test_aicpu_tasks"]],
        "split_more": [o["op"] for o in ops if _split_more(o["base_tasks_per_op"], o["test_tasks_per_op"])],
    }


def _split_more(base_tasks_per_op: float | None, test_tasks_per_op: float | None) -> bool:
    """One side runs an op as at least twice as many device tasks as the other."""
    if not base_tasks_per_op or not test_tasks_per_op:
        return False
    return max(base_tasks_per_op, test_tasks_per_op) >= 2 * min(base_tasks_per_op, test_tasks_per_op)


def _per_op(side: Side) -> dict[str, dict[str, int]]:
    side.register("_ops_canon", side.op_canon_frame())
    rows = side.con.sql(
        f"WITH a AS ({side.attributed_sql()}) "
        "SELECT coalesce(c.key, a.op_name) AS key, count(*) AS tasks, count(DISTINCT a.op_id) AS ops, "
        "CAST(sum(a.dur_ns) AS BIGINT) AS device_ns, "
        "count(*) FILTER (WHERE a.core = 'AI_CPU') AS aicpu_tasks, "
        "CAST(coalesce(sum(a.dur_ns) FILTER (WHERE a.core = 'AI_CPU'), 0) AS BIGINT) AS aicpu_ns "
        "FROM a LEFT JOIN _ops_canon c ON c.name = a.op_name GROUP BY ALL"
    ).fetchall()
    return {r[0]: {"tasks": r[1], "ops": r[2], "device_ns": r[3], "aicpu_tasks": r[4], "aicpu_ns": r[5]} for r in rows}
