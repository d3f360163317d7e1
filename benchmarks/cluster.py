#!/usr/bin/env python3
"""Cluster benchmark: ingest + analyses of a synthetic 256-rank dump, the local engine vs Ray (issue 22).

1. Generates the dump (`python -m sample_traces.synth cluster --ranks N --vendor V --gzip`, GPU and Ascend)
   under ``benchmarks/output/cluster/`` (git-ignored) and reuses it on later runs.
2. Runs each contender in its own process, on the same dump, pinned to P cores (sched_setaffinity, inherited by
   Ray's raylet and workers), so that "the same parallelism" means the same cores:

   * ``local1`` / ``local2``: the local engine (`traceview.store.ingest` then `run_packs`): the units one after the
     other, each parsed with P threads (the local engine's only parallelism; DuckDB's analyses use its threads);
   * ``ray1`` / ``ray2``: a local Ray started with ``num_cpus=P`` (the CLI's ``--ray --ray-cpus P``), one ingest
     task per rank and the rank-scoped queries as one task per rank.
   * ``up-ray1`` / ``up-ray2`` (only when named in ``--only``): ``--ray`` on a Ray already running on the same P cores,
     as on a cluster (``RAY_ADDRESS``): a head started by a child process before the timed phases and left
     ``SETTLE_S`` to settle; ``ray_start`` is then the driver's connection to it (`ray_engine.connect`).

   Rounds (``--repeat``) interleave the contenders, in the reverse order every other round. ``--side-by-side`` runs a
   round's two one-core contenders (``local1`` and ``ray1`` or ``up-ray1``) at the same time, one on each of the
   first two cores (swapped every other round),
   so that both meet the same state of the machine: the medians of their round-by-round ratios then measure Ray's
   overhead on one core with far less of the VM's drift.

   Phases: ``ray_start`` (Ray's start, 0 for the local engine), ``ingest``, ``analyze`` (the core pack, as
   `traceview analyze`) and, where the command exists, ``cluster`` (the cluster view). Memory: the peak of the
   summed RSS of the contender's process tree (driver, raylet, GCS, workers; sampled every 500 ms from /proc), the
   driver's own peak (VmHWM) and the largest Ray worker's peak.
3. Measures the driver's gather of the rank-scoped queries' results at 64, 128 and 256 ranks: the tasks run
   first (ray.wait), then the timed part is `ray.get` of every rank's Arrow tables and their concatenation; it
   reports the per-rank results' size (Arrow bytes) and the driver's peak RSS while gathering.
4. ``--memory-mb 100,300``: the peak RSS of one Ray ingest task on a Kineto trace of that many MB (built as
   benchmarks/ingest.py builds its traces), against the target 1.5 x trace + 300 MB.

Prints a table and writes every figure to ``benchmarks/output/cluster.json``. The model of 1,024 ranks built
from these figures, with the measured figures, is in benchmarks/README_cluster.md.

Usage::

    python benchmarks/cluster.py                                   # 256 ranks, both vendors, all contenders
    python benchmarks/cluster.py --ranks 16 --gather-ranks 4,8,16   # a quick smoke run
    python benchmarks/cluster.py --only-memory --memory-mb 100,300
    python benchmarks/cluster.py --only local1,ray1 --side-by-side --repeat 7   # Ray's overhead on one core
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import harness  # benchmarks/harness.py, beside this script

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "output"
CONTENDERS = ("local1", "local2", "ray1", "ray2")  # the default; also up-ray1, up-ray2
SETTLE_S = 3.0  # a running Ray's processes have finished starting by then (its start takes 2.3-3.8 s on one core)
MB = 10**6
SAMPLE_S = 0.5  # the per-process peaks are the kernel's (VmHWM); only the tree's summed peak is sampled
TARGET_RAY_SPEEDUP = 1.7  # ray2 vs ray1
TARGET_RAY_OVERHEAD = 0.15  # rayP vs localP, whole run
TARGET_TASK_RSS = (1.5, 300 * MB)  # a task's peak RSS <= 1.5 x trace + 300 MB


# --- process-tree memory, from /proc --------------------------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int:
    return _status_kbs(pid, (key,))[0]


def _status_kbs(pid: int, keys: tuple[str, ...]) -> list[int]:
    """The values (kB) of `keys` in /proc/PID/status, read once; 0 for one not found."""
    found: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in keys:
                found[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return [found.get(key, 0) for key in keys]


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree(root: int) -> list[int]:
    """`root` and every process below it."""
    kids, found, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += kids.get(pid, [])
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class TreeSampler:
    """Samples the summed RSS of this process's tree; remembers each process's peak (VmHWM) as last seen."""

    def __init__(self) -> None:
        self.peak_sum = 0
        self.hwm: dict[int, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total = 0
        for pid in tree(os.getpid()):
            rss_kb, hwm_kb = _status_kbs(pid, ("VmRSS", "VmHWM"))
            total += rss_kb * 1024
            hwm = hwm_kb * 1024
            if hwm:
                self.hwm[pid] = (hwm, self.hwm.get(pid, (0, ""))[1] or _cmdline(pid)[:80])
        self.peak_sum = max(self.peak_sum, total)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def figures(self) -> dict[str, Any]:
        """The figures as of now: a sample first, so that a run shorter than `SAMPLE_S` has its peaks (VmHWM) too."""
        self._sample()
        # a worker first seen while it imports is still named by its script
        workers = [
            hwm for pid, (hwm, cmd) in self.hwm.items()
            if pid != os.getpid() and (cmd.startswith("ray::") or "default_worker.py" in cmd)
        ]  # fmt: skip
        return {
            "tree_peak_rss_bytes": self.peak_sum,
            "driver_peak_rss_bytes": _status_kb(os.getpid(), "VmHWM") * 1024,
            "worker_peak_rss_bytes": max(workers, default=0),
            "workers_seen": len(workers),
        }


def reset_peak_rss() -> None:
    """Start this process's VmHWM afresh (Linux: 5 > clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


