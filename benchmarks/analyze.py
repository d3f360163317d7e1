#!/usr/bin/env python3
"""Analysis benchmark: the built-in query pack on a >= 10M-slice store, and traceview against HTA.

One run of this script:

1. builds (or reuses) a store of at least ``--slices`` slices (default 10,000,000) under
   ``benchmarks/output/`` (git-ignored): a real Kineto trace (``--source``, default the HTA
   corpus trace ``nccl_parser_config/nccl_data.json.gz``: host ops, runtime launches, kernels,
   NCCL kernels, memcpy/memset, ProfilerSteps) is ingested with ``traceview.store.ingest``, then
   its Parquet tables are replicated N times with DuckDB into one store of the same schemas
   (``parsers.model.TABLES``), still one trace. Copy k is shifted in time by k trace spans
   (span + 1 ms), and ``slice_id``/``parent_id``, ``correlation``, ``external_id``, ``step`` (and the
   ``ProfilerStep#N`` names), flow ids and flow endpoints are offset by k times their range, so
   they stay unique and the links (parent, launch -> kernel, flows, steps) stay consistent. Rows
   keep the order of the ingested file, copy after copy (``slices``: within each slice group, as
   ``traceview ingest`` stores them). ``metadata`` is kept once, ``traces``
   gets the new counts, ``manifest.json`` is copied with the new row counts and a note of the
   replication. The store is checked (row counts, unique ids, the span) and reused on later runs.

2. times ``traceview.analysis.analyze.run_analyze([store])`` -- the whole built-in pack as
   ``traceview analyze`` runs it, in the sandboxed connection -- in a child process: wall time,
   per query ``result.seconds``, peak RSS (``ru_maxrss``). Target: under 10 s for >= 10M slices.

3. compares, on one Kineto JSON of the same workload (the source trace repeated textually with
   shifted timestamps and ids to ``--hta-size-gb``, default 0.25 GB, built by ``benchmarks/ingest.py``'s
   generator and shared with it), each in its own child process:

   * ``hta``: ``TraceAnalysis(trace_dir=...)`` plus ``get_temporal_breakdown()``,
     ``get_gpu_kernel_breakdown()`` and ``get_idle_time_breakdown()`` (``visualize=False``);
   * ``tv-json``: ``traceview.store.ingest`` of the JSON plus the whole pack on the new store;
   * ``tv-pack-json``: the pack alone on that store (a fresh process).

   Target: HTA time / traceview (ingest + pack) time >= 10.

``--json FILE`` writes every figure; ``--save-results DIR`` writes each query's result of the big
store run as Parquet (to compare the results before and after a change to the SQL).

Usage::

    python benchmarks/analyze.py                                   # 10M slices, HTA on 0.25 GB
    python benchmarks/analyze.py --json benchmarks/output/analyze.json
    python benchmarks/analyze.py --slices 1000000 --only pack       # a quick run, no HTA
    python benchmarks/analyze.py --json-runs 2                     # JSON contenders twice, in turn
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import harness  # benchmarks/harness.py, beside this script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # so that the workers import this checkout's traceview and parsers

OUTPUT = REPO / "benchmarks" / "output"
STORE_VERSION = 3  # bump when the replication changes, so that old stores are rebuilt
GAP_NS = 1_000_000  # idle time between two copies of the trace
MB = 10**6
ROWS_PER_WRITE = 1 << 20  # rows gathered before a Parquet write (row groups of ROW_GROUP rows)
ROW_GROUP = 122_880  # DuckDB's default, what `traceview ingest` writes
CONTENDERS = ("pack", "tv-json", "tv-pack-json", "hta")
TARGETS = {
    "pack_seconds": 10.0,  # the whole pack on >= 10M slices, wall seconds <=
    "hta_over_traceview": 10.0,  # HTA (load + 3 analyses) / traceview (ingest + pack) >=
}
SOURCES = {
    "nccl": REPO.parent / "shared" / "corpus" / "kineto" / "hta" / "nccl_parser_config" / "nccl_data.json.gz",
    "longctx": REPO / "sample_traces" / "longctx_h200" / "longctx_h200.pt.trace.json.gz",
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------------------------
# 1. The replicated store
# --------------------------------------------------------------------------------------------


@dataclass
class StoreMeta:
    """How a replicated store was made; stored beside it so that a later run can reuse it."""

    store_version: int
    source: str
    source_sha256: str
    copies: int
    base_slices: int
    slices: int
    period_ns: int
    strides: dict[str, int]
    rows: dict[str, int]
    parquet_bytes: int
    build_s: float


def _strides(con: Any) -> tuple[int, dict[str, int]]:
    """(period in ns, offsets per copy) from the base store's views in `con`."""
    lo, hi = con.execute(
        """
        SELECT min(lo), max(hi) FROM (
          SELECT min(ts_ns) AS lo, max(ts_ns + dur_ns) AS hi FROM slices
          UNION ALL SELECT min(ts_ns), max(ts_ns) FROM memory
          UNION ALL SELECT min(ts_ns), max(ts_ns) FROM counters
          UNION ALL SELECT min(ts_ns), max(ts_ns) FROM instants)
        """
    ).fetchall()[0]
    row = con.execute(
        """
        SELECT max(greatest(slice_id, parent_id)) - least(min(slice_id), min(parent_id)) + 1,
               max(correlation) - min(correlation) + 1, max(external_id) - min(external_id) + 1,
               max(step) - min(step) + 1
        FROM slices
        """
    ).fetchall()[0]
    flow = con.execute(
        "SELECT max(TRY_CAST(flow_id AS BIGINT)) - min(TRY_CAST(flow_id AS BIGINT)) + 1 FROM flows"
    ).fetchall()[0]
    others = con.execute(
        "SELECT max(slice_id) - min(slice_id) + 1, max(step) - min(step) + 1 FROM npu_kernel_metrics"
    ).fetchall()[0]
    step_rows = con.execute("SELECT max(step) - min(step) + 1 FROM steps").fetchall()[0]
    ids = max(row[0] or 1, others[0] or 1)
    steps = max(row[3] or 1, others[1] or 1, step_rows[0] or 1)
    strides = {"slice_id": ids, "correlation": row[1] or 1, "external_id": row[2] or 1, "step": steps}
    strides["flow_id"] = flow[0] or 1
    return (hi - lo) + GAP_NS, strides


