"""Whole-trace metrics on both sides: per-step medians with intervals, and figures from the core pack."""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from traceview.analysis.diff.report import SummaryMetric
from traceview.analysis.diff.sides import Side, one_row
from traceview.analysis.diff.stats import median_ci, pct_change
from traceview.analysis.families import family_ctes
from traceview.errors import UserError
from traceview.packs import Pack, find_pack, fragment_sql
from traceview.sandbox import run_query

# per step: one value each, compared by their medians with a bootstrap interval (SQL in `step_metric_sql`)
STEP_METRICS = ("step_time", "device_busy", "launch_latency")
# one value per trace, no interval
TRACE_METRIC_UNITS = {
    "idle_pct": "%",
    "busy_pct": "%",
    "peak_memory_bytes": "bytes",
    "kv_bytes_per_token": "bytes",
    "decode_bandwidth_bytes_per_s": "bytes/s",
}
SUMMARY_METRICS = (*STEP_METRICS, *TRACE_METRIC_UNITS)


@cache
def step_metric_sql(name: str) -> str:
    """The SQL of a per-step metric: rows (step, value). device_busy: per step, the busy time of its device window
    (busy_breakdown's step rows, summed over devices: the union of the task intervals, not their sum);
    launch_latency: per step, the median launch latency of its kernels launched onto an idle stream (the core pack's
    _launch_delays.sql, as `analyze`'s launch_latency measures it per device and kind)."""
    pack = find_pack("core")
    if name == "step_time":
        return "SELECT step, dur_ns FROM slices WHERE kind = 'step'"
    if name == "device_busy":
        breakdown = pack.query("busy_breakdown").sql
        return f"SELECT step, sum(span_ns - idle_ns) FROM ({breakdown}) WHERE scope = 'step' GROUP BY step"
    if name == "launch_latency":
        ctes = ", ".join(fragment_sql(pack, f) for f in ("_device_timeline.sql", "_launches.sql", "_launch_delays.sql"))
        return (f"WITH {ctes} SELECT step, median(delay_ns) FROM launch_delays "
                "WHERE step IS NOT NULL AND NOT queued AND kind = 'kernel' GROUP BY step")
    raise ValueError(f"no step metric {name!r}")


# union of device task intervals per device against the device's active span (one pass, no per-step model)
_BUSY_SQL = """
    WITH t AS (SELECT trace_id, device_id, ts_ns, ts_ns + dur_ns AS end_ns,
                      max(ts_ns + dur_ns) OVER (PARTITION BY trace_id, device_id ORDER BY ts_ns, slice_id
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
               FROM device_tasks),
    d AS (SELECT trace_id, device_id, max(end_ns) - min(ts_ns) AS span_ns,
                 sum(greatest(0, end_ns - greatest(ts_ns, coalesce(prev_end, ts_ns)))) AS busy_ns
          FROM t GROUP BY ALL)
    SELECT sum(busy_ns), sum(span_ns) FROM d
"""


def summary_metrics(base: Side, test: Side, min_effect: float, resamples: int, seed: int) -> dict[str, SummaryMetric]:
    """Each metric measured on at least one side (per-step ones on both), in SUMMARY_METRICS order."""
    out: dict[str, SummaryMetric] = {}
    for name in STEP_METRICS:
        sql = step_metric_sql(name)
        b, t = _per_step(base, sql), _per_step(test, sql)
        if not b or not t:
            continue
        mb, mt = float(np.median(list(b.values()))), float(np.median(list(t.values())))
        out[name] = metric(mb, mt, "ns", min_effect, median_ci(b, t, resamples, seed))
    ab, at = trace_values(base), trace_values(test)
    for name, unit in TRACE_METRIC_UNITS.items():
        if ab.get(name) is not None or at.get(name) is not None:
            out[name] = metric(ab.get(name), at.get(name), unit, min_effect)
    return out


def metric(
    base: float | None,
    test: float | None,
    unit: str,
    min_effect: float,
    ci: tuple[float | None, float | None] = (None, None),
) -> SummaryMetric:
    """One metric's entry; significant only with an interval that excludes 0 and a change >= min_effect."""
    delta = pct_change(test, base)
    lo, hi = ci
    significant = None
    if lo is not None and hi is not None:
        significant = delta is not None and abs(delta) >= min_effect and (lo > 0 or hi < 0)
    return {
        "base": base,
        "test": test,
        "unit": unit,
        "delta": None if base is None or test is None else test - base,
        "delta_pct": delta,
        "ci_low_pct": lo,
        "ci_high_pct": hi,
        "significant": significant,
    }


def _per_step(side: Side, sql: str) -> dict[str, float]:
    return {str(k): float(v) for k, v in side.con.sql(sql).fetchall() if v is not None}


def trace_values(side: Side) -> dict[str, float | None]:
    """Whole-trace figures (TRACE_METRIC_UNITS) from the device timeline and the core pack's analyses."""
    pack = find_pack("core")
    out: dict[str, float | None] = {}
    busy, span = one_row(side.con, _BUSY_SQL)
    if span:
        busy_pct = float(100.0 * busy / span)
        out["busy_pct"] = busy_pct
        out["idle_pct"] = 100.0 - busy_pct
    mem = one_row(side.con, "SELECT max(total_allocated) FROM memory WHERE device_type <> 'cpu'")[0]
    out["peak_memory_bytes"] = float(mem) if mem is not None else None
    families = families_present(side)
    llm = "attention" in families  # the serving analyses (phases, KV cache, decode bandwidth) need attention
    kv = _pack_frame(side, pack, "kv_cache") if llm or "kv_cache" in families else None
    if kv is not None:
        for col in ("kv_bytes_per_token", "bytes_per_token"):
            if col in kv.columns and kv[col].drop_nulls().len():
                out["kv_bytes_per_token"] = float(kv[col].drop_nulls().median())  # type: ignore[arg-type]
                break
    bw = _pack_frame(side, pack, "bandwidth") if llm else None
    if bw is not None and "achieved_bytes_per_s" in bw.columns:
        bandwidth = _decode_bandwidth(side, pack, bw)
        if bandwidth is not None:
            out["decode_bandwidth_bytes_per_s"] = bandwidth
    return out


def _decode_bandwidth(side: Side, pack: Pack, bw: pl.DataFrame) -> float | None:
    """The median decode step's bandwidth: its modelled bytes over its device busy time (the 'step' rows),
    not the kernels' and copies' own figures, which are rows of the same result."""
    sel = bw.filter(pl.col("source") == "step") if "source" in bw.columns else bw
    phases = _pack_frame(side, pack, "phases")
    if phases is not None:
        decode = phases.filter(pl.col("phase") == "decode").select("trace_id", "step")
        sel = sel.join(decode, on=["trace_id", "step"], how="inner")
    values = sel["achieved_bytes_per_s"].drop_nulls()
    return float(values.median()) if values.len() else None  # type: ignore[arg-type]


def _pack_frame(side: Side, pack: Pack, name: str) -> pl.DataFrame | None:
    """The rows of pack query NAME on a side; None where the pack has no such query or it gave no rows."""
    try:
        result = run_query(side.con, pack.query(name))
    except UserError:  # a query missing from the pack
        return None
    return result.frame if result.frame is not None and not result.frame.is_empty() else None


def families_present(side: Side) -> set[str]:
    """The kernel families (the core pack's family rules) that occur on a side: each task counts in one family."""
    rows = side.con.sql(f"WITH {family_ctes()} SELECT DISTINCT family FROM task_families").fetchall()
    return {r[0] for r in rows}
