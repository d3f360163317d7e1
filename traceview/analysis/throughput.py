"""Serving throughput against context length, from the core analyses.

Inputs are the results of the core pack's `phases`, `kv_cache` and `bandwidth` queries (run through
traceview.analysis.report.run_packs) plus a per-step kernel-family mix (the core pack's family rules,
queries/core/_family_rules.sql, applied per step). One point per prefill step and per decode step; mixed steps
(prefill batched with decodes) are left out of the prefill and decode series but kept in the KV-cache, mix and
bandwidth series; graph capture runs are left out of all.

Each prefill and decode point has two times: `wall_ns`, the step's wall time (its annotation or ProfilerStep span,
which in a serving engine may include waiting for work), and `active_ns`, its device time from the first device task's
start to the last one's end; `tokens_per_s_wall` and `tokens_per_s_active` divide the step's tokens by each. The
charts use active time unless told otherwise (TIME_BASES); cost and energy are over the wall time (the device is
held for all of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl

from traceview.analysis.families import family_ctes
from traceview.analysis.report import AnalysisReport, run_packs
from traceview.engine import connect, resolve_store

MIX_FAMILIES = ("attention", "gemm", "comm", "other")
TIME_BASES = ("active", "wall")
DEFAULT_TIME_BASIS = "active"


def step_mix(con) -> pl.DataFrame:
    """Per trace and step: device task time in attention, GEMM, communication and everything else.

    Each task's family comes from the core pack's family rules (traceview.analysis.families); the families other than
    attention, gemm and comm are grouped as 'other'."""
    grouped = ", ".join(f"'{family}'" for family in MIX_FAMILIES if family != "other")
    sums = ",\n           ".join(
        f"CAST(coalesce(sum(dur_ns) FILTER (WHERE family = '{family}'), 0) AS BIGINT) AS {family}_ns"
        for family in MIX_FAMILIES
    )
    sql = f"""WITH {family_ctes()},
    classified AS (
      SELECT d.trace_id, d.step, d.dur_ns,
             CASE WHEN f.family IN ({grouped}) THEN f.family ELSE 'other' END AS family
      FROM device_tasks d JOIN task_families f ON f.kind = d.kind AND f.name IS NOT DISTINCT FROM d.name
      WHERE d.step IS NOT NULL AND d.dur_ns IS NOT NULL
    )
    SELECT trace_id, step,
           {sums},
           CAST(sum(dur_ns) AS BIGINT) AS task_ns
    FROM classified GROUP BY ALL ORDER BY trace_id, step
    """
    # polars types from_arrow as DataFrame | Series; a Table always gives a DataFrame
    return cast(pl.DataFrame, pl.from_arrow(con.sql(sql).to_arrow_table()))


@dataclass
class Throughput:
    """The points behind the throughput panels, keyed as in the --json output."""

    prefill: list[dict] = field(default_factory=list)
    decode: list[dict] = field(default_factory=list)
    kv_cache: list[dict] = field(default_factory=list)
    mix: list[dict] = field(default_factory=list)
    bandwidth: list[dict] = field(default_factory=list)
    device_cost_per_hour: float | None = None
    time_basis: str = DEFAULT_TIME_BASIS

    def to_dict(self) -> dict[str, Any]:
        """The points per panel, the time the charts use (time_basis) and the device cost, when given."""
        out: dict[str, Any] = {
            "time_basis": self.time_basis,
            "prefill": self.prefill,
            "decode": self.decode,
            "kv_cache": self.kv_cache,
            "mix": self.mix,
            "bandwidth": self.bandwidth,
        }
        if self.device_cost_per_hour is not None:
            out["device_cost_per_hour"] = self.device_cost_per_hour
        return out

    def to_json(self) -> dict[str, Any]:
        """The same JSON-able dict as `to_dict` (written by traceview.jsonify.dumps)."""
        return self.to_dict()

    @property
    def empty(self) -> bool:
        return not (self.prefill or self.decode or self.kv_cache or self.mix or self.bandwidth)


def _labels(report: AnalysisReport) -> dict[str, str]:
    names: dict[str, str] = {}
    for trace in report.traces:
        name = Path(trace["source_path"] or trace["trace_id"]).name
        for suffix in (".gz", ".json", ".pt.trace"):
            name = name.removesuffix(suffix)
        names[trace["trace_id"]] = name
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {tid: (n if counts[n] == 1 else f"{n} ({tid})") for tid, n in names.items()}


def _frame(report: AnalysisReport, name: str) -> pl.DataFrame | None:
    result = report.result(name)
    if result is None or result.frame is None or result.frame.is_empty():
        return None
    return result.frame


def _cost(dur_ns: int, tokens: int, price: float | None) -> float | None:
    if price is None or not tokens:
        return None
    return price / 3600.0 * (dur_ns / 1e9) / tokens * 1e6


def _times(tokens: int, wall_ns: int, active_ns: int | None) -> dict[str, Any]:
    """The step's wall and active time and tokens/s over each (active: None without device tasks)."""
    return {
        "wall_ns": wall_ns,
        "active_ns": active_ns,
        "tokens_per_s_wall": tokens / (wall_ns / 1e9),
        "tokens_per_s_active": tokens / (active_ns / 1e9) if active_ns else None,
    }