def _column_exprs(table: str, period_ns: int, strides: dict[str, int]) -> list[str]:
    """The SELECT list that turns a base row into its copy k (column `k`), in schema order."""
    from traceview.parsers.model import TABLES

    ids = strides["slice_id"]
    shifted = {
        "ts_ns": f"ts_ns + k * {period_ns}",
        "slice_id": f"slice_id + k * {ids}",
        "parent_id": f"parent_id + k * {ids}",
        "src_slice_id": f"src_slice_id + k * {ids}",
        "dst_slice_id": f"dst_slice_id + k * {ids}",
        "correlation": f"correlation + k * {strides['correlation']}",
        "external_id": f"external_id + k * {strides['external_id']}",
        "step": f"step + k * {strides['step']}",
        "flow_id": (
            f"CASE WHEN TRY_CAST(flow_id AS BIGINT) IS NOT NULL"
            f" THEN CAST(TRY_CAST(flow_id AS BIGINT) + k * {strides['flow_id']} AS VARCHAR)"
            f" WHEN k = 0 THEN flow_id ELSE flow_id || '#' || k END"
        ),
    }
    if table == "slices":  # ProfilerStep#N follows its step
        shifted["name"] = (
            f"CASE WHEN kind = 'step' AND name = 'ProfilerStep#' || step"
            f" THEN 'ProfilerStep#' || (step + k * {strides['step']}) ELSE name END"
        )
    return [f'{shifted.get(f.name, f.name)} AS "{f.name}"' for f in TABLES[table]]


