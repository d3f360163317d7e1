"""The cluster view: collectives aligned across ranks, stragglers, slow ranks, link and bus bandwidth, overlap.

The five analyses are queries of the core pack (collective_skew, slow_rank, comm_bandwidth, slow_link,
comm_overlap); this module runs them (or takes their results from an `analyze` report), adds the per-call rows
and the rank x step times the reports draw, and builds a `ClusterResult` whose `.to_json()` is the documented
shape of `traceview cluster --json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import polars as pl

from traceview.analysis.quality import QualityNote, data_quality
from traceview.analysis.rank_work import RankRunner, SplitRun
from traceview.analysis.report import BUILTIN_PACK, SEVERITY_ORDER, AnalysisReport, trace_rows
from traceview.engine import connect, resolve_store
from traceview.errors import UserError
from traceview.packs import Pack, find_pack
from traceview.sandbox import DEFAULT_TIME_LIMIT_S, QueryResult, drop_shared, run_pack, sandboxed_connection

CLUSTER_QUERIES = ("collective_skew", "slow_rank", "comm_bandwidth", "slow_link", "comm_overlap")
MIN_RANKS = 2
"""The cluster view needs traces of at least this many ranks."""

LINK_COLUMNS = ("group", "op", "src_rank", "dst_rank", "transport", "bytes", "transit_ns", "bandwidth_gbps")
STRAGGLER_COLUMNS = ("group", "op", "seq", "step", "name", "last_rank", "skew_ns", "lateness_ns", "wait_ns")

# One row per collective call of every rank; wait_ns is the recorded wait (Ascend) or, where none is recorded,
# the time from the call's arrival to the last rank's (arrival_wait_ns, always given).
CALLS_SQL = """
SELECT c.rank, c."group", c.op, c.name, c.seq, coalesce(c.step, s.step) AS step, c.ts_ns, c.dur_ns, c.bytes,
       coalesce(c.wait_ns, max(c.ts_ns) OVER k - c.ts_ns) AS wait_ns, c.transit_ns,
       max(c.ts_ns) OVER k - c.ts_ns AS arrival_wait_ns, c.ts_ns - min(c.ts_ns) OVER k AS arrival_offset_ns,
       c.trace_id
FROM collectives c
LEFT JOIN (SELECT s.trace_id, s.slice_id, s.step FROM slices s SEMI JOIN collectives n
           ON n.step IS NULL AND n.trace_id = s.trace_id AND n.slice_id = s.slice_id) s
  ON c.step IS NULL AND s.trace_id = c.trace_id AND s.slice_id = c.slice_id
WHERE c.seq IS NOT NULL AND c.ts_ns IS NOT NULL
WINDOW k AS (PARTITION BY coalesce(c."group", ''), CASE WHEN c.op IN ('send', 'recv') THEN 'send_recv' ELSE c.op END,
             c.seq)
ORDER BY c.rank, c.ts_ns, c.seq
"""

# The same rows from the pack's materialized cluster_calls (the table's name filled in): no second window pass.
CALLS_FROM_SHARED_SQL = """
SELECT rank, nullif("group", '') AS "group", op, name, seq, step, ts_ns, dur_ns, bytes,
       coalesce(recorded_wait_ns, arrival_wait_ns) AS wait_ns, transit_ns, arrival_wait_ns,
       ts_ns - first_arrival_ts_ns AS arrival_offset_ns, trace_id
FROM {table}
ORDER BY rank, ts_ns, seq
"""

# Per trace and profiler step: the rank and the step's time (the ProfilerStep span).
STEPS_SQL = """
SELECT DISTINCT ON (trace_id, step) trace_id, rank, step, dur_ns AS step_ns
FROM slices WHERE kind = 'step' AND device_type = 'cpu' AND step IS NOT NULL
ORDER BY trace_id, step, ts_ns
"""


@dataclass
class ClusterResult:
    """The cluster view of two or more ranks.

    `results` holds the rows of the five analyses by query name; `calls` one row per collective call and rank
    (a DataFrame: there may be millions); `steps` per rank and step the step time and the wait in collectives;
    `findings` those of the five analyses.
    """

    ranks: list[int]
    results: dict[str, list[dict]]
    calls: pl.DataFrame
    steps: list[dict]
    findings: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    quality: list[QualityNote] = field(default_factory=list)

    @property
    def stragglers(self) -> list[dict]:
        """The collectives whose last rank came late (collective_skew's straggler rows), latest first."""
        rows = [r for r in self.results.get("collective_skew", []) if r.get("straggler")]
        return sorted(rows, key=lambda r: -(r.get("lateness_ns") or 0))

    @property
    def slow_ranks(self) -> list[dict]:
        """The ranks slow_rank found slow."""
        return [r for r in self.results.get("slow_rank", []) if r.get("slow")]

    @property
    def links(self) -> list[dict]:
        """Per link the totals over all steps (slow_link's rows)."""
        return self.results.get("slow_link", [])

    def to_json(self) -> dict[str, Any]:
        """`{"ranks", "collectives", "stragglers", "slow_ranks", "links", "findings"}` as documented for
        `traceview cluster --json`, plus every rank's row (`rank_summary`), the rank x step times (`steps`),
        the bus bandwidth (`bandwidth`), the overlap (`overlap`) and `errors`."""
        return {
            "ranks": self.ranks,
            "data_quality": [note.to_json() for note in self.quality],
            "collectives": self.calls.drop("trace_id").to_dicts(),
            "stragglers": [{k: r.get(k) for k in STRAGGLER_COLUMNS} for r in self.stragglers],
            "slow_ranks": self.slow_ranks,
            "links": [{**{k: r.get(k) for k in LINK_COLUMNS}, **r} for r in self.links],
            "findings": self.findings,
            "rank_summary": self.results.get("slow_rank", []),
            "steps": self.steps,
            "bandwidth": self.results.get("comm_bandwidth", []),
            "overlap": self.results.get("comm_overlap", []),
            "errors": self.errors,
        }


def _findings(results: list[QueryResult]) -> list[dict]:
    found = [f for r in results for f in r.findings]
    found.sort(key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.query))
    return [{"query": f.query, "severity": f.severity, "message": f.message, "row": f.row} for f in found]