def build_throughput(
    report: AnalysisReport, mix: pl.DataFrame | None = None, device_cost: float | None = None
) -> Throughput:
    """The panel points from an analysis report (and the per-step mix, when computed)."""
    out = Throughput(device_cost_per_hour=device_cost)
    labels = _labels(report)
    phases = _frame(report, "phases")
    if phases is None:
        return out
    context = {(r["trace_id"], r["step"]): r["context_len"] for r in phases.iter_rows(named=True)}
    phase_of = {(r["trace_id"], r["step"]): r["phase"] for r in phases.iter_rows(named=True)}
    for row in phases.sort("trace_id", "ts_ns").iter_rows(named=True):
        trace, dur, tokens = labels.get(row["trace_id"], row["trace_id"]), row["dur_ns"], row["tokens"]
        if row["phase"] == "prefill" and tokens and dur:
            point = {
                "trace": trace,
                "step": row["step"],
                "prompt_len": tokens,
                "context_len": row["context_len"],
                **_times(tokens, dur, row["active_ns"]),
            }
            if device_cost is not None:
                point["cost_per_million_tokens"] = _cost(dur, tokens, device_cost)
            out.prefill.append(point)
        elif row["phase"] == "decode" and tokens and dur and row["context_len"] is not None:
            point = {
                "trace": trace,
                "step": row["step"],
                "context_len": row["context_len"],
                "tokens": tokens,
                **_times(tokens, dur, row["active_ns"]),
            }
            if device_cost is not None:
                point["cost_per_million_tokens"] = _cost(dur, tokens, device_cost)
            out.decode.append(point)
    kv = _frame(report, "kv_cache")
    if kv is not None:
        for row in kv.sort("trace_id", "ts_ns").iter_rows(named=True):
            if row["kv_footprint_bytes"] is None or row["context_len"] is None or row["phase"] == "capture":
                continue
            out.kv_cache.append(
                {
                    "trace": labels.get(row["trace_id"], row["trace_id"]),
                    "step": row["step"],
                    "phase": row["phase"],
                    "context_len": row["context_len"],
                    "kv_bytes": row["kv_footprint_bytes"],
                    "kv_bytes_per_token": row["kv_bytes_per_token"],
                }
            )
    if mix is not None:
        for row in mix.iter_rows(named=True):
            key = (row["trace_id"], row["step"])
            if key not in phase_of or phase_of[key] == "capture" or not row["task_ns"]:
                continue
            point = {
                "trace": labels.get(row["trace_id"], row["trace_id"]),
                "step": row["step"],
                "phase": phase_of[key],
                "context_len": context.get(key),
                "task_ns": row["task_ns"],
            }
            for family in MIX_FAMILIES:
                point[f"{family}_ns"] = row[f"{family}_ns"]
                point[f"{family}_pct"] = 100.0 * row[f"{family}_ns"] / row["task_ns"]
            out.mix.append(point)
        out.mix.sort(key=lambda p: (p["trace"], p["context_len"] or 0, p["step"]))
    bw = _frame(report, "bandwidth")
    if bw is not None:
        for row in bw.filter(pl.col("source") == "step").sort("trace_id", "ts_ns").iter_rows(named=True):
            out.bandwidth.append(
                {
                    "trace": labels.get(row["trace_id"], row["trace_id"]),
                    "step": row["step"],
                    "context_len": context.get((row["trace_id"], row["step"])),
                    "busy_ns": row["dur_ns"],
                    "bytes": row["bytes"],
                    "achieved_bytes_per_s": row["achieved_bytes_per_s"],
                    "peak_bytes_per_s": row["peak_bytes_per_s"],
                    "utilization_pct": row["utilization_pct"],
                }
            )
    return out