def _write_copies(con: Any, table: str, exprs: list[str], copies: int, path: Path) -> int:
    """Write `copies` copies of base table `table` to `path`, copy after copy.

    `slices` keeps the layout `traceview ingest` writes (parsers/slice_order.py): the rows of each
    slice group together, in copy and file order within it, each group starting a new row group.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from traceview.parsers.model import TABLES
    from traceview.parsers.parsed import parquet_options
    from traceview.parsers.slice_order import GROUP_SQL, GROUPS

    schema = TABLES[table]
    con.execute(f"CREATE OR REPLACE TEMP TABLE base_{table} AS SELECT * FROM {table}")
    base_rows = con.execute(f"SELECT count(*) FROM base_{table}").fetchall()[0][0]
    groups = range(len(GROUPS)) if table == "slices" else [None]
    rows = 0
    free_text = ("args",) if table == "slices" else ()  # as `traceview ingest` writes them
    with pq.ParquetWriter(path, schema, **parquet_options(schema, free_text)) as writer:
        for group in groups:
            where = f"WHERE {GROUP_SQL} = {group}" if group is not None else ""
            per_copy = f"SELECT {', '.join(exprs)} FROM (SELECT *, $k::BIGINT AS k FROM base_{table} {where})"
            pending: list[pa.Table] = []
            pending_rows = 0
            for k in range(copies if base_rows else 0):
                part = con.sql(per_copy, params={"k": k}).to_arrow_table()
                pending.append(part.cast(schema))
                pending_rows += part.num_rows
                if pending_rows >= ROWS_PER_WRITE or k == copies - 1:
                    data = pa.concat_tables(pending)
                    # whole row groups only, but for the group's last write
                    cut = data.num_rows if k == copies - 1 else data.num_rows // ROW_GROUP * ROW_GROUP
                    writer.write_table(data.slice(0, cut), row_group_size=ROW_GROUP)
                    rows += cut
                    pending, pending_rows = [data.slice(cut)], data.num_rows - cut
        if not base_rows:
            writer.write_table(schema.empty_table())
    return rows


def _orphans(con: Any) -> int:
    """Slices whose parent_id names no slice (0 in a sound store)."""
    return con.execute(
        "SELECT count(*) FROM slices c WHERE c.parent_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM slices p WHERE p.slice_id = c.parent_id)"
    ).fetchall()[0][0]


def _check_store(store: Path, expected_rows: dict[str, int], base_orphans: int, copies: int) -> None:
    """Raise unless the store reads back with the expected counts and unique, linked ids."""
    from traceview.engine import connect

    con = connect(store)
    try:
        for table, rows in expected_rows.items():
            got = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            if got != rows:
                raise AssertionError(f"{table}: {got} rows, expected {rows}")
        dup = con.execute("SELECT count(*) - count(DISTINCT slice_id) FROM slices").fetchall()[0][0]
        orphans = _orphans(con)
        if dup or orphans != base_orphans * copies:
            raise AssertionError(f"slices: {dup} duplicate slice_id, {orphans} parent_id without a slice")
        steps = con.execute("SELECT count(*), count(DISTINCT step) FROM slices WHERE kind = 'step'").fetchall()[0]
        if steps[0] != steps[1]:
            raise AssertionError(f"steps: {steps[0]} step slices but {steps[1]} distinct steps")
    finally:
        con.close()


def ensure_store(source: Path, key: str, slices: int) -> tuple[Path, StoreMeta]:
    """A store of at least `slices` slices made of copies of `source`; built unless present."""
    import duckdb

    from traceview.engine import connect
    from traceview.parsers.model import TABLES
    from traceview.store import MANIFEST, ingest, read_manifest

    base = OUTPUT / f"analyze-base-{key}"
    ingested = ingest([source], base)  # reused by traceview itself while the source is unchanged
    base_slices = int(ingested.manifest["tables"]["slices"])
    copies = max(1, math.ceil(slices / base_slices))
    store = OUTPUT / f"analyze-store-{key}-{copies}x"
    meta_path = OUTPUT / f"{store.name}.meta.json"
    source_sha = _sha256(source)
    try:
        raw = json.loads(meta_path.read_text())
        meta: StoreMeta | None = StoreMeta(**raw)
    except (OSError, ValueError, TypeError):
        meta = None
    if (
        meta is not None
        and meta.store_version == STORE_VERSION
        and meta.source_sha256 == source_sha
        and meta.copies == copies
        and (store / MANIFEST).is_file()
        and _dir_bytes(store) - (store / MANIFEST).stat().st_size == meta.parquet_bytes
    ):
        harness.log(f"reusing {store.relative_to(REPO)} ({meta.slices:,} slices, {copies} copies)")
        return store, meta

    started = time.perf_counter()
    harness.log(f"building {store.relative_to(REPO)}: {copies} copies of {source.name} ({base_slices:,} slices each)")
    con: duckdb.DuckDBPyConnection = connect(base)
    staging = OUTPUT / f".{store.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        period_ns, strides = _strides(con)
        base_orphans = _orphans(con)
        trace_id = con.execute("SELECT trace_id FROM traces").fetchall()[0][0]
        rows: dict[str, int] = {}
        for table in TABLES:
            (staging / table).mkdir(parents=True)
            target = staging / table / f"part-{trace_id}.parquet"
            if table == "traces":
                continue
            n = 1 if table == "metadata" else copies  # process/thread names and device facts: once
            rows[table] = _write_copies(con, table, _column_exprs(table, period_ns, strides), n, target)
            harness.log(f"  {table}: {rows[table]:,} rows")
        con.execute(
            f"""
            COPY (SELECT * REPLACE (event_count * {copies} AS event_count, {rows["slices"]}::BIGINT AS slice_count)
                  FROM traces)
            TO '{staging / "traces" / f"part-{trace_id}.parquet"}' (FORMAT parquet, COMPRESSION zstd)
            """
        )
        rows["traces"] = 1
    finally:
        con.close()
    manifest = read_manifest(base)
    manifest["tables"] = {table: rows.get(table, 0) for table in TABLES}
    for entry in manifest["inputs"]:
        entry["rows"] = manifest["tables"]
    manifest["replicated"] = {
        "copies": copies,
        "period_ns": period_ns,
        "strides": strides,
        "by": "benchmarks/analyze.py",
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    _check_store(staging, rows, base_orphans, copies)
    shutil.rmtree(store, ignore_errors=True)
    os.replace(staging, store)
    meta = StoreMeta(
        store_version=STORE_VERSION,
        source=str(source),
        source_sha256=source_sha,
        copies=copies,
        base_slices=base_slices,
        slices=rows["slices"],
        period_ns=period_ns,
        strides=strides,
        rows=rows,
        parquet_bytes=_dir_bytes(store) - (store / MANIFEST).stat().st_size,
        build_s=time.perf_counter() - started,
    )
    meta_path.write_text(json.dumps(asdict(meta), indent=2) + "\n")
    harness.log(f"built {meta.slices:,} slices ({meta.parquet_bytes / MB:.0f} MB of Parquet) in {meta.build_s:.1f} s")
    return store, meta


# --------------------------------------------------------------------------------------------
# 3. The Kineto JSON for HTA (benchmarks/ingest.py's generator: textual copies, exact shifts)
# --------------------------------------------------------------------------------------------


def _ingest_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_ingest", REPO / "benchmarks" / "ingest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


def ensure_json(source: Path, key: str, size_gb: float) -> tuple[Path, dict]:
    """The Kineto JSON of about `size_gb` GB made of shifted copies of `source` (reused if present)."""
    bench = _ingest_bench()
    known = {g.source.resolve(): g for g in bench.GENERATIONS.values()}
    gen = known.get(source.resolve()) or bench.Generation(f"src-{key}", f"copies of {source.name}", source)
    trace, meta = bench.ensure_trace(gen, size_gb, harness.log)
    return trace, asdict(meta)


# --------------------------------------------------------------------------------------------
# Workers (each contender runs in its own child process: `analyze.py --worker NAME ...`)
# --------------------------------------------------------------------------------------------


def _pack(store: Path, result: dict, save: Path | None = None) -> float:
    """Run the whole built-in pack on `store`; record per-query figures; return its wall time."""
    from traceview.analysis.analyze import run_analyze

    started = time.perf_counter()
    report = run_analyze([store])
    wall = time.perf_counter() - started
    queries = []
    for res in report.results:
        queries.append(
            {
                "name": res.query.name,
                "seconds": res.seconds,
                "rows": None if res.frame is None else res.frame.height,
                "findings": len(res.findings),
                "error": res.error,
            }
        )
        if save is not None and res.frame is not None:
            save.mkdir(parents=True, exist_ok=True)
            res.frame.write_parquet(save / f"{res.query.name}.parquet")
    result["queries"] = queries
    result["shared"] = [
        {"name": item.relation.name, "seconds": item.seconds, "rows": item.rows, "error": item.error}
        for item in report.shared
    ]
    result["errors"] = report.errors
    result["findings"] = len(report.findings)
    return wall


def run_pack(store: Path, result: dict, save: Path | None) -> None:
    import traceview.analysis.analyze  # noqa: F401  (imports are not timed)

    result["rss_after_import_bytes"] = harness.maxrss_bytes()
    cpu = harness.cpu_s()
    result["wall_s"] = _pack(store, result, save)
    result["cpu_s"] = harness.cpu_s() - cpu


def run_tv_json(trace: Path, store: Path, result: dict) -> None:
    import traceview.analysis.analyze  # noqa: F401
    from traceview.store import ingest

    result["rss_after_import_bytes"] = harness.maxrss_bytes()
    cpu = harness.cpu_s()
    started = time.perf_counter()
    ingested = ingest([trace], store, force=True)
    result["ingest_s"] = time.perf_counter() - started
    result["slices"] = ingested.manifest["tables"]["slices"]
    result["peak_rss_ingest_bytes"] = harness.maxrss_bytes()
    result["pack_s"] = _pack(store, result)
    result["wall_s"] = time.perf_counter() - started
    result["cpu_s"] = harness.cpu_s() - cpu


def run_hta(trace: Path, result: dict) -> None:
    from hta.trace_analysis import TraceAnalysis

    result["rss_after_import_bytes"] = harness.maxrss_bytes()
    cpu = harness.cpu_s()
    stages: dict[str, float] = {}
    started = time.perf_counter()
    analysis = TraceAnalysis(trace_dir=str(trace.parent))
    stages["load"] = time.perf_counter() - started
    result["rows"] = {str(rank): len(df) for rank, df in analysis.t.traces.items()}
    mark = time.perf_counter()
    temporal = analysis.get_temporal_breakdown(visualize=False)
    stages["get_temporal_breakdown"] = time.perf_counter() - mark
    mark = time.perf_counter()
    kernels, _ = analysis.get_gpu_kernel_breakdown(visualize=False)
    stages["get_gpu_kernel_breakdown"] = time.perf_counter() - mark
    mark = time.perf_counter()
    idle, _ = analysis.get_idle_time_breakdown(visualize=False)
    stages["get_idle_time_breakdown"] = time.perf_counter() - mark
    result["wall_s"] = time.perf_counter() - started
    result["cpu_s"] = harness.cpu_s() - cpu
    result["stages_s"] = stages
    result["result_rows"] = {"temporal": len(temporal), "kernels": len(kernels), "idle": len(idle)}
    result["children_peak_rss_bytes"] = harness.maxrss_bytes(resource.RUSAGE_CHILDREN)


def worker_main(args: argparse.Namespace) -> int:
    """Child-process entry: run one contender, write its figures to `args.result` as JSON."""

    def body(result: dict) -> None:
        if args.worker in ("pack", "tv-pack-json"):
            run_pack(Path(args.store), result, Path(args.save) if args.save else None)
        elif args.worker == "tv-json":
            run_tv_json(Path(args.trace), Path(args.store), result)
        elif args.worker == "hta":
            run_hta(Path(args.trace), result)
        else:
            raise ValueError(f"unknown contender {args.worker}")

    return harness.run_worker(args.worker, args.mem_gb, Path(args.result), body)


# --------------------------------------------------------------------------------------------
# The parent
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One contender's figures."""

    contender: str
    status: str
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    details: dict = field(default_factory=dict)