def _frame(con: Any, sql: str) -> pl.DataFrame:
    return cast(pl.DataFrame, pl.from_arrow(con.sql(sql).to_arrow_table()))


def _steps(steps: pl.DataFrame, calls: pl.DataFrame) -> list[dict]:
    """Per rank and step: the step's time and the time its collectives waited for the last rank to arrive."""
    waits = calls.group_by("trace_id", "step").agg(pl.col("arrival_wait_ns").sum().alias("wait_ns"))
    joined = steps.join(waits, on=["trace_id", "step"], how="left").with_columns(pl.col("wait_ns").fill_null(0))
    return joined.sort("rank", "step", "trace_id").select("rank", "step", "step_ns", "wait_ns").to_dicts()


def build(
    stores: list[Path],
    ranks: list[int],
    results: list[QueryResult],
    calls: pl.DataFrame | None = None,
    quality: list[QualityNote] | None = None,
    steps: pl.DataFrame | None = None,
) -> ClusterResult:
    """The cluster view from the five analyses' RESULTS over STORES: adds the per-call rows (CALLS), the rank x
    step rows (STEPS) and the data-quality notes (QUALITY), each computed when not given."""
    if calls is None or steps is None or quality is None:
        con = connect(stores)
        try:
            calls = _frame(con, CALLS_SQL) if calls is None else calls
            steps = _frame(con, STEPS_SQL) if steps is None else steps
            if quality is None:
                quality = data_quality(con, stores, trace_rows(con, stores))
        finally:
            con.close()
    chosen = [r for r in results if r.query.name in CLUSTER_QUERIES]
    return ClusterResult(
        ranks=ranks,
        results={r.query.name: (r.frame.to_dicts() if r.frame is not None else []) for r in chosen},
        calls=calls,
        steps=_steps(steps, calls),
        findings=_findings(chosen),
        errors=[r.error for r in chosen if r.error],
        quality=quality,
    )


def from_report(report: AnalysisReport, stores: list[Path]) -> ClusterResult | None:
    """The cluster view of an `analyze` report (its results of the five analyses), None for fewer than two ranks."""
    ranks = sorted({t["rank"] for t in report.traces if t.get("rank") is not None})
    if len(ranks) < MIN_RANKS:
        return None
    return build(stores, ranks, report.results, quality=report.quality)


def cluster_pack() -> Pack:
    """The core pack cut down to the five analyses and the shared relations they read (the others' relations, the
    step model and device timeline, would cost more than the analyses)."""
    pack = find_pack(BUILTIN_PACK)
    queries = [q for q in pack.queries if q.name in CLUSTER_QUERIES]
    wanted = {r.name for r in pack.shared if any(r.definition in q.sql for q in queries)}
    shared = [r for r in pack.shared if r.name in wanted]
    return replace(pack, queries=queries, shared=shared)


def run_cluster(
    targets: list[Path],
    peak_link_gbps: float | None = None,
    cache_dir: Path | None = None,
    limit_s: float = DEFAULT_TIME_LIMIT_S,
    ray: bool = False,
    ray_cpus: int | None = None,
) -> ClusterResult:
    """The cluster view of TARGETS (trace files, dumps or stores of two or more ranks); `peak_link_gbps` overrides
    the device table's interconnect peak. With `ray`, the per-rank relations
    (`rank_work.RANK_RELATIONS`) are built by Ray tasks, the rest here meanwhile."""
    stores = [resolve_store(Path(target), cache_dir) for target in targets]
    pack = cluster_pack()
    overrides: dict[str, object] = {} if peak_link_gbps is None else {"peak_link_gbps": float(peak_link_gbps)}
    con = sandboxed_connection(stores)
    try:
        ranks = [row[0] for row in con.sql("SELECT DISTINCT rank FROM traces ORDER BY rank").fetchall()]
        if len(ranks) < MIN_RANKS:
            seen = ", ".join(str(r) for r in ranks) or "none"
            raise UserError(
                f"{', '.join(str(t) for t in targets)}: the cluster view needs traces of two or more ranks (ranks"
                f" seen: {seen})"
            )
        split = SplitRun(con, pack, stores, _ray_runner(ray_cpus), overrides, limit_s) if ray else None
        steps = _frame(con, STEPS_SQL)  # while the rank tasks run
        quality = data_quality(con, stores, trace_rows(con, stores))
        run = split.finish() if split else run_pack(con, pack, pack.queries, overrides, limit_s)
        built = next((r for r in run.shared if r.relation.name == "cluster_calls" and r.error is None), None)
        calls = _frame(con, CALLS_FROM_SHARED_SQL.format(table=built.relation.table)) if built else None
        drop_shared(con, run.shared)
    finally:
        con.close()
    return build(stores, ranks, run.results, calls, quality, steps)


def _ray_runner(ray_cpus: int | None) -> RankRunner:
    """Ray's rank runner (`traceview.ray_engine.submit_rank_work`) on a Ray of `ray_cpus` CPUs."""
    from functools import partial

    from traceview import ray_engine

    return partial(ray_engine.submit_rank_work, num_cpus=ray_cpus)
