"""Ray as an optional engine (`--ray`, TRACEVIEW_RAY=1, or `runner=` in the API): ingest and analyze as Ray tasks.

Ray is imported here only, and only when asked for (`pip install 'traceview[ray]'`). `RAY_ADDRESS`, Ray's own
convention, names an existing cluster; without it a local Ray is started with `num_cpus` CPUs (default: the
machine's), its dashboard off and its workers' logs kept out of the terminal.

Ingest runs the units (a rank's trace file or dump directory) as tasks of `TASK_CPUS` CPUs: a large unit alone, small
consecutive ones together (`ingest_batches`), so that a task's fixed cost is paid per batch. A task parses each of its
units with the same code as the local engine (`traceview.store.ingest_unit`), its parser's threads set from the CPUs
Ray gave it, and writes their part files into the store's staging directory, which must be on a path every node
sees. The driver writes the manifest last. A task of one unit whose worker dies is retried (`MAX_RETRIES`); a batch
whose worker dies is run again as one task per unit; a unit that still fails comes back as its one-line error, and
the store keeps the others (`IngestResult.failed`).

Analyze runs the packs' queries declared `-- scope: rank`, and builds the per-rank relations the driver's queries
read (`traceview.analysis.rank_work.RANK_RELATIONS`), as tasks over batches of consecutive traces (`batch_count`:
`TASKS_PER_CPU` tasks per CPU of the cluster; a task's fixed cost is paid once per batch, not
per rank), each building the shared relations its queries include once (`run_pack`), as the local engine does.
DuckDB runs over the batch's part files, its threads from the task's CPUs; the rows come back as Arrow and are
concatenated in trace_id order, the order those queries give, so the result equals the local one. The driver runs
every other query meanwhile, and findings once the rows are back (`traceview.analysis.rank_work.SplitRun`); the
cluster view runs the same way.

Memory: each task asks Ray for `TASK_MEMORY_FIXED` + `TASK_MEMORY_RATIO` x its input's size (a trace's JSON,
estimated from a gzip's trailer; a batch's part files), rounded up to `MEMORY_STEP`, at most a node's memory, so
that a node runs no more tasks than it holds. An analysis task's DuckDB may use that request less the fixed part
(`duckdb_memory_bytes`); an ingest task's parser DuckDB `PARSER_DUCKDB_SHARE` of it (`parser_memory_bytes`;
Kineto; the Ascend parser keeps its own budget).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pyarrow as pa

from traceview.errors import UserError
from traceview.parsers.errors import TraceFormatError
from traceview.store import Progress, Unit, failed_outcome, ingest_unit

if TYPE_CHECKING:
    from traceview.analysis.rank_work import Collect, RankRows
    from traceview.packs import Pack

MISSING_EXTRA = "--ray needs the ray extra: pip install 'traceview[ray]'"
TASK_CPUS = 1
"""CPUs each ingest task asks Ray for; its parser uses that many threads."""
MAX_RETRIES = 3
"""How often Ray reruns a task whose worker died (Ray's `max_retries`)."""
ENV_FLAG = "TRACEVIEW_RAY"
PROGRESS_S = 0.25
"""How often the driver collects the finished ingest tasks and reports progress."""
TASK_MEMORY_FIXED = 300 << 20
"""Bytes a task costs whatever its input (Python, traceview's imports, DuckDB, Arrow)."""
TASK_MEMORY_RATIO = 1.5
"""Bytes a task may use per byte of its input, beside the fixed part."""
MEMORY_STEP = 16 << 20
"""The granularity of the memory a task asks Ray for (`scheduled_memory_bytes`)."""
MIN_DUCKDB_MEMORY = 256 << 20
"""The least memory an analysis task's DuckDB is given."""
PARSER_DUCKDB_SHARE = 0.3
"""The share of an ingest task's memory beyond the fixed part that the parser's DuckDB may use: its numpy arrays
and Arrow buffers take about 1.1x the JSON beside it."""
MIN_PARSER_DUCKDB_MEMORY = 128 << 20
"""The least memory the parser's DuckDB is given (below it, a 100 MB trace parsed no smaller at 96 MB, and at 64 MB
15-25 MB smaller but 10-25% slower)."""
INGEST_TASKS_PER_CPU = 8
"""Ingest tasks per CPU of the cluster that small units are batched into (`ingest_batches`): enough for the CPUs to
finish together and for the progress to move, few enough that Ray's cost per task (~6 ms, beside the unit's work)
stays small."""
INGEST_BATCH_BYTES = 16 << 20
"""The most input bytes an ingest task of several units holds; a unit this large or larger is a task of its own."""
SYSTEM_POOL_MIN_BYTES = INGEST_BATCH_BYTES
"""From this input size on (a unit that is a task of its own), an ingest task parses with Arrow on malloc's pool
(`use_task_memory_pool`)."""
TASKS_PER_CPU = 1
"""Rank-query tasks per CPU of the cluster. Each task has a fixed cost whatever its size (its worker's connection,
the shared relations' and queries' planning): on 2 CPUs and 256 synthetic ranks, one task per CPU analysed in
3.9-4.8 s, two per CPU in 5.3-5.9 s (benchmarks/README_cluster.md)."""


def ray_requested(flag: bool = False) -> bool:
    """True when `--ray` was given or TRACEVIEW_RAY is set (other than empty or 0)."""
    return flag or os.environ.get(ENV_FLAG, "") not in ("", "0")


def connect(num_cpus: int | None = None) -> ModuleType:
    """The `ray` module, connected: to RAY_ADDRESS's cluster, or to a local Ray started with `num_cpus` CPUs."""
    try:
        import ray
    except ImportError:
        raise UserError(MISSING_EXTRA) from None
    if ray.is_initialized():
        return ray
    address = os.environ.get("RAY_ADDRESS")
    options: dict = {"log_to_driver": False, "logging_level": logging.ERROR}
    if not address:
        options.update(num_cpus=num_cpus, include_dashboard=False)
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"RAY_ADDRESS={address}" if address else "a local Ray"
        raise UserError(f"{where}: cannot start or reach Ray ({_first_line(exc)})") from exc
    return ray


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def task_cpus() -> int:
    """The CPUs Ray gave the running task (at least 1): the budget for its DuckDB and Arrow threads."""
    import ray

    assigned = ray.get_runtime_context().get_assigned_resources().get("CPU", TASK_CPUS)
    return max(1, round(assigned))


def input_bytes(path: Path) -> int:
    """The size of an input as a parser sees it: a gzip's inflated size (its trailer, at least the file's size),
    a directory's files summed."""
    if path.is_dir():
        return sum(input_bytes(p) for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    size = path.stat().st_size
    if path.suffix != ".gz" or size < 18:
        return size
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        inflated = int.from_bytes(fh.read(4), "little")  # modulo 4 GiB: a larger file reads as smaller
    return max(size, inflated)


def scheduled_memory_bytes(size: int, node_bytes: int | None = None) -> int:
    """`task_memory_bytes` rounded up to `MEMORY_STEP`: tasks of about the same size ask for the same resources, so
    Ray keeps a leased worker for the next one instead of asking the raylet for a worker per task."""
    wanted = task_memory_bytes(size)
    rounded = -(-wanted // MEMORY_STEP) * MEMORY_STEP
    return min(rounded, node_bytes) if node_bytes else rounded


def task_memory_bytes(size: int) -> int:
    """The memory a task over `size` input bytes may use: fixed part + ratio x size."""
    return TASK_MEMORY_FIXED + int(TASK_MEMORY_RATIO * size)


def duckdb_memory_bytes() -> int | None:
    """The memory the running task's DuckDB may use: Ray's `memory` for the task less the fixed part (None when
    the task asked for none)."""
    import ray

    assigned = ray.get_runtime_context().get_assigned_resources().get("memory")
    return max(MIN_DUCKDB_MEMORY, int(assigned) - TASK_MEMORY_FIXED) if assigned else None


def parser_memory_bytes() -> int | None:
    """The memory the running ingest task's parser DuckDB may use: its share of Ray's `memory` for the task beyond
    the fixed part (None when the task asked for none)."""
    import ray

    assigned = ray.get_runtime_context().get_assigned_resources().get("memory")
    if not assigned:
        return None
    return max(MIN_PARSER_DUCKDB_MEMORY, int((assigned - TASK_MEMORY_FIXED) * PARSER_DUCKDB_SHARE))


def _largest_node_bytes(ray: ModuleType) -> int | None:
    sizes = [node.get("Resources", {}).get("memory", 0) for node in ray.nodes() if node.get("Alive")]
    return int(max(sizes)) if sizes and max(sizes) > 0 else None


def _ingest_batch(
    units: list[Unit], sizes: list[int], staging: str, unit_task: Callable[[Unit, str], dict]
) -> list[dict]:
    """Some units, one after the other, in a Ray worker (`unit_task`: `_ingest_task`, or a test's stand-in).

    Arrow allocates from the pool `use_task_memory_pool` picks for each unit's input size (as the driver measured
    it) and hands what is free back to the system once the unit is written (`release_task_memory`)."""
    outcomes = []
    for unit, size in zip(units, sizes, strict=True):
        use_task_memory_pool(size)
        try:
            outcomes.append(unit_task(unit, staging))
        finally:
            release_task_memory()
    return outcomes


def _ingest_task(unit: Unit, staging: str) -> dict:
    """One unit, in a Ray worker; every error comes back as data (its one line), never as a Ray traceback."""
    try:
        with ThreadPoolExecutor(1) as hasher:
            return ingest_unit(unit, Path(staging), hasher, threads=task_cpus(), memory=parser_memory_bytes())
    except (UserError, TraceFormatError) as exc:
        return failed_outcome(unit, str(exc))
    except Exception as exc:  # noqa: BLE001 - one rank's bug must not cost the other ranks; its line is kept
        return failed_outcome(unit, f"internal error ({type(exc).__name__}: {_first_line(exc)})", bug=True)


_PYARROW_POOL = pa.default_memory_pool()
"""pyarrow's own default pool (mimalloc where pyarrow has it), as it was when this module was imported."""


def use_task_memory_pool(size: int) -> None:
    """Make Arrow's default pool malloc's for an input of `SYSTEM_POOL_MIN_BYTES` or more, pyarrow's own (mimalloc)
    for a smaller one.

    mimalloc keeps the memory that the parser's Arrow buffers free (much of it allocated on the write's read-ahead
    thread) until that thread's heap is reused: one ingest task of a 108 MB trace peaked 45-55 MB higher with it.
    On small inputs it is the faster one: 256 ranks of a few kB each took 5% longer on malloc's pool
    (benchmarks/README_cluster.md, "Memory of one Ray ingest task").
    """
    pa.set_memory_pool(pa.system_memory_pool() if size >= SYSTEM_POOL_MIN_BYTES else _PYARROW_POOL)


def release_task_memory() -> None:
    """Hand the memory malloc holds free back to the system (`malloc_trim`, through Arrow's pool), so that a worker
    that waits for its next task does not keep the last one's peak."""
    pa.system_memory_pool().release_unused()


def run_units(
    units: list[Unit],
    staging: Path,
    progress: Progress | None = None,
    num_cpus: int | None = None,
    task_function: Callable[[Unit, str], dict] | None = None,
) -> list[dict]:
    """Ingest the units as Ray tasks (a `traceview.store.UnitRunner`); outcomes in the units' order.

    `task_function` replaces the body run for each unit (`_ingest_task`), for tests that make workers fail.
    """
    ray = connect(num_cpus)
    task = ray.remote(num_cpus=TASK_CPUS)(_ingest_batch)
    body = task_function or _ingest_task
    node = _largest_node_bytes(ray)
    sizes = [_size_or_zero(unit.path) for unit in units]

    def submit(batch: list[int]) -> object:
        # a unit's memory is handed back before the next one's parse, so a batch needs its largest unit's
        return task.options(
            memory=scheduled_memory_bytes(max(sizes[i] for i in batch), node),
            max_retries=MAX_RETRIES if len(batch) == 1 else 0,
        ).remote([units[i] for i in batch], [sizes[i] for i in batch], str(staging), body)

    cpus = int(ray.cluster_resources().get("CPU", 1))
    index = {submit(batch): batch for batch in ingest_batches(sizes, cpus)}
    outcomes: list[dict] = [{} for _ in units]
    pending = list(index)
    finished = 0
    try:
        while pending:
            # every batch done by now, not one at a time: the driver wakes up once per PROGRESS_S, not per batch
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=PROGRESS_S, fetch_local=False)
            for ref in done:
                batch = index.pop(ref)
                try:
                    for i, outcome in zip(batch, ray.get(ref), strict=True):
                        outcomes[i] = outcome
                except ray.exceptions.RayError as exc:  # the worker died (on every try of a single unit)
                    if len(batch) > 1:
                        for i in batch:
                            again = submit([i])
                            index[again] = [i]
                            pending.append(again)
                        continue
                    outcomes[batch[0]] = failed_outcome(units[batch[0]], f"Ray task failed ({_ray_reason(exc)})")
                finished += len(batch)
            if progress and done:
                progress(f"{finished}/{len(units)} ranks done")
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return outcomes


def ingest_batches(sizes: list[int], cpus: int) -> list[list[int]]:
    """The units (by their input sizes, in order) cut into batches of consecutive units, one task each: a batch holds
    at most `INGEST_BATCH_BYTES` and about an equal share of all the input over `INGEST_TASKS_PER_CPU` tasks per CPU;
    a unit larger than that is a batch of its own."""
    weights = [max(1, size) for size in sizes]
    share = -(-sum(weights) // max(1, cpus * INGEST_TASKS_PER_CPU))
    limit = min(INGEST_BATCH_BYTES, share)
    batches: list[list[int]] = []
    held = 0
    for i, weight in enumerate(weights):
        if batches and held + weight <= limit:
            batches[-1].append(i)
            held += weight
        else:
            batches.append([i])
            held = weight
    return batches


def _size_or_zero(path: Path) -> int:
    try:
        return input_bytes(path)
    except OSError:  # the task reports it
        return 0


def _ray_reason(exc: BaseException) -> str:
    """Ray's error in one line: its class and the first line of its message."""
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _rank_task(
    store: str, trace_ids: list[str], pack: Pack, gathered: list[str], overrides: dict, limit_s: float
) -> tuple[list[RankRows], list[RankRows]]:
    """The pack's queries over some traces' part files, in a Ray worker, its shared relations built once as the local
    engine builds them; each query's rows, then each `gathered` relation's rows, as Arrow."""
    from traceview.sandbox import drop_shared, run_pack, sandboxed_connection

    con = sandboxed_connection([Path(store)], trace_ids, threads=task_cpus(), memory=duckdb_memory_bytes())
    try:
        run = run_pack(con, pack, pack.queries, overrides, limit_s)
        queries: list[RankRows] = []
        for result in run.results:
            rows = result.frame.to_arrow() if result.frame is not None and result.error is None else None
            queries.append((rows, result.error, result.seconds))
        built = {result.relation.name: result for result in run.shared}
        relations: list[RankRows] = []
        for name in gathered:
            relation = built[name]
            if relation.error is not None:
                relations.append((None, relation.error, relation.seconds))
            else:
                table = con.sql(f'SELECT * FROM "{relation.relation.table}"').to_arrow_table()
                relations.append((table, None, relation.seconds))
        drop_shared(con, run.shared)
        return queries, relations
    finally:
        con.close()


def submit_rank_work(
    traces: list[tuple[Path, str]],
    pack: Pack,
    gathered: list[str],
    overrides: dict,
    limit_s: float,
    min_batch: int = 1,
    num_cpus: int | None = None,
) -> Collect:
    """Start the pack's queries and its `gathered` relations as Ray tasks over batches of at least `min_batch` of the
    traces (`(store, trace_id)`, in trace_id order) and return at once (a `traceview.analysis.rank_work.RankRunner`);
    the function returned gathers each one's rows in that order, as the local engine orders them. A query or relation
    that failed on a batch fails as a whole."""
    ray = connect(num_cpus)
    task = ray.remote(num_cpus=TASK_CPUS, max_retries=MAX_RETRIES)(_rank_task)
    node = _largest_node_bytes(ray)
    batches = rank_batches(traces, batch_count(int(ray.cluster_resources().get("CPU", 1))), min_batch)
    refs = [
        task.options(memory=scheduled_memory_bytes(_parts_bytes(store, ids), node)).remote(
            str(store), ids, pack, gathered, overrides, limit_s
        )
        for store, ids in batches
    ]

    def collect() -> tuple[list[RankRows], list[RankRows]]:
        per_batch: list[tuple[list[RankRows], list[RankRows]]] = []
        for (_, ids), ref in zip(batches, refs, strict=True):
            try:
                per_batch.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                failed: RankRows = (None, f"trace {ids[0]}: Ray task failed ({_ray_reason(exc)})", 0.0)
                per_batch.append(([failed] * len(pack.queries), [failed] * len(gathered)))
        queries = [_concatenated([batch[0][i] for batch in per_batch]) for i in range(len(pack.queries))]
        relations = [_concatenated([batch[1][i] for batch in per_batch]) for i in range(len(gathered))]
        return queries, relations

    return collect


def _concatenated(outcomes: list[RankRows]) -> RankRows:
    """The batches' rows of one query or relation, in order, or its first error; the seconds added."""
    seconds = sum(outcome[2] for outcome in outcomes)
    error = next((outcome[1] for outcome in outcomes if outcome[1]), None)
    if error is not None:
        return None, error, seconds
    return pa.concat_tables([outcome[0] for outcome in outcomes if outcome[0] is not None]), None, seconds


def batch_count(cpus: int) -> int:
    """How many batches of ranks to cut for a cluster of `cpus` CPUs: `TASKS_PER_CPU` per CPU (each task has a fixed
    cost)."""
    return max(1, cpus * TASKS_PER_CPU)


def rank_batches(traces: list[tuple[Path, str]], tasks: int, min_size: int = 1) -> list[tuple[Path, list[str]]]:
    """The traces cut into about `tasks` batches of consecutive traces of one store each, in order; a last batch of
    a store shorter than `min_size` joins the one before it."""
    size = max(min_size, -(-len(traces) // max(1, tasks)))
    batches: list[tuple[Path, list[str]]] = []
    for store, trace_id in traces:
        if batches and batches[-1][0] == store and len(batches[-1][1]) < size:
            batches[-1][1].append(trace_id)
        else:
            batches.append((store, [trace_id]))
    merged: list[tuple[Path, list[str]]] = []
    for store, ids in batches:
        if merged and merged[-1][0] == store and len(ids) < min_size:
            merged[-1][1].extend(ids)
        else:
            merged.append((store, ids))
    return merged


def _parts_bytes(store: Path, trace_ids: list[str]) -> int:
    """The size of the traces' part files in the store."""
    names = {f"part-{trace_id}.parquet" for trace_id in trace_ids}
    return sum(p.stat().st_size for p in store.glob("*/part-*.parquet") if p.name in names)
