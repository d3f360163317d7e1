"""`traceview diff BASE TEST`: align two traces and report what changed, with noise-aware significance.

Rows are aligned at one level (`--by`): framework ops by name, device tasks by normalised name, kernel
families (the core pack's family rules, _family_rules.sql), phases (phases.sql) or steps. Each row gets
count/total/mean/p50/share on both sides, the absolute and relative delta, and a bootstrap confidence
interval over the per-step (or per-rank) totals. A Kineto (CUDA/ROCm) trace against an Ascend trace is
compared at the framework-op level with the device time of each op attributed through correlation.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from traceview.engine import connect, resolve_store
from traceview.errors import UserError
from traceview.families import family_ctes

LEVELS = ("op", "kernel", "family", "phase", "step")
DEFAULT_MIN_EFFECT_PCT = 2.0
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95

# ---------------------------------------------------------------------------------------------------------
# Name normalisation


_TEMPLATE = re.compile(r"<[^<>]*>")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
# a separator then 6+ hex digits mixing digits and letters (a hash suffix), or any 16+ hex digit id
_HASH_SUFFIX = re.compile(
    r"(?:[_.$-])(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b|\b[0-9a-fA-F]{16,}\b"
)
_SPACES = re.compile(r"\s+")


def normalise_kernel(name: str) -> str:
    """A device task name without template arguments, addresses and hash suffixes / long hex ids."""
    text = name or ""
    for _ in range(16):  # nested templates: strip innermost first
        stripped = _TEMPLATE.sub("", text)
        if stripped == text:
            break
        text = stripped
    text = _ADDRESS.sub("0x?", text)
    text = _HASH_SUFFIX.sub("", text)
    return _SPACES.sub(" ", text).strip()


# Framework ops across vendors: the same operation under different names (CUDA/vLLM vs torch_npu).
_OP_ALIASES = {
    "mm": "matmul", "bmm": "matmul", "addmm": "matmul", "linear": "matmul", "matmul": "matmul",
    "varlen_fwd": "attention", "fwd": "attention", "fwd_kvcache": "attention", "infer_attention_score": "attention",
    "fused_infer_attention_score": "attention", "prompt_flash_attention": "attention",
    "incre_flash_attention": "attention", "scaled_dot_product_attention": "attention",
    "flash_attention": "attention", "paged_attention": "attention",
    "silu_and_mul": "swiglu", "swiglu": "swiglu",
    "rotary_embedding": "rotary_embedding", "apply_rotary_pos_emb": "rotary_embedding",
    "reshape_and_cache_flash": "reshape_and_cache", "reshape_and_cache": "reshape_and_cache",
    "fused_add_rms_norm": "add_rms_norm", "add_rms_norm": "add_rms_norm",
}


def canonical_op(name: str) -> str:
    """A vendor-neutral key for a framework op: namespace and `npu_` prefixes dropped, known aliases merged."""
    base = (name or "").rsplit("::", 1)[-1].lstrip("_")
    if base.startswith("npu_"):
        base = base[4:]
    return _OP_ALIASES.get(base, base)


# ---------------------------------------------------------------------------------------------------------
# Results


@dataclass
class DiffRow:
    key: str
    base_count: int
    test_count: int
    base_total_ns: int
    test_total_ns: int
    base_mean_ns: float | None
    test_mean_ns: float | None
    base_p50_ns: float | None
    test_p50_ns: float | None
    base_share_pct: float
    test_share_pct: float
    delta_ns: int
    delta_pct: float | None
    ci_low_pct: float | None
    ci_high_pct: float | None
    significant: bool
    status: str  # changed, new, vanished

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Gate:
    expr: str
    tripped: bool
    reason: str


@dataclass
class LevelDiff:
    level: str
    rows: list[DiffRow]
    base_total_ns: int
    test_total_ns: int
    units: str  # what the confidence intervals resample: steps, ranks or none
    paired: bool


@dataclass
class DiffReport:
    base: str
    test: str
    by: str
    levels: dict[str, LevelDiff]
    summary: dict
    min_effect_pct: float
    gates: list[Gate] = field(default_factory=list)
    cross_vendor: dict | None = None
    op_tree: dict | None = None

    @property
    def rows(self) -> list[DiffRow]:
        return self.levels[self.by].rows

    @property
    def tripped(self) -> list[Gate]:
        return [g for g in self.gates if g.tripped]

    def to_json_dict(self) -> dict:
        level = self.levels[self.by]
        return {
            "base": self.base,
            "test": self.test,
            "by": self.by,
            "min_effect_pct": self.min_effect_pct,
            "base_total_ns": level.base_total_ns,
            "test_total_ns": level.test_total_ns,
            "ci_units": level.units,
            "paired": level.paired,
            "rows": [r.to_dict() for r in level.rows],
            "summary": self.summary,
            "cross_vendor": self.cross_vendor,
            "gates": [g.__dict__ for g in self.gates],
        }


# ---------------------------------------------------------------------------------------------------------
# One side


class Side:
    """One trace (or store) of the comparison, with its DuckDB connection."""

    def __init__(self, target: Path, cache_dir: Path | None = None) -> None:
        self.target = target
        self.store = resolve_store(target, cache_dir)
        self.con = connect(self.store)
        self.con.sql("SET enable_progress_bar = false")
        self._family_map: pl.DataFrame | None = None

    def close(self) -> None:
        self.con.close()

    def sql(self, query: str) -> pl.DataFrame:
        return pl.from_arrow(self.con.sql(query).to_arrow_table())

    def vendors(self) -> set[str]:
        return {r[0] for r in self.con.sql("SELECT DISTINCT device_type FROM device_tasks").fetchall()}

    def unit_column(self) -> tuple[str, str]:
        """What the per-unit totals are taken over: steps when there are several, else ranks."""
        steps = _one(self.con, "SELECT count(DISTINCT step) FROM slices WHERE kind = 'step'")[0]
        if steps >= 2:
            return "coalesce(step, -1)", "steps"
        ranks = _one(self.con, "SELECT count(DISTINCT trace_id) FROM traces")[0]
        if ranks >= 2:
            return "rank", "ranks"
        return "0", "none"

    def _register_map(self, name: str, frame: pl.DataFrame) -> None:
        self.con.register(name, frame.to_arrow())

    def _name_map(self, kind: str) -> None:
        """Register `_keys(name, kind, key)` mapping device task names to kernel keys or families."""
        if kind == "kernel":
            names = self.sql("SELECT DISTINCT name, kind FROM device_tasks")
            keys = [normalise_kernel(n) for n in names["name"].to_list()]
            frame = names.with_columns(pl.Series("key", keys, dtype=pl.String))
        else:
            frame = self.sql(f"WITH {family_ctes()} SELECT name, kind, family AS key FROM task_families")
        self._register_map("_keys", frame.select("name", "kind", "key"))

    def _phase_map(self) -> None:
        from traceview.packs import find_pack
        from traceview.sandbox import run_query

        result = run_query(self.con, find_pack("core").query("phases"))
        if result.frame is None or result.frame.is_empty():
            frame = pl.DataFrame({"trace_id": [], "step": [], "phase": []},
                                 schema={"trace_id": pl.String, "step": pl.Int64, "phase": pl.String})
        else:
            frame = result.frame.select("trace_id", "step", "phase")
        self._register_map("_phases", frame)

    def items_sql(self, level: str, cross: bool) -> str:
        """SQL giving (key, unit, dur_ns) per item of LEVEL on this side."""
        unit, _ = self.unit_column()
        if level == "op" and cross:
            self.con.register("_ops_canon", self._op_canon_frame().to_arrow())
            return (
                f"SELECT coalesce(c.key, a.op_name) AS key, {unit.replace('step', 'a.step')} AS unit, a.dur_ns "
                f"FROM ({attributed_sql()}) a LEFT JOIN _ops_canon c ON c.name = a.op_name"
            )
        if level == "op":
            return f"SELECT name AS key, {unit} AS unit, dur_ns FROM ops"
        if level in ("kernel", "family"):
            self._name_map(level)
            return (
                f"SELECT k.key, {unit.replace('step', 'd.step')} AS unit, d.dur_ns FROM device_tasks d "
                "JOIN _keys k ON k.name IS NOT DISTINCT FROM d.name AND k.kind = d.kind"
            )
        if level == "phase":
            self._phase_map()
            return (
                f"SELECT coalesce(p.phase, '(no step)') AS key, {unit.replace('step', 'd.step')} AS unit, d.dur_ns "
                "FROM device_tasks d LEFT JOIN _phases p ON p.trace_id = d.trace_id AND p.step = d.step"
            )
        if level == "step":
            return f"SELECT 'step ' || step AS key, {unit} AS unit, dur_ns FROM slices WHERE kind = 'step'"
        raise UserError(f"--by {level}: expected one of {', '.join(LEVELS)}")

    def _op_canon_frame(self) -> pl.DataFrame:
        names = self.sql("SELECT DISTINCT name FROM ops")["name"].to_list()
        return pl.DataFrame({"name": names, "key": [canonical_op(n) for n in names]},
                            schema={"name": pl.String, "key": pl.String})

    def level_stats(self, level: str, cross: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Per key: count, total, mean, p50; and per (key, unit): total."""
        items = self.items_sql(level, cross)
        self.con.sql(f"CREATE OR REPLACE TEMP TABLE _items AS {items}")
        stats = self.sql(
            "SELECT key, count(*) AS count, CAST(sum(dur_ns) AS BIGINT) AS total_ns, avg(dur_ns) AS mean_ns, "
            "median(dur_ns) AS p50_ns FROM _items GROUP BY key"
        )
        per_unit = self.sql(
            "SELECT key, CAST(unit AS VARCHAR) AS unit, CAST(sum(dur_ns) AS BIGINT) AS total_ns "
            "FROM _items GROUP BY ALL"
        )
        return stats, per_unit


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The first row of a query."""
    return con.sql(sql).limit(1).fetchall()[0]


def attributed_sql() -> str:
    """Device tasks with the framework op they belong to: task -> launch (correlation) -> outermost cpu_op.

    The launch's parent_id chain is walked up to the outermost enclosing cpu_op; where the launch has no
    enclosing op on its track (Ascend: launches run on another thread) the op with the launch's
    external_id is the start.
    """
    return """
    WITH RECURSIVE launch AS (
      SELECT trace_id, correlation, arg_min(slice_id, parent_id IS NULL) AS slice_id,
             arg_min(parent_id, parent_id IS NULL) AS parent_id, arg_min(external_id, parent_id IS NULL) AS external_id
      FROM slices WHERE kind = 'runtime' AND correlation IS NOT NULL GROUP BY trace_id, correlation
    ),
    opx AS (SELECT trace_id, external_id, min(slice_id) AS slice_id FROM ops WHERE external_id IS NOT NULL
            GROUP BY ALL),
    start AS (
      SELECT l.trace_id, l.correlation, coalesce(l.parent_id, o.slice_id) AS cur
      FROM launch l LEFT JOIN opx o ON o.trace_id = l.trace_id AND o.external_id = l.external_id
    ),
    up(trace_id, correlation, cur, op_id, hops) AS (
      SELECT trace_id, correlation, cur, NULL::BIGINT, 0 FROM start WHERE cur IS NOT NULL
      UNION ALL
      SELECT u.trace_id, u.correlation, s.parent_id, CASE WHEN s.kind = 'cpu_op' THEN s.slice_id ELSE u.op_id END,
             u.hops + 1
      FROM up u JOIN slices s ON s.trace_id = u.trace_id AND s.slice_id = u.cur
      WHERE u.hops < 64
    ),
    owner AS (SELECT trace_id, correlation, arg_max(op_id, hops) AS op_id FROM up WHERE op_id IS NOT NULL GROUP BY ALL)
    SELECT d.trace_id, d.rank, d.step, d.dur_ns, d.core, d.name, w.op_id, coalesce(o.name, '(unattributed)') AS op_name
    FROM device_tasks d
    LEFT JOIN owner w ON w.trace_id = d.trace_id AND w.correlation = d.correlation
    LEFT JOIN slices o ON o.trace_id = w.trace_id AND o.slice_id = w.op_id
    """


# ---------------------------------------------------------------------------------------------------------
# Statistics


def bootstrap_ci(
    base: np.ndarray, test: np.ndarray, paired: bool, resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the CONFIDENCE interval of (test total / base total - 1) in %, resampling units.

    base, test: rows x units matrices of per-unit totals. Paired: one resample of unit indices for
    both sides (the units are the same steps); else each side resampled on its own.
    """
    rng = np.random.default_rng(seed)
    n_b, n_t = base.shape[1], test.shape[1]
    if n_b < 2 or n_t < 2:
        nan = np.full(base.shape[0], np.nan)
        return nan, nan
    w_b = _weights(rng, resamples, n_b)
    w_t = w_b if paired else _weights(rng, resamples, n_t)
    sums_b = base @ w_b.T  # rows x resamples
    sums_t = test @ w_t.T
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(sums_b > 0, (sums_t / sums_b - 1.0) * 100.0, np.nan)
    alpha = (1 - CONFIDENCE) / 2 * 100
    ok = ~np.all(np.isnan(rel), axis=1)
    low = np.full(base.shape[0], np.nan)
    high = np.full(base.shape[0], np.nan)
    if ok.any():
        low[ok] = np.nanpercentile(rel[ok], alpha, axis=1)
        high[ok] = np.nanpercentile(rel[ok], 100 - alpha, axis=1)
    return low, high