def power_samples(con) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per trace: sample times and watts of its power counters (a counter or series named like power;
    values in W, or mW when the name says so)."""
    rows = con.sql(
        """
        SELECT trace_id, ts_ns,
               value / CASE WHEN lower(name || ' ' || series) LIKE '%mw%' THEN 1000.0 ELSE 1.0 END AS watts
        FROM counters
        WHERE (lower(name) LIKE '%power%' OR lower(series) LIKE '%power%') AND value IS NOT NULL
        ORDER BY trace_id, ts_ns
        """
    ).fetchall()
    samples: dict[str, list[tuple[int, float]]] = {}
    for trace_id, ts, watts in rows:
        samples.setdefault(trace_id, []).append((ts, watts))
    return {
        tid: (np.array([t for t, _ in pts], dtype=np.int64), np.array([w for _, w in pts]))
        for tid, pts in samples.items()
    }


def _joules(power: tuple[np.ndarray, np.ndarray], start_ns: int, dur_ns: int) -> float | None:
    """Energy of [start, start + dur]: the mean power sampled inside it, else the last sample before it."""
    times, watts = power
    lo, hi = np.searchsorted(times, start_ns, "left"), np.searchsorted(times, start_ns + dur_ns, "right")
    if hi > lo:
        return float(watts[lo:hi].mean()) * dur_ns / 1e9
    return float(watts[lo - 1]) * dur_ns / 1e9 if lo > 0 else None


def add_energy(out: Throughput, report: AnalysisReport, power: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Tokens per joule on the prefill and decode points of traces that carry power counters."""
    if not power:
        return
    labels = {label: tid for tid, label in _labels(report).items()}
    phases = _frame(report, "phases")
    rows = phases.iter_rows(named=True) if phases is not None else []
    starts = {(r["trace_id"], r["step"]): r["ts_ns"] for r in rows}
    for point in out.prefill + out.decode:
        trace_id = labels.get(point["trace"])
        tokens = point.get("prompt_len") or point.get("tokens")
        start = starts.get((trace_id, point["step"]))
        if trace_id not in power or start is None or not tokens:
            continue
        joules = _joules(power[trace_id], start, point["wall_ns"])
        if joules:
            point["joules"] = joules
            point["tokens_per_joule"] = tokens / joules


def throughput_from_report(
    report: AnalysisReport, stores: list[Path], device_cost: float | None = None, time_basis: str = DEFAULT_TIME_BASIS
) -> Throughput:
    """Throughput points for an existing report over STORES (the per-step mix is computed here); the charts plot
    `time_basis` ('active' or 'wall')."""
    con = connect(stores)
    try:
        mix = step_mix(con)
        power = power_samples(con)
    finally:
        con.close()
    out = build_throughput(report, mix, device_cost)
    out.time_basis = time_basis
    add_energy(out, report, power)
    return out


def run_throughput(
    targets: list[Path],
    device_cost: float | None = None,
    cache_dir: Path | None = None,
    peak_bw_gbps: float | None = None,
    time_basis: str = DEFAULT_TIME_BASIS,
) -> Throughput:
    """Analyse TARGETS and return the throughput points (the charts plot `time_basis`: 'active' or 'wall')."""
    if time_basis not in TIME_BASES:
        raise ValueError(f"time basis {time_basis!r}: expected one of {', '.join(TIME_BASES)}")
    stores = [resolve_store(Path(t), Path(cache_dir) if cache_dir else None) for t in targets]
    report = run_packs(stores, peak_bw_gbps=peak_bw_gbps)
    return throughput_from_report(report, stores, device_cost, time_basis)
