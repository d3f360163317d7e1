"""The query packs over one or more stores: the results per query and the findings, as an `AnalysisReport`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traceview._version import __version__
from traceview.analysis.quality import QualityNote, data_quality
from traceview.analysis.rank_work import RankRunner, SplitRun
from traceview.packs import Pack, find_pack, load_pack
from traceview.sandbox import (
    DEFAULT_TIME_LIMIT_S,
    Finding,
    QueryResult,
    SharedResult,
    drop_shared,
    run_pack,
    sandboxed_connection,
)
from traceview.store import read_manifest

if TYPE_CHECKING:
    from traceview.analysis.cluster import ClusterResult
    from traceview.analysis.flame import FlameResult
    from traceview.analysis.throughput import Throughput

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
BUILTIN_PACK = "core"


@dataclass
class AnalysisReport:
    """Everything `analyze` found: what was analysed, the results per query, the findings.

    `flame` and `throughput` are the report's chart sections, computed only when asked for; a section
    that could not be computed is None and `unavailable` says why (section name -> reason). `quality` lists
    what the data lacks (ingest warnings, partial dumps, tasks without launch): every renderer shows it.
    Each trace row carries `start_ns`, its first time stamp, from which the reports show times.
    """

    traces: list[dict]
    results: list[QueryResult]
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    traceview_version: str = __version__
    shared: list[SharedResult] = field(default_factory=list)  # relations each pack computed once
    flame: FlameResult | None = None
    throughput: Throughput | None = None
    cluster: ClusterResult | None = None  # the cluster section: traces of two or more ranks, with the sections
    unavailable: dict[str, str] = field(default_factory=dict)
    quality: list[QualityNote] = field(default_factory=list)

    def result(self, name: str) -> QueryResult | None:
        """The result of the query called `name`, if it ran."""
        return next((r for r in self.results if r.query.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The --json report: `{"traceview_version", "traces", "data_quality", "findings", "errors", "results":
        {query: [rows]}, "units": {query: {column: unit}}, "empty": {query: why}}`.

        Values stay exact (integers in ns, bytes); `units` says what each column is in (`ts`: a time stamp in ns,
        `% of X`: a percentage of X); `empty` gives the reason for each query with no rows.
        """
        return {
            "traceview_version": self.traceview_version,
            "traces": self.traces,
            "data_quality": [note.to_json() for note in self.quality],
            "findings": [
                {"query": f.query, "severity": f.severity, "message": f.message, "row": f.row} for f in self.findings
            ],
            "errors": self.errors,
            "results": {r.query.name: (r.frame.to_dicts() if r.frame is not None else None) for r in self.results},
            "units": {
                r.query.name: {k: str(v) for k, v in r.query.presentation.units_of(r.frame.columns).items()}
                for r in self.results
                if r.frame is not None
            },
            "empty": {
                r.query.name: r.query.presentation.empty or "no rows"
                for r in self.results
                if r.frame is not None and r.frame.is_empty()
            },
        }


def trace_rows(con, stores: list[Path]) -> list[dict]:
    hashes = {}
    for store in stores:
        for item in read_manifest(store).get("inputs", []):
            hashes[item["trace_id"]] = item
    # start_ns: the trace's first time stamp (slices or memory events), from which the reports show times
    rows = (
        con.sql(
            "SELECT t.trace_id, t.source_path, t.format, t.rank, t.host, t.device_names, t.tool_versions,"
            " t.event_count, t.slice_count, t.warnings, d.spec AS device_spec, d.peak_bw_bytes_per_s, s.start_ns"
            " FROM traces t LEFT JOIN trace_devices d USING (trace_id)"
            " LEFT JOIN (SELECT trace_id, min(ts_ns) AS start_ns FROM (SELECT trace_id, ts_ns FROM slices"
            " UNION ALL SELECT trace_id, ts_ns FROM memory) GROUP BY trace_id) s USING (trace_id)"
            " ORDER BY t.rank, t.source_path"
        )
        .to_arrow_table()
        .to_pylist()
    )
    for row in rows:
        entry = hashes.get(row["trace_id"], {})
        row["content_hash"] = entry.get("content_hash")
        row["tool_versions"] = json.loads(row["tool_versions"] or "{}")
    return rows


def packs_for(extra: list[Path]) -> list[Pack]:
    """The built-in pack followed by the packs given with --pack."""
    return [find_pack(BUILTIN_PACK)] + [load_pack(path) for path in extra]


def run_packs(
    stores: list[Path],
    extra_packs: list[Path] | None = None,
    peak_bw_gbps: float | None = None,
    limit_s: float = DEFAULT_TIME_LIMIT_S,
    rank_runner: RankRunner | None = None,
    peak_link_gbps: float | None = None,
) -> AnalysisReport:
    """Run the built-in pack and EXTRA_PACKS over STORES (each query bounded by `limit_s`); the peaks given
    override the device table's (memory bandwidth, interconnect).

    With `rank_runner` (`traceview.ray_engine.submit_rank_work`), the queries of scope `rank` and the per-rank
    relations run through it, over batches of ranks, and the others here meanwhile (`rank_work.SplitRun`).
    """
    packs = packs_for(extra_packs or [])
    overrides: dict[str, object] = {}
    if peak_bw_gbps is not None:
        overrides["peak_bw_gbps"] = float(peak_bw_gbps)
    if peak_link_gbps is not None:
        overrides["peak_link_gbps"] = float(peak_link_gbps)
    con = sandboxed_connection(stores)
    try:
        # with a rank runner, the rank tasks of every pack start first and run while the driver works
        splits = [SplitRun(con, p, stores, rank_runner, overrides, limit_s) for p in packs] if rank_runner else []
        traces = trace_rows(con, stores)
        quality = data_quality(con, stores, traces)
        results: list[QueryResult] = []
        shared: list[SharedResult] = []
        for index, pack in enumerate(packs):
            # The pack's shared relations are computed once; a failed one is computed by each query again.
            run = splits[index].finish() if splits else run_pack(con, pack, pack.queries, overrides, limit_s)
            drop_shared(con, run.shared)
            results += run.results
            shared += run.shared
    finally:
        con.close()
    findings = sorted(
        (f for r in results for f in r.findings), key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.query)
    )
    errors = [problem for pack in packs for problem in pack.problems] + [r.error for r in results if r.error]
    return AnalysisReport(traces, results, findings, errors, shared=shared, quality=quality)