def run_contender(
    name: str,
    timeout_s: float,
    *,
    trace: Path | None = None,
    store: Path | None = None,
    save: Path | None = None,
    mem_gb: float = 0.0,
    tag: str = "",
) -> Run:
    """Run one contender in a fresh child process (its own session, killed as a group on timeout)."""
    log_dir = OUTPUT / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    label = f"analyze-{name}{tag}"
    result_path, log_path = log_dir / f"{label}.result.json", log_dir / f"{label}.log"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--result", str(result_path)]
    cmd += ["--mem-gb", str(mem_gb)]
    if trace is not None:
        cmd += ["--trace", str(trace)]
    if store is not None:
        cmd += ["--store", str(store)]
    if save is not None:
        cmd += ["--save", str(save)]
    load_before = os.getloadavg()
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and any pool it forked
            proc.wait()
            return Run(name, f"did not finish in {timeout_s:.0f} s", details={"log": str(log_path)})
    if not result_path.is_file():
        why = f"killed by signal {-code}" if code < 0 else f"exited {code}"
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        return Run(name, why, details={"log": str(log_path), "tail": tail})
    details = json.loads(result_path.read_text())
    details["loadavg_before"] = load_before
    details["log"] = str(log_path)
    run = Run(name, details.get("status", "?"), details=details)
    if run.status == "ok":
        run.wall_s = details["wall_s"]
        run.cpu_s = details.get("cpu_s")
        run.peak_rss_mb = details["peak_rss_bytes"] / MB
    return run