@contextmanager
def phase(result: dict, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        result.setdefault("phases_s", {})[name] = time.perf_counter() - started


# --- the contenders, in a child process -----------------------------------------------------------------------------


def local_runner(threads: int) -> Any:
    """The local engine's runner (`run_units_here`) with the parser's threads set to `threads`."""
    from concurrent.futures import ThreadPoolExecutor

    from traceview.store import ingest_unit

    def run(units: list, staging: Path, progress: Any) -> list[dict]:
        with ThreadPoolExecutor(1) as hasher:
            return [ingest_unit(unit, staging, hasher, threads=threads) for unit in units]

    return run


@contextmanager
def running_ray(cpus: int) -> Iterator[str]:
    """A Ray of `cpus` CPUs running on this process's cores, as a cluster runs before a command attaches to it: a head
    started by a child process (`ray_engine.connect`, as a command without RAY_ADDRESS starts one), left `SETTLE_S`
    to settle; yields its address, stops it on leaving.

    The address is "auto" (the newest Ray of this machine, this one): Ray 2.60's token authentication turns a driver
    away from the head's GCS address given as such, without the token that "auto" finds."""
    code = (
        "import sys; from traceview import ray_engine; ray = ray_engine.connect(int(sys.argv[1])); "
        "print(ray.get_runtime_context().gcs_address, flush=True); sys.stdin.read(); ray.shutdown()"
    )
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    head = subprocess.Popen(
        [sys.executable, "-c", code, str(cpus)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        address = head.stdout.readline().strip() if head.stdout else ""
        if not address:
            raise RuntimeError("the Ray head did not start")
        time.sleep(SETTLE_S)
        yield "auto"
    finally:
        if head.stdin:
            head.stdin.close()
        head.wait(timeout=120)


def run_contender(name: str, dump: Path, store: Path, result: dict, cores: list[int] | None = None) -> None:
    """Ingest DUMP into STORE and run the analyses, on P cores (the contender's name ends with P): CORES, or the
    first P of this process's."""
    from traceview import ray_engine
    from traceview.analysis.report import run_packs
    from traceview.store import ingest

    cpus = int(name[-1])
    pinned = set(cores or sorted(os.sched_getaffinity(0))[:cpus])
    if len(pinned) != cpus:
        raise ValueError(f"{name} runs on {cpus} cores, not on {sorted(pinned)}")
    os.sched_setaffinity(0, pinned)
    result.update(cpus=cpus, cores=sorted(pinned), load_1m_at_start=os.getloadavg()[0])
    on_ray = "ray" in name
    with ExitStack() as before_timing, TreeSampler() as sampler:
        if name.startswith("up-"):
            os.environ["RAY_ADDRESS"] = before_timing.enter_context(running_ray(cpus))
        with phase(result, "ray_start"):
            ray = ray_engine.connect(cpus) if on_ray else None  # attaches to RAY_ADDRESS's Ray, if set
        with phase(result, "ingest"):
            runner = partial(ray_engine.run_units, num_cpus=cpus) if on_ray else local_runner(cpus)
            done = ingest([dump], store, force=True, runner=runner)
        result["traces"] = len(done.manifest["inputs"])
        result["failed"] = len(done.manifest.get("failed", []))
        with phase(result, "analyze"):
            rank_runner = partial(ray_engine.submit_rank_work, num_cpus=cpus) if on_ray else None
            report = run_packs([store], rank_runner=rank_runner)
        result["analyze_errors"] = report.to_json()["errors"]
        result["analyze_results_sha"] = _digest(report.to_json()["results"])
        cluster = _cluster_runner(on_ray, cpus)
        if cluster is not None:
            with phase(result, "cluster"):
                view = cluster([store])
            result["cluster_json_sha"] = _digest(view.to_json())
        result.update(sampler.figures())
        if ray is not None:
            ray.shutdown()
    result["total_s"] = sum(result["phases_s"].values())


def _cluster_runner(on_ray: bool, cpus: int) -> Any:
    """The cluster view's function (with Ray, when it takes `ray`), or None where this checkout has none."""
    try:
        from traceview.analysis.cluster import run_cluster
    except ImportError:
        return None
    if not on_ray:
        return run_cluster
    import inspect

    if "ray" not in inspect.signature(run_cluster).parameters:
        return None
    return partial(run_cluster, ray=True, ray_cpus=cpus)


def _digest(value: Any) -> str:
    import hashlib

    from traceview import jsonify

    return hashlib.sha256(jsonify.dumps(value).encode()).hexdigest()[:16]


def run_gather(store: Path, counts: list[int], result: dict) -> None:
    """The driver's gather of the rank tasks' rows (the rank-scoped queries' and the per-rank relation's) at each count
    of ranks (the first N traces of STORE)."""
    from dataclasses import replace

    import pyarrow as pa

    from traceview import ray_engine
    from traceview.analysis.rank_work import GATHERED, MIN_BATCH_RANKS, RANK_RELATIONS, ranks_of
    from traceview.analysis.report import packs_for
    from traceview.packs import needed_by

    ray = ray_engine.connect(2)
    traces = ranks_of([store])
    core = packs_for([])[0]
    queries = [replace(q, findings=[]) for q in core.queries if q.scope == "rank"]
    pack = needed_by(core, queries, RANK_RELATIONS)
    task = ray.remote(num_cpus=1)(ray_engine._rank_task)
    rows = []
    for count in counts:
        subset = traces[:count]
        started = time.perf_counter()
        batches = ray_engine.rank_batches(subset, ray_engine.batch_count(2), MIN_BATCH_RANKS)
        refs = [task.remote(str(s), ids, pack, [GATHERED], {}, 60.0) for s, ids in batches]
        ray.wait(refs, num_returns=len(refs), fetch_local=False)
        compute_s = time.perf_counter() - started
        rss_before = _status_kb(os.getpid(), "VmRSS") * 1024
        reset_peak_rss()
        started = time.perf_counter()
        per_batch = ray.get(refs)
        outcomes = [part for batch in per_batch for part in (*batch[0], *batch[1])]
        width = len(queries) + 1
        gathered = [pa.concat_tables([b[0][i][0] for b in per_batch]) for i in range(len(queries))]
        gathered.append(pa.concat_tables([b[1][0][0] for b in per_batch]))
        gather_s = time.perf_counter() - started
        results_bytes = sum(t.nbytes for t, _, _ in outcomes if t is not None)
        rows.append(
            {
                "ranks": count,
                "tasks_s": compute_s,
                "gather_s": gather_s,
                "tasks": len(batches),
                "results_bytes": results_bytes,
                "per_rank_bytes_mean": results_bytes / count,
                "gathered_tables": width,
                "gathered_rows": sum(t.num_rows for t in gathered),
                "driver_rss_before_bytes": rss_before,
                "driver_peak_rss_gathering_bytes": _status_kb(os.getpid(), "VmHWM") * 1024,
            }
        )
        del per_batch, gathered, outcomes
    result["gather"] = rows
    ray.shutdown()


def _imports_rss() -> int:
    """A Ray worker's RSS once it has imported what an ingest task imports (its fixed part)."""
    import traceview.parsers
    import traceview.store  # noqa: F401

    return _status_kb(os.getpid(), "VmRSS") * 1024


def run_task_memory(trace: Path, store: Path, result: dict) -> None:
    """One Ray ingest task on TRACE (its resources as `ray_engine.run_units` asks them): the worker's peak RSS."""
    from traceview import parsers, ray_engine
    from traceview.store import _build

    ray = ray_engine.connect(2)
    result["trace_bytes"] = trace.stat().st_size
    result["memory_request_bytes"] = ray_engine.scheduled_memory_bytes(ray_engine.input_bytes(trace))
    result["worker_baseline_rss_bytes"] = ray.get(ray.remote(num_cpus=1)(_imports_rss).remote())
    with TreeSampler() as sampler:
        staging = store.with_name(store.name + ".staging")
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        started = time.perf_counter()
        manifest = _build(
            [(trace.resolve(), parsers.KINETO, True)], staging, None, partial(ray_engine.run_units, num_cpus=2)
        )
        result["slices"] = manifest["tables"]["slices"]
        result["ingest_s"] = time.perf_counter() - started
        result.update(sampler.figures())
        shutil.rmtree(staging, ignore_errors=True)
    ratio, fixed = TARGET_TASK_RSS
    result["target_bytes"] = int(ratio * result["trace_bytes"] + fixed)
    result["worker_over_trace"] = result["worker_peak_rss_bytes"] / result["trace_bytes"]
    ray.shutdown()


def worker_main(args: argparse.Namespace) -> int:
    def body(result: dict) -> None:
        if args.worker == "gather":
            run_gather(Path(args.store), [int(n) for n in args.gather_ranks.split(",")], result)
        elif args.worker == "memory":
            run_task_memory(Path(args.dump), Path(args.store), result)
        else:
            cores = [int(core) for core in args.cores.split(",")] if args.cores else None
            run_contender(args.worker, Path(args.dump), Path(args.store), result, cores)

    return harness.run_worker(args.worker, None, Path(args.result), body)


# --- the driver -----------------------------------------------------------------------------------------------------


def ensure_dump(vendor: str, ranks: int) -> Path:
    """The synthetic cluster dump of RANKS ranks, generated once."""
    folder = OUTPUT / "cluster" / f"{vendor}-{ranks}"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    harness.log(f"generating {folder.relative_to(REPO)}")
    subprocess.run(
        [sys.executable, "-m", "sample_traces.synth", "cluster", "--ranks", str(ranks), "--vendor", vendor,
         "--gzip", str(folder)],
        check=True, cwd=REPO, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    marker.write_text("")
    return folder


def spawn(worker: str, timeout: float, **options: str) -> dict:
    """Run one contender in a child process; its figures (or why it failed)."""
    result = OUTPUT / "cluster" / f"result-{worker}.json"
    result.unlink(missing_ok=True)
    argv = [sys.executable, __file__, "--worker", worker, "--result", str(result)]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", value]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = OUTPUT / "cluster" / f"log-{worker}.txt"
    with open(log, "w") as err:
        try:
            subprocess.run(argv, env=env, stdout=err, stderr=err, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"contender": worker, "status": "timeout"}
    try:
        return json.loads(result.read_text())
    except (OSError, ValueError):
        return {"contender": worker, "status": "no result", "log": harness.tail(log)}


def run_rounds(vendor: str, dump: Path, args: argparse.Namespace) -> dict[str, list[dict]]:
    """Every contender's runs, round after round, interleaved so that a slow spell of the machine hits every
    contender, in the reverse order every other round so that a drift across a round favours none. With
    `--side-by-side`, a round's local1 and its one-CPU Ray contender run at the same time, each on one of the first
    two cores (swapped every other round): both then meet the same state of the machine, whose speed drifts by
    10-15% between two runs one after the other."""
    names = args.only.split(",")
    pair = [name for name in names if name.endswith("1")] if args.side_by_side else []
    if args.side_by_side and (len(pair) != 2 or "local1" not in pair):
        raise SystemExit("--side-by-side needs local1 and one Ray contender of one CPU in --only, and no other")
    cores = sorted(os.sched_getaffinity(0))[:2]
    rounds: dict[str, list[dict]] = {name: [] for name in names}
    for turn in range(args.repeat):
        order = names if turn % 2 == 0 else names[::-1]
        for name in order:
            if name in pair[1:]:
                continue
            where = f"{vendor}: round {turn + 1}/{args.repeat} (load {os.getloadavg()[0]:.2f}):"
            if name in pair:
                placed = dict(zip(pair if turn % 2 == 0 else pair[::-1], cores, strict=True))
                harness.log(f"{where} {', '.join(f'{n} on core {c}' for n, c in placed.items())}, side by side")
                with ThreadPoolExecutor(len(placed)) as pool:
                    started = {
                        n: pool.submit(spawn_contender, n, vendor, dump, args, str(c)) for n, c in placed.items()
                    }
                for n, future in started.items():
                    rounds[n].append({**future.result(), "side_by_side_with": next(o for o in pair if o != n)})
                continue
            harness.log(f"{where} {name}")
            rounds[name].append(spawn_contender(name, vendor, dump, args))
    return rounds


def spawn_contender(name: str, vendor: str, dump: Path, args: argparse.Namespace, cores: str = "") -> dict:
    store = OUTPUT / "cluster" / f"{vendor}-{args.ranks}-{name}.traceview"
    options = {"dump": str(dump), "store": str(store)} | ({"cores": cores} if cores else {})
    return spawn(name, args.timeout, **options)


def verdict(runs: dict[str, dict], rounds: dict[str, list[dict]] | None = None) -> dict:
    """The targets: ray2 vs ray1 speed-up, and Ray's overhead over the local engine at the same parallelism, from the
    median runs; with `rounds`, also the median of the same ratios taken round by round (`*_paired`), which a slow
    spell of the machine that spans a round moves less."""
    def total(name: str) -> float | None:
        run = runs.get(name, {})
        return run.get("total_s") if run.get("status") == "ok" else None

    out: dict[str, Any] = {}
    if total("ray1") and total("ray2"):
        out["ray2_speedup_over_ray1"] = total("ray1") / total("ray2")  # type: ignore[operator]
        out["ray2_speedup_ok"] = out["ray2_speedup_over_ray1"] >= TARGET_RAY_SPEEDUP
    overheads = [(f"{up}ray{cpus}", f"local{cpus}") for up in ("", "up-") for cpus in (1, 2)]
    for ray_name, local_name in overheads:
        local, ray = total(local_name), total(ray_name)
        if local and ray:
            out[f"{ray_name}_overhead_over_{local_name}"] = ray / local - 1
            out[f"{ray_name}_overhead_ok"] = ray / local - 1 <= TARGET_RAY_OVERHEAD
    paired = {"ray2_speedup_over_ray1_paired": ("ray1", "ray2", 0.0)}
    paired |= {f"{ray}_overhead_over_{local}_paired": (ray, local, -1.0) for ray, local in overheads}
    for key, (num, den, offset) in paired.items():
        pairs = zip((rounds or {}).get(num, []), (rounds or {}).get(den, []), strict=False)
        ratios = [a["total_s"] / b["total_s"] + offset for a, b in pairs if a.get("status") == b.get("status") == "ok"]
        if ratios:
            out[key] = statistics.median(ratios)
    shas = {r.get("analyze_results_sha") for r in runs.values() if r.get("status") == "ok"}
    out["same_analyze_results"] = len(shas) == 1
    views = {r.get("cluster_json_sha") for r in runs.values() if r.get("status") == "ok"}
    out["same_cluster_json"] = len(views) == 1 and None not in views
    return out


def median_run(tries: list[dict]) -> dict:
    """The run of median total time among a contender's rounds (the lower middle one of an even count); a failed
    round, if any, stands for them all."""
    failed = [run for run in tries if run.get("status") != "ok"]
    if failed:
        return failed[0]
    ordered = sorted(tries, key=lambda run: run["total_s"])
    return ordered[(len(ordered) - 1) // 2]


def spread(rounds: dict[str, list[dict]]) -> str:
    """Each contender's total time in every round."""
    lines = []
    for name, tries in rounds.items():
        totals = [f"{run['total_s']:.1f}" if run.get("status") == "ok" else str(run.get("status")) for run in tries]
        lines.append(f"{name:10} rounds: {', '.join(totals)} s")
    return "\n".join(lines)


def table(vendor: str, runs: dict[str, dict]) -> str:
    phases = ("ray_start", "ingest", "analyze", "cluster")
    head = f"{'contender':10} " + " ".join(f"{p + ' s':>11}" for p in phases)
    head += f" {'total s':>9} {'tree MB':>8} {'driver MB':>9} {'worker MB':>9}  load"
    lines = [f"== {vendor} ==", head]
    for name, run in runs.items():
        if run.get("status") != "ok":
            lines.append(f"{name:10} {run.get('status')}: {run.get('error', run.get('log', ''))}")
            continue
        cells = " ".join(f"{run['phases_s'].get(p, float('nan')):11.2f}" for p in phases)
        lines.append(
            f"{name:10} {cells} {run['total_s']:9.2f} {run['tree_peak_rss_bytes'] / MB:8.0f}"
            f" {run['driver_peak_rss_bytes'] / MB:9.0f} {run['worker_peak_rss_bytes'] / MB:9.0f}"
            f"  {run['load_1m_at_start']:.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--ranks", type=int, default=256)
    parser.add_argument("--vendors", default="gpu,ascend")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="contenders, comma-separated")
    parser.add_argument("--gather-ranks", default="64,128,256", help="rank counts of the gather measurement")
    parser.add_argument("--memory-mb", default="", help="trace sizes (MB) of the task-memory measurement")
    parser.add_argument("--only-memory", action="store_true", help="only the task-memory measurement")
    parser.add_argument("--timeout", type=float, default=1800.0, help="time limit of one contender (s)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every contender, interleaved; medians kept")
    parser.add_argument("--json", type=Path, default=OUTPUT / "cluster.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--cores", help=argparse.SUPPRESS)
    parser.add_argument(
        "--side-by-side", action="store_true",
        help="run local1 and a Ray contender of one CPU at the same time, each on its own core (swapped every round)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args)

    (OUTPUT / "cluster").mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"ranks": args.ranks, "load_at_start": os.getloadavg(), "vendors": {}}
    if not args.only_memory:
        for vendor in args.vendors.split(","):
            dump = ensure_dump(vendor, args.ranks)
            rounds = run_rounds(vendor, dump, args)
            runs = {name: median_run(tries) for name, tries in rounds.items()}
            figures["vendors"][vendor] = {"runs": runs, "rounds": rounds, "verdict": verdict(runs, rounds)}
            print(table(vendor, runs))
            if args.repeat > 1:
                print(spread(rounds))
            print(json.dumps(figures["vendors"][vendor]["verdict"], indent=1))
            written = next((OUTPUT / "cluster").glob(f"{vendor}-{args.ranks}-*.traceview"), None)
            if written is not None:
                harness.log(f"{vendor}: gather at {args.gather_ranks} ranks")
                gather = spawn("gather", args.timeout, store=str(written), gather_ranks=args.gather_ranks)
                figures["vendors"][vendor]["gather"] = gather.get("gather", gather)
                for row in gather.get("gather", []):
                    print(
                        f"gather {row['ranks']:4} ranks: {row['gather_s'] * 1000:7.1f} ms,"
                        f" {row['results_bytes'] / MB:7.2f} MB ({row['per_rank_bytes_mean'] / 1e3:.1f} kB/rank),"
                        f" driver peak {row['driver_peak_rss_gathering_bytes'] / MB:.0f} MB"
                        f" (before {row['driver_rss_before_bytes'] / MB:.0f} MB)"
                    )
    if args.memory_mb:
        figures["task_memory"] = task_memory([float(m) for m in args.memory_mb.split(",")], args.timeout)
    figures["load_at_end"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    harness.log(f"wrote {args.json}")
    return 0


def task_memory(sizes_mb: list[float], timeout: float) -> list[dict]:
    """Build each Kineto trace as benchmarks/ingest.py does, then one Ray ingest task's peak RSS on it."""
    import ingest as ingest_bench  # benchmarks/ingest.py

    rows = []
    for size in sizes_mb:
        trace, _ = ingest_bench.ensure_trace(ingest_bench.GENERATIONS["a"], size / 1000, harness.log)
        store = OUTPUT / "cluster" / f"memory-{size:g}mb.traceview"
        row = spawn("memory", timeout, dump=str(trace), store=str(store))
        rows.append(row)
        if row.get("status") == "ok":
            print(
                f"task on {row['trace_bytes'] / MB:.0f} MB: worker peak {row['worker_peak_rss_bytes'] / MB:.0f} MB"
                f" ({row['worker_over_trace']:.2f}x), target {row['target_bytes'] / MB:.0f} MB,"
                f" request {(row['memory_request_bytes'] or 0) / MB:.0f} MB, {row['ingest_s']:.1f} s,"
                f" a worker after the imports {row['worker_baseline_rss_bytes'] / MB:.0f} MB"
            )
        else:
            print(f"task on {size:g} MB: {row.get('status')}: {row.get('error', row.get('log', ''))}")
    return rows


if __name__ == "__main__":
    sys.exit(main())