def _weights(rng: np.random.Generator, resamples: int, n: int) -> np.ndarray:
    """resamples x n: how often each unit is drawn in each resample."""
    idx = rng.integers(0, n, size=(resamples, n))
    weights = np.zeros((resamples, n))
    np.add.at(weights, (np.repeat(np.arange(resamples), n), idx.ravel()), 1.0)
    return weights


def _pct(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0 or (isinstance(old, float) and math.isnan(old)):
        return None
    return (new - old) / old * 100.0


def _f(value) -> float | None:
    return None if value is None else float(value)


def diff_level(
    base: Side, test: Side, level: str, cross: bool, min_effect: float, resamples: int, seed: int
) -> LevelDiff:
    b_stats, b_units = base.level_stats(level, cross)
    t_stats, t_units = test.level_stats(level, cross)
    _, unit_kind_b = base.unit_column()
    _, unit_kind_t = test.unit_column()
    keys = sorted(set(b_stats["key"].to_list()) | set(t_stats["key"].to_list()), key=lambda k: (k is None, k))
    index = {k: i for i, k in enumerate(keys)}
    b_total = int(b_stats["total_ns"].sum() or 0)
    t_total = int(t_stats["total_ns"].sum() or 0)

    def matrix(units: pl.DataFrame, order: list[str]) -> np.ndarray:
        col = {u: j for j, u in enumerate(order)}
        m = np.zeros((len(keys), len(order)))
        for key, unit, total in units.iter_rows():
            m[index[key], col[unit]] += total
        return m

    b_order = sorted(set(b_units["unit"].to_list()), key=str)
    t_order = sorted(set(t_units["unit"].to_list()), key=str)
    paired = unit_kind_b == unit_kind_t and b_order == t_order and len(b_order) >= 2
    units = unit_kind_b if unit_kind_b == unit_kind_t else "none"
    if units != "none":
        mb, mt = matrix(b_units, b_order), matrix(t_units, t_order)
        low, high = bootstrap_ci(mb, mt, paired, resamples, seed)
        # a row seen in fewer than 2 units on a side has no spread to measure: no interval
        few = (np.count_nonzero(mb, axis=1) < 2) | (np.count_nonzero(mt, axis=1) < 2)
        low[few] = np.nan
        high[few] = np.nan
    else:
        low = high = np.full(len(keys), np.nan)

    b_by = {r["key"]: r for r in b_stats.iter_rows(named=True)}
    t_by = {r["key"]: r for r in t_stats.iter_rows(named=True)}
    rows = []
    for key in keys:
        b, t = b_by.get(key), t_by.get(key)
        bt = int(b["total_ns"]) if b else 0
        tt = int(t["total_ns"]) if t else 0
        status = "new" if b is None else "vanished" if t is None else "changed"
        delta_pct = _pct(tt, bt) if b and t else None
        i = index[key]
        lo = None if math.isnan(low[i]) else float(low[i])
        hi = None if math.isnan(high[i]) else float(high[i])
        if status != "changed":
            significant = True
        else:
            significant = (
                lo is not None and hi is not None and (lo > 0 or hi < 0)
                and delta_pct is not None and abs(delta_pct) >= min_effect
            )
        rows.append(DiffRow(
            key=str(key), base_count=int(b["count"]) if b else 0, test_count=int(t["count"]) if t else 0,
            base_total_ns=bt, test_total_ns=tt,
            base_mean_ns=_f(b["mean_ns"]) if b else None, test_mean_ns=_f(t["mean_ns"]) if t else None,
            base_p50_ns=_f(b["p50_ns"]) if b else None, test_p50_ns=_f(t["p50_ns"]) if t else None,
            base_share_pct=100.0 * bt / b_total if b_total else 0.0,
            test_share_pct=100.0 * tt / t_total if t_total else 0.0,
            delta_ns=tt - bt, delta_pct=delta_pct, ci_low_pct=lo, ci_high_pct=hi,
            significant=bool(significant), status=status,
        ))
    rows.sort(key=lambda r: (-abs(r.delta_ns), r.key))
    return LevelDiff(level, rows, b_total, t_total, units, paired)


# ---------------------------------------------------------------------------------------------------------
# Whole-trace summary


def _per_step(side: Side, sql: str) -> dict[str, float]:
    return {str(k): float(v) for k, v in side.con.sql(sql).fetchall() if v is not None}


_STEP_METRICS = {
    "step_time": "SELECT step, dur_ns FROM slices WHERE kind = 'step'",
    "device_busy": "SELECT step, sum(dur_ns) FROM device_tasks WHERE step IS NOT NULL GROUP BY step",
    # launch to start, counted only where the stream was idle at launch (no queueing behind earlier work)
    "launch_latency": (
        "WITH d AS (SELECT trace_id, step, ts_ns, correlation, kind, max(ts_ns + dur_ns) OVER (PARTITION BY trace_id, "
        "device_id, stream ORDER BY ts_ns ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end "
        "FROM device_tasks) "
        "SELECT d.step, median(d.ts_ns - r.ts_ns) FROM d JOIN "
        "(SELECT trace_id, correlation, min(ts_ns) AS ts_ns FROM slices WHERE kind = 'runtime' "
        " AND correlation IS NOT NULL GROUP BY ALL) r ON r.trace_id = d.trace_id AND r.correlation = d.correlation "
        "WHERE d.step IS NOT NULL AND d.ts_ns >= r.ts_ns AND d.kind = 'kernel' "
        "AND (d.prev_end IS NULL OR d.prev_end <= r.ts_ns) GROUP BY d.step"
    ),
}


def _median_ci(b: dict[str, float], t: dict[str, float], resamples: int, seed: int) -> tuple:
    keys_b, keys_t = sorted(b), sorted(t)
    if len(keys_b) < 2 or len(keys_t) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    vb = np.array([b[k] for k in keys_b])
    vt = np.array([t[k] for k in keys_t])
    paired = keys_b == keys_t
    ib = rng.integers(0, len(vb), size=(resamples, len(vb)))
    it = ib if paired else rng.integers(0, len(vt), size=(resamples, len(vt)))
    mb = np.median(vb[ib], axis=1)
    mt = np.median(vt[it], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mb > 0, (mt / mb - 1) * 100, np.nan)
    if np.all(np.isnan(rel)):
        return None, None
    alpha = (1 - CONFIDENCE) / 2 * 100
    return float(np.nanpercentile(rel, alpha)), float(np.nanpercentile(rel, 100 - alpha))


def _metric(base: float | None, test: float | None, unit: str, min_effect: float,
            ci: tuple = (None, None)) -> dict:
    delta = _pct(test, base)
    lo, hi = ci
    if lo is not None and hi is not None:
        significant = delta is not None and abs(delta) >= min_effect and (lo > 0 or hi < 0)
    else:
        significant = None
    return {"base": base, "test": test, "unit": unit, "delta": None if base is None or test is None else test - base,
            "delta_pct": delta, "ci_low_pct": lo, "ci_high_pct": hi, "significant": significant}


def _analysis_values(side: Side) -> dict[str, float | None]:
    """Whole-trace figures from the core pack's analyses, where present."""
    from traceview.packs import find_pack
    from traceview.sandbox import run_query

    pack = find_pack("core")
    out: dict[str, float | None] = {}

    def frame(name: str) -> pl.DataFrame | None:
        try:
            result = run_query(side.con, pack.query(name))
        except Exception:  # a query missing from the pack
            return None
        return result.frame if result.frame is not None and not result.frame.is_empty() else None

    # union of device task intervals per device against the device's active span (one pass, no per-step model)
    busy, span = _one(side.con, """
        WITH t AS (SELECT trace_id, device_id, ts_ns, ts_ns + dur_ns AS end_ns,
                          max(ts_ns + dur_ns) OVER (PARTITION BY trace_id, device_id ORDER BY ts_ns, slice_id
                                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
                   FROM device_tasks),
        d AS (SELECT trace_id, device_id, max(end_ns) - min(ts_ns) AS span_ns,
                     sum(greatest(0, end_ns - greatest(ts_ns, coalesce(prev_end, ts_ns)))) AS busy_ns
              FROM t GROUP BY ALL)
        SELECT sum(busy_ns), sum(span_ns) FROM d
    """)
    if span:
        out["busy_pct"] = float(100.0 * busy / span)
        out["idle_pct"] = 100.0 - out["busy_pct"]
    mem = _one(side.con, "SELECT max(total_allocated) FROM memory WHERE device_type <> 'cpu'")[0]
    out["peak_memory_bytes"] = float(mem) if mem is not None else None
    families = _families_present(side)
    llm = "attention" in families  # the serving analyses (phases, KV cache, decode bandwidth) need attention
    kv = frame("kv_cache") if llm or "kv_cache" in families else None
    if kv is not None:
        for col in ("kv_bytes_per_token", "bytes_per_token"):
            if col in kv.columns and kv[col].drop_nulls().len():
                out["kv_bytes_per_token"] = float(kv[col].drop_nulls().median())
                break
    bw = frame("bandwidth") if llm else None
    if bw is not None and "achieved_bytes_per_s" in bw.columns:
        # a decode step's bandwidth: its modelled bytes over its device busy time (the 'step' rows), not the
        # kernels' and copies' own figures, which are rows of the same result
        sel = bw.filter(pl.col("source") == "step") if "source" in bw.columns else bw
        phases = frame("phases")
        if phases is not None:
            decode = phases.filter(pl.col("phase") == "decode").select("trace_id", "step")
            sel = sel.join(decode, on=["trace_id", "step"], how="inner")
        values = sel["achieved_bytes_per_s"].drop_nulls()
        if values.len():
            out["decode_bandwidth_bytes_per_s"] = float(values.median())
    return out


def _families_present(side: Side) -> set[str]:
    """The kernel families (the core pack's family rules) that occur on a side: each task counts in one family."""
    rows = side.con.sql(f"WITH {family_ctes()} SELECT DISTINCT family FROM task_families").fetchall()
    return {r[0] for r in rows}


def summary(base: Side, test: Side, min_effect: float, resamples: int, seed: int) -> dict:
    out: dict[str, dict] = {}
    for name, sql in _STEP_METRICS.items():
        b, t = _per_step(base, sql), _per_step(test, sql)
        if not b or not t:
            continue
        mb, mt = float(np.median(list(b.values()))), float(np.median(list(t.values())))
        out[name] = _metric(mb, mt, "ns", min_effect, _median_ci(b, t, resamples, seed))
    ab, at = _analysis_values(base), _analysis_values(test)
    units = {"idle_pct": "%", "busy_pct": "%", "peak_memory_bytes": "bytes", "kv_bytes_per_token": "bytes",
             "decode_bandwidth_bytes_per_s": "bytes/s"}
    for name, unit in units.items():
        if ab.get(name) is not None or at.get(name) is not None:
            out[name] = _metric(ab.get(name), at.get(name), unit, min_effect)
    return out


# ---------------------------------------------------------------------------------------------------------
# Cross-vendor


def cross_vendor(base: Side, test: Side, min_effect: float) -> dict:
    """Per framework op (vendor-neutral key): device time, tasks per op, AI_CPU fallbacks on each side."""

    def per_op(side: Side) -> dict[str, dict]:
        side.con.register("_ops_canon", side._op_canon_frame().to_arrow())
        rows = side.con.sql(
            f"WITH a AS ({attributed_sql()}) "
            "SELECT coalesce(c.key, a.op_name) AS key, count(*) AS tasks, count(DISTINCT a.op_id) AS ops, "
            "CAST(sum(a.dur_ns) AS BIGINT) AS device_ns, "
            "count(*) FILTER (WHERE a.core = 'AI_CPU') AS aicpu_tasks, "
            "CAST(coalesce(sum(a.dur_ns) FILTER (WHERE a.core = 'AI_CPU'), 0) AS BIGINT) AS aicpu_ns "
            "FROM a LEFT JOIN _ops_canon c ON c.name = a.op_name GROUP BY ALL"
        ).fetchall()
        return {r[0]: {"tasks": r[1], "ops": r[2], "device_ns": r[3], "aicpu_tasks": r[4], "aicpu_ns": r[5]}
                for r in rows}

    b, t = per_op(base), per_op(test)
    ops = []
    for key in sorted(set(b) | set(t)):
        x, y = b.get(key, {}), t.get(key, {})
        tpo_b = x["tasks"] / x["ops"] if x.get("ops") else None
        tpo_t = y["tasks"] / y["ops"] if y.get("ops") else None
        ops.append({
            "op": key, "base_device_ns": x.get("device_ns", 0), "test_device_ns": y.get("device_ns", 0),
            "ratio": (y["device_ns"] / x["device_ns"]) if x.get("device_ns") and y.get("device_ns") else None,
            "base_tasks_per_op": tpo_b, "test_tasks_per_op": tpo_t,
            "base_aicpu_tasks": x.get("aicpu_tasks", 0), "test_aicpu_tasks": y.get("aicpu_tasks", 0),
        })
    slow = 1 + min_effect / 100
    return {
        "base_vendors": sorted(base.vendors()), "test_vendors": sorted(test.vendors()),
        "ops": ops,
        "slower_on_test": [o["op"] for o in sorted(ops, key=lambda o: -(o["ratio"] or 0))
                           if o["ratio"] is not None and o["ratio"] >= slow],
        "slower_on_base": [o["op"] for o in sorted(ops, key=lambda o: o["ratio"] or 0)
                           if o["ratio"] is not None and o["ratio"] <= 1 / slow],
        "aicpu_fallback": [o["op"] for o in ops if o["base_aicpu_tasks"] or o["test_aicpu_tasks"]],
        "split_more": [o["op"] for o in ops if o["base_tasks_per_op"] and o["test_tasks_per_op"]
                       and max(o["base_tasks_per_op"], o["test_tasks_per_op"])
                       >= 2 * min(o["base_tasks_per_op"], o["test_tasks_per_op"])],
    }


def is_cross_vendor(base: Side, test: Side) -> bool:
    b, t = base.vendors() - {"cpu"}, test.vendors() - {"cpu"}
    return bool(b and t) and (("npu" in b) != ("npu" in t))


# ---------------------------------------------------------------------------------------------------------
# Gates

_GATE = re.compile(r"^\s*(?P<metric>[^<>=]+?)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[+-]?\d+(?:\.\d+)?)\s*(?P<pct>%?)\s*$")
_OPS = {">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}
_COUNT_GATES = {"new_kernels": ("kernel", "new"), "vanished_kernels": ("kernel", "vanished"),
                "new_ops": ("op", "new"), "vanished_ops": ("op", "vanished")}


def parse_gate(expr: str) -> tuple[str, str, float, bool]:
    match = _GATE.match(expr)
    if not match:
        raise UserError(f"--fail-on {expr!r}: expected METRIC>VALUE, e.g. step_time>+5% or new_kernels>0")
    metric = match["metric"]
    if ":" in metric:
        level = metric.split(":", 1)[0]
        if level not in LEVELS:
            raise UserError(f"--fail-on {expr!r}: unknown level {level!r}, expected one of {', '.join(LEVELS)}")
    elif metric not in _COUNT_GATES and metric not in SUMMARY_METRICS:
        known = ", ".join(sorted(set(_COUNT_GATES) | set(SUMMARY_METRICS)))
        raise UserError(f"--fail-on {expr!r}: unknown metric {metric!r}, expected LEVEL:GLOB or one of {known}")
    if metric in _COUNT_GATES and match["pct"]:
        raise UserError(f"--fail-on {expr!r}: {metric} is a count, not a percentage")
    return metric, match["op"], float(match["value"]), bool(match["pct"])


SUMMARY_METRICS = ("step_time", "device_busy", "launch_latency", "idle_pct", "busy_pct", "peak_memory_bytes",
                   "kv_bytes_per_token", "decode_bandwidth_bytes_per_s")


def gate_levels(exprs: list[str]) -> set[str]:
    levels = set()
    for expr in exprs:
        metric = parse_gate(expr)[0]
        if ":" in metric:
            levels.add(metric.split(":", 1)[0])
        elif metric in _COUNT_GATES:
            levels.add(_COUNT_GATES[metric][0])
    return levels


def _fmt_num(value: float) -> str:
    return f"{value:+g}"


def evaluate_gate(expr: str, report: DiffReport) -> Gate:
    metric, op, value, pct = parse_gate(expr)
    limit = f"{op}{_fmt_num(value)}{'%' if pct else ''}"
    if metric in _COUNT_GATES:
        level, status = _COUNT_GATES[metric]
        keys = [r.key for r in report.levels[level].rows if r.status == status]
        tripped = _OPS[op](len(keys), value)
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        reason = f"{metric} = {len(keys)}" + (f" ({shown})" if keys else "") + f", limit {limit}"
        return Gate(expr, tripped, reason)
    if ":" in metric:
        level, pattern = metric.split(":", 1)
        rows = [r for r in report.levels[level].rows if fnmatch.fnmatchcase(r.key.lower(), pattern.lower())]
        if not rows:
            return Gate(expr, False, f"{metric}: no {level} rows match")
        base = sum(r.base_total_ns for r in rows)
        test = sum(r.test_total_ns for r in rows)
        name = f"{metric} ({len(rows)} rows)"
    else:
        entry = report.summary.get(metric)
        if not entry or entry["base"] is None or entry["test"] is None:
            return Gate(expr, False, f"{metric}: not measured on both sides")
        base, test, name = entry["base"], entry["test"], metric
    if pct:
        change = _pct(test, base)
        if change is None:
            change = math.inf if test > 0 else 0.0
        tripped = _OPS[op](change, value)
        reason = f"{name} changed {change:+.1f}% ({_g(base)} -> {_g(test)}), limit {limit}"
    else:
        change = test - base
        tripped = _OPS[op](change, value)
        reason = f"{name} changed {change:+g} ({_g(base)} -> {_g(test)}), limit {limit}"
    return Gate(expr, bool(tripped), reason)


def _g(value: float) -> str:
    return f"{value:.6g}"


# ---------------------------------------------------------------------------------------------------------
# Entry point


def run_diff(
    base_target: Path,
    test_target: Path,
    by: str = "kernel",
    fail_on: list[str] | None = None,
    min_effect: float = DEFAULT_MIN_EFFECT_PCT,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    cache_dir: Path | None = None,
    with_summary: bool = True,
    with_tree: bool = False,
) -> DiffReport:
    """Diff TEST against BASE at level BY (plus the levels the gates need)."""
    if by not in LEVELS:
        raise UserError(f"--by {by}: expected one of {', '.join(LEVELS)}")
    fail_on = list(fail_on or [])
    levels = [by] + sorted(gate_levels(fail_on) - {by})
    base, test = Side(base_target, cache_dir), Side(test_target, cache_dir)
    try:
        cross = is_cross_vendor(base, test)
        diffs = {lvl: diff_level(base, test, lvl, cross, min_effect, resamples, seed) for lvl in levels}
        summ = summary(base, test, min_effect, resamples, seed) if with_summary else {}
        xv = cross_vendor(base, test, min_effect) if cross else None
        tree = None
        if with_tree:
            from traceview.reports.diff_html import op_tree

            tree = op_tree(base, test)
    finally:
        base.close()
        test.close()
    report = DiffReport(str(base_target), str(test_target), by, diffs, summ, min_effect, cross_vendor=xv,
                        op_tree=tree)
    report.gates = [evaluate_gate(expr, report) for expr in fail_on]
    return report


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def render_text(report: DiffReport, top: int = 25) -> str:
    """A plain-text table of the largest changes, the summary, cross-vendor notes and gates."""
    level = report.levels[report.by]
    lines = [f"traceview diff --by {report.by}: {report.base} -> {report.test}",
             f"total {_ms(level.base_total_ns)} ms -> {_ms(level.test_total_ns)} ms"
             f" ({_p(_pct(level.test_total_ns, level.base_total_ns))}); CI over {level.units}"
             f"{' (paired)' if level.paired else ''}, min effect {report.min_effect_pct:g}%", ""]
    header = (f"{'':1} {'key':60} {'base ms':>10} {'test ms':>10} {'delta':>9} {'95% CI':>17}"
              f" {'n base':>7} {'n test':>7}")
    lines.append(header)
    shown = level.rows[:top]
    for r in shown:
        ci = "-" if r.ci_low_pct is None else f"{r.ci_low_pct:+.1f}..{r.ci_high_pct:+.1f}%"
        delta = r.status if r.status != "changed" else _p(r.delta_pct)
        mark = "*" if r.significant else " "
        key = r.key if len(r.key) <= 60 else r.key[:57] + "..."
        lines.append(f"{mark} {key:60} {_ms(r.base_total_ns):>10} {_ms(r.test_total_ns):>10} {delta:>9} {ci:>17}"
                     f" {r.base_count:>7} {r.test_count:>7}")
    rest = level.rows[top:]
    if rest:
        b = sum(r.base_total_ns for r in rest)
        t = sum(r.test_total_ns for r in rest)
        lines.append(f"  {'(other: ' + str(len(rest)) + ' rows)':60} {_ms(b):>10} {_ms(t):>10} {_p(_pct(t, b)):>9}")
    lines.append("* significant: the interval excludes 0 and |change| >= the minimum effect; or new / vanished")
    if report.summary:
        lines += ["", "Summary"]
        for name, m in report.summary.items():
            sig = "*" if m["significant"] else " "
            lines.append(f"{sig} {name:30} {_g(m['base']) if m['base'] is not None else '-':>14} -> "
                         f"{_g(m['test']) if m['test'] is not None else '-':>14} {m['unit']:8} {_p(m['delta_pct'])}")
    if report.cross_vendor:
        xv = report.cross_vendor
        lines += ["", f"Cross-vendor ({', '.join(xv['base_vendors'])} -> {', '.join(xv['test_vendors'])}),"
                      " device time per framework op"]
        for o in sorted(xv["ops"], key=lambda o: -(o["test_device_ns"] - o["base_device_ns"])):
            ratio = "-" if o["ratio"] is None else f"x{o['ratio']:.2f}"
            tpo = (f"{o['base_tasks_per_op'] or 0:.1f}/{o['test_tasks_per_op'] or 0:.1f}")
            lines.append(f"  {o['op']:40} {_ms(o['base_device_ns']):>10} {_ms(o['test_device_ns']):>10} {ratio:>8}"
                         f"  tasks/op {tpo}  AI_CPU {o['base_aicpu_tasks']}/{o['test_aicpu_tasks']}")
        lines.append(f"  slower on test: {', '.join(xv['slower_on_test']) or '-'}")
        lines.append(f"  slower on base: {', '.join(xv['slower_on_base']) or '-'}")
        lines.append(f"  AI_CPU fallback: {', '.join(xv['aicpu_fallback']) or '-'}")
        lines.append(f"  split into many more tasks: {', '.join(xv['split_more']) or '-'}")
    if report.gates:
        lines += ["", "Gates"]
        for g in report.gates:
            lines.append(f"  {'FAIL' if g.tripped else 'ok'}: {g.expr}: {g.reason}")
    return "\n".join(lines) + "\n"


def to_json(report: DiffReport) -> str:
    """The report as JSON text (traceview.jsonify: NaN and infinities as null)."""
    from traceview import jsonify

    return jsonify.dumps(report.to_json_dict(), indent=True)


def _finite(value):
    """NaN and infinities as null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