def best_of(runs: list[Run]) -> Run:
    """The fastest finished run (the last one when none finished), with every wall time noted."""
    finished = [r for r in runs if r.wall_s is not None]
    best = min(finished, key=lambda r: r.wall_s or 0.0) if finished else runs[-1]
    best.details["walls_s"] = [r.wall_s for r in runs]
    return best


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def evaluate(runs: dict[str, Run], store_slices: int) -> dict[str, dict]:
    """The two targets: pack seconds on the big store, and HTA over traceview on the JSON."""
    verdict: dict[str, dict] = {}
    pack = runs.get("pack")
    if pack is not None:
        ok = pack.wall_s is not None and not pack.details.get("errors")
        verdict["pack_seconds"] = {
            "value": pack.wall_s,
            "target": TARGETS["pack_seconds"],
            "slices": store_slices,
            "met": bool(ok and pack.wall_s is not None and pack.wall_s <= TARGETS["pack_seconds"]),
        }
    hta, tv, tv_pack = runs.get("hta"), runs.get("tv-json"), runs.get("tv-pack-json")
    if hta is not None and tv is not None and tv.wall_s:
        value = hta.wall_s / tv.wall_s if hta.wall_s is not None else None
        verdict["hta_over_traceview"] = {
            "value": value,
            "target": TARGETS["hta_over_traceview"],
            "met": value is not None and value >= TARGETS["hta_over_traceview"],
        }
        if hta.wall_s is not None and tv_pack is not None and tv_pack.wall_s:
            verdict["hta_over_traceview_pack_only"] = {"value": hta.wall_s / tv_pack.wall_s}
        if hta.wall_s is not None and tv_pack is not None and tv_pack.wall_s:
            hta_analyses = hta.wall_s - hta.details["stages_s"]["load"]
            verdict["hta_analyses_over_traceview_pack"] = {"value": hta_analyses / tv_pack.wall_s}
    return verdict


def report(figures: dict, runs: dict[str, Run], verdict: dict[str, dict]) -> str:
    store, js = figures.get("store", {}), figures.get("json", {})
    lines = [""]
    if store:
        lines.append(
            f"Store: {store['path']}: {store['slices']:,} slices ({store['copies']} copies of"
            f" {Path(store['source']).name}), {store['parquet_bytes'] / MB:.0f} MB of Parquet"
        )
    if js:
        lines.append(f"JSON:  {js['path']}: {js['bytes'] / MB:.0f} MB, {js['x_events']:,} X events")
    lines += ["", f"  {'contender':<44} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12}  status"]
    labels = {
        "pack": f"traceview pack, store of {store.get('slices', 0):,} slices",
        "tv-json": "traceview ingest + pack, JSON",
        "tv-pack-json": "traceview pack alone, store of the JSON",
        "hta": "HTA load + 3 analyses, JSON",
    }
    for name, run in runs.items():
        lines.append(
            f"  {labels[name]:<44} {_fmt(run.wall_s, '8.2f')} {_fmt(run.cpu_s, '8.2f')}"
            f" {_fmt(run.peak_rss_mb, '12.0f')}  {run.status}"
        )
        if name == "tv-json" and run.status == "ok":
            lines.append(f"    {'ingest':<42} {run.details['ingest_s']:8.2f}")
            lines.append(f"    {'pack':<42} {run.details['pack_s']:8.2f}")
        if name == "hta" and run.status == "ok":
            for stage, seconds in run.details["stages_s"].items():
                lines.append(f"    {stage:<42} {seconds:8.2f}")
        walls = run.details.get("walls_s") or []
        if len(walls) > 1:
            lines.append(f"    (runs: {', '.join(_fmt(w, '.2f') for w in walls)} s)")
        if run.status != "ok":
            lines += [f"    {line}" for line in [run.details.get("error", "")] + run.details.get("tail", []) if line]
    loads = ", ".join(
        f"{n} {r.details['loadavg_before'][0]:.1f}" for n, r in runs.items() if "loadavg_before" in r.details
    )
    lines.append(
        f"  1-min load average at each start ({os.cpu_count()} CPUs; > CPUs means other work competed): {loads}"
    )
    lines.append("")
    pack = runs.get("pack")
    if pack is not None and pack.status == "ok":
        queries = sorted(pack.details["queries"], key=lambda q: -q["seconds"])
        lines.append(
            f"  queries of the pack on {store.get('slices', 0):,} slices, slowest first"
            " (several run at once, so their times overlap):"
        )
        for q in queries:
            status = q["error"] or f"{q['rows']} rows"
            lines.append(f"    {q['name']:<24} {q['seconds']:8.2f} s  {status}")
        shared = pack.details.get("shared", [])
        if shared:
            lines.append("  shared relations, each computed once, beside the queries that do not read them:")
            for item in shared:
                status = item["error"] or f"{item['rows']} rows"
                lines.append(f"    {item['name']:<24} {item['seconds']:8.2f} s  {status}")
        lines.append("")
    names = {
        "pack_seconds": "pack wall s on the store",
        "hta_over_traceview": "HTA / traceview (ingest + pack)",
        "hta_over_traceview_pack_only": "HTA / traceview pack alone",
        "hta_analyses_over_traceview_pack": "HTA 3 analyses (no load) / pack alone",
    }
    for key, v in verdict.items():
        value = v["value"]
        if key == "pack_seconds":
            shown = _fmt(value, ".2f") + " s"
            target = f"target <= {v['target']:g} s on >= 10M slices"
            met = v["met"] and v["slices"] >= 10_000_000
            lines.append(f"  {names[key]:<40} {shown:>10}   {target}: {'MET' if met else 'MISSED'}")
        elif "target" in v:
            shown = _fmt(value, ".1f") + "x"
            lines.append(
                f"  {names[key]:<40} {shown:>10}   target >= {v['target']:g}x: {'MET' if v['met'] else 'MISSED'}"
            )
        else:
            lines.append(f"  {names[key]:<40} {_fmt(value, '.1f') + 'x':>10}")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in ("traceview", "duckdb", "pyarrow", "polars", "traceinsight", "pandas"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--slices", type=int, default=10_000_000, help="slices of the replicated store (at least)")
    parser.add_argument(
        "--source", default="nccl", help=f"trace to replicate: {', '.join(SOURCES)} or a path to a Kineto trace"
    )
    parser.add_argument("--hta-size-gb", type=float, default=0.25, help="size of the JSON for HTA, 10^9 bytes")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="subset of " + ",".join(CONTENDERS))
    parser.add_argument("--pack-runs", type=int, default=2, help="runs of the pack on the store; the fastest counts")
    parser.add_argument(
        "--json-runs", type=int, default=1,
        help="rounds of the contenders on the JSON (tv-json, tv-pack-json, hta, in turn); the fastest of each counts",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--save-results", type=Path, help="write each query's result on the store here (Parquet)")
    parser.add_argument("--timeout", type=float, default=600.0, help="time limit of a traceview run (s)")
    parser.add_argument("--hta-timeout", type=float, default=1200.0, help="time limit of the HTA run (s)")
    parser.add_argument("--hta-mem-gb", type=float, default=16.0, help="address-space limit of HTA (GiB)")
    # Internal: the child-process side.
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--trace", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    parser.add_argument("--mem-gb", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    contenders = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(contenders) - set(CONTENDERS))
    if unknown:
        raise SystemExit(f"unknown contender(s): {', '.join(unknown)}")
    source = SOURCES.get(args.source) or Path(args.source)
    key = args.source if args.source in SOURCES else source.name.split(".")[0]
    if not source.is_file():
        raise SystemExit(f"{source}: no such trace")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": os.getloadavg(),
        },
        "versions": _versions(),
        "targets": TARGETS,
    }
    runs: dict[str, Run] = {}
    store_slices = 0
    if "pack" in contenders:
        store, meta = ensure_store(source, key, args.slices)
        store_slices = meta.slices
        figures["store"] = {"path": str(store.relative_to(REPO)), **asdict(meta)}
        tries = []
        for attempt in range(max(1, args.pack_runs)):
            harness.log(f"pack on {store.name}: run {attempt + 1}/{args.pack_runs}")
            save = args.save_results if attempt == 0 else None
            tries.append(run_contender("pack", args.timeout, store=store, save=save))
            harness.log(f"  {tries[-1].status}, wall {_fmt(tries[-1].wall_s, '.2f')} s")
            if tries[-1].status != "ok":
                break
        runs["pack"] = best_of(tries)
    json_side = [c for c in contenders if c != "pack"]
    if json_side:
        trace, json_meta = ensure_json(source, key, args.hta_size_gb)
        json_store = OUTPUT / f"analyze-json-store-{key}-{args.hta_size_gb:g}gb"
        figures["json"] = {
            "path": str(trace.relative_to(REPO)),
            "bytes": trace.stat().st_size,
            "x_events": json_meta["expected"]["x_events"],
            "meta": json_meta,
        }
        bench = _ingest_bench()
        # In rounds, each contender in turn: on a machine whose speed drifts, they see the same phases.
        tries: dict[str, list[Run]] = {}
        rounds = max(1, args.json_runs)
        for round_no in range(rounds):
            for name in ("tv-json", "tv-pack-json", "hta"):
                if name not in contenders:
                    continue
                if name == "tv-pack-json" and not (json_store / "manifest.json").is_file():
                    harness.log("tv-pack-json needs the store that tv-json writes; skipped")
                    continue
                bench.warm_cache(trace)
                size_mb = trace.stat().st_size / MB
                harness.log(f"{name} on {trace.name} ({size_mb:.0f} MB), round {round_no + 1}/{rounds}")
                if name == "hta":
                    run = run_contender(name, args.hta_timeout, trace=trace, mem_gb=args.hta_mem_gb)
                else:
                    run = run_contender(name, args.timeout, trace=trace, store=json_store)
                harness.log(
                    f"  {run.status}, wall {_fmt(run.wall_s, '.2f')} s, peak RSS {_fmt(run.peak_rss_mb, '.0f')} MB"
                )
                tries.setdefault(name, []).append(run)
        for name, runs_of_name in tries.items():
            runs[name] = best_of(runs_of_name)
    verdict = evaluate(runs, store_slices)
    figures["runs"] = {name: asdict(run) for name, run in runs.items()}
    figures["verdict"] = verdict
    print(report(figures, runs, verdict), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
