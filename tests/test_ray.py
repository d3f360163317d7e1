"""Ray as an optional engine: never imported unless asked for; `ingest --ray` writes the local engine's store.

The tests that run Ray share one local Ray (2 CPUs, dashboard off) started by a module fixture. Without the ray
extra they skip, saying why; under CI=true a missing ray stops the run (tests/conftest.py).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fresh_python import fresh_python
from typer.testing import CliRunner

from traceview import ray_engine
from traceview.analysis.report import run_packs
from traceview.cli import app
from traceview.packs import Pack, PackError, find_pack, parse_query
from traceview.parsers.model import TABLES
from traceview.store import Unit, ingest, read_manifest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_traces"
CLUSTERS = ["cluster_gpu", "cluster_ascend"]
runner = CliRunner()
NOT_A_TRACE = gzip.compress(b'{"nodes": [], "schema": "1.0"}')  # JSON, but no traceEvents: not saveable


@pytest.fixture(scope="module")
def local_ray() -> Iterator[object]:
    """One local Ray for the module: 2 CPUs, dashboard off, workers that can import this checkout."""
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'traceview[ray]'")
    os.environ.pop("RAY_ADDRESS", None)
    paths = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": paths}},
    )
    yield ray
    ray.shutdown()


def same_stores(left: Path, right: Path) -> None:
    """Every table of the two stores holds the same part files with the same rows, in the same order."""
    for table in TABLES:
        names = sorted(p.name for p in (left / table).glob("*.parquet"))
        assert names == sorted(p.name for p in (right / table).glob("*.parquet")), table
        for name in names:
            assert pq.read_table(left / table / name).equals(pq.read_table(right / table / name)), f"{table}/{name}"


def rank_files(tmp_path: Path) -> list[Path]:
    """The 4 GPU ranks of the cluster sample, copied (so that a test may damage one)."""
    folder = tmp_path / "dump"
    folder.mkdir()
    return [Path(shutil.copy(p, folder)) for p in sorted((SAMPLES / "cluster_gpu").glob("*rank*.json.gz"))]


# --- without Ray --------------------------------------------------------------------------------------------------


def test_ray_is_not_imported_unless_asked_for() -> None:
    """`import traceview`, the CLI and the engine module leave ray out of sys.modules."""
    code = (
        "import sys, traceview, traceview.cli, traceview.ray_engine, traceview.store, traceview.commands.ingest;"
        " print('ray' in sys.modules)"
    )
    assert fresh_python(code) == "False"


def test_ray_missing_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--ray without the extra installed: exit 2 and the install line, nothing written."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    trace = rank_files(tmp_path)[0]
    result = runner.invoke(app, ["ingest", str(trace), "--ray", "-o", str(tmp_path / "s.traceview")])
    assert result.exit_code == 2
    assert result.stderr == "Error: --ray needs the ray extra: pip install 'traceview[ray]'\n"
    assert not (tmp_path / "s.traceview").exists()


def test_traceview_ray_env_asks_for_ray(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """TRACEVIEW_RAY=1 is --ray."""
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("TRACEVIEW_RAY", "1")
    trace = rank_files(tmp_path)[0]
    result = runner.invoke(app, ["ingest", str(trace), "-o", str(tmp_path / "s.traceview")])
    assert (result.exit_code, result.stderr) == (2, f"Error: {ray_engine.MISSING_EXTRA}\n")


# --- on a local Ray -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", CLUSTERS)
def test_ingest_on_ray_writes_the_local_store(local_ray: object, sample: str, tmp_path: Path) -> None:
    """`ingest --ray` (one task per rank) writes the same part files, row for row, and the same manifest entries."""
    local = ingest([SAMPLES / sample], tmp_path / "local.traceview")
    result = runner.invoke(app, ["ingest", str(SAMPLES / sample), "--ray", "-o", str(tmp_path / "ray.traceview")])
    assert result.exit_code == 0, result.output
    same_stores(local.store, tmp_path / "ray.traceview")
    on_ray = ingest([SAMPLES / sample], tmp_path / "ray.traceview")
    assert on_ray.reused
    assert len(on_ray.manifest["inputs"]) == 4
    assert on_ray.manifest["inputs"] == local.manifest["inputs"]
    assert on_ray.manifest["skipped"] == local.manifest["skipped"]


def test_a_corrupt_rank_fails_alone_and_a_rerun_redoes_only_it(local_ray: object, tmp_path: Path) -> None:
    """One damaged rank among good ones: its one-line error, the others ingested, exit 2 with the count;
    once the file is repaired, a rerun parses only that rank and keeps the others' part files."""
    files = rank_files(tmp_path)
    good = files[3].read_bytes()
    files[3].write_bytes(NOT_A_TRACE)
    out = tmp_path / "s.traceview"
    result = runner.invoke(app, ["ingest", *map(str, files), "--ray", "-o", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[-1] == (
        f"Error: {out}: 1 of 4 ranks failed (see the warnings); the store holds the others,"
        " and a rerun ingests only the failed ones"
    )
    failed = [line for line in lines if ": failed: " in line]
    assert len(failed) == 1 and failed[0].startswith(f"Warning: {files[3].resolve()}: failed: ")
    assert "Traceback" not in result.output
    assert result.stdout.startswith(f"wrote {out} (3 traces, ")
    kept = {table: os.stat(next((out / table).glob("*.parquet"))).st_ino for table in TABLES}
    before = {p.name: p.stat().st_ino for p in (out / "slices").glob("*.parquet")}

    files[3].write_bytes(good)
    result = runner.invoke(app, ["ingest", *map(str, files), "--ray", "-o", str(out)])
    assert result.exit_code == 0, result.output
    after = {p.name: p.stat().st_ino for p in (out / "slices").glob("*.parquet")}
    assert len(after) == 4
    assert {name: after[name] for name in before} == before  # the 3 good ranks were not written again
    assert kept  # every table had part files
    same_stores(ingest(files, tmp_path / "local.traceview").store, out)


@pytest.mark.parametrize("tasks_per_cpu", [8, 1], ids=["one-rank-tasks", "batches"])
def test_a_killed_worker_is_retried_and_the_store_is_the_same(
    local_ray: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tasks_per_cpu: int
) -> None:
    """A worker that dies (os._exit) on its first try of one rank: Ray retries a task of one rank, a batch runs
    again one rank per task; the store equals the local one."""
    monkeypatch.setattr(ray_engine, "INGEST_TASKS_PER_CPU", tasks_per_cpu)
    files = rank_files(tmp_path)
    sizes = [ray_engine.input_bytes(f) for f in files]
    assert len(ray_engine.ingest_batches(sizes, 2)) == (2 if tasks_per_cpu == 1 else 4)
    marker = tmp_path / "died-once"

    def dies_once(unit: Unit, staging: str) -> dict:
        if unit.path.name.endswith("rank2.pt.trace.json.gz") and not marker.exists():
            marker.write_text("")
            os._exit(1)
        return ray_engine._ingest_task(unit, staging)

    out = tmp_path / "ray.traceview"
    result = ingest(files, out, runner=partial(ray_engine.run_units, task_function=dies_once))
    assert marker.exists()
    assert result.failed == 0 and len(result.manifest["inputs"]) == 4
    same_stores(ingest(files, tmp_path / "local.traceview").store, out)


def test_a_rank_that_always_kills_its_worker_fails_alone(
    local_ray: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rank whose worker dies on every try, in a batch: its batch-mate is ingested, it fails with Ray's line."""
    monkeypatch.setattr(ray_engine, "INGEST_TASKS_PER_CPU", 1)
    monkeypatch.setattr(ray_engine, "MAX_RETRIES", 1)
    files = rank_files(tmp_path)

    def always_dies(unit: Unit, staging: str) -> dict:
        if unit.path.name.endswith("rank2.pt.trace.json.gz"):
            os._exit(1)
        return ray_engine._ingest_task(unit, staging)

    result = ingest(files, tmp_path / "ray.traceview", runner=partial(ray_engine.run_units, task_function=always_dies))
    assert len(result.manifest["inputs"]) == 3
    (failed,) = result.manifest["failed"]
    assert failed["path"] == str(files[2].resolve()) and failed["error"].startswith("Ray task failed (")


def test_small_ranks_share_ingest_tasks_and_large_ones_do_not() -> None:
    """Consecutive units in order; a batch holds at most an equal share of the input over INGEST_TASKS_PER_CPU tasks
    per CPU and INGEST_BATCH_BYTES; a unit over that is alone; an unknown size (0) counts as 1 byte."""
    per_cpu, most = ray_engine.INGEST_TASKS_PER_CPU, ray_engine.INGEST_BATCH_BYTES
    batches = ray_engine.ingest_batches([10_000] * 256, 1)
    assert len(batches) == per_cpu and [i for batch in batches for i in batch] == list(range(256))
    assert len(ray_engine.ingest_batches([10_000] * 256, 2)) == 2 * per_cpu
    pairs = [[i, i + 1] for i in range(0, 40, 2)]
    large = ray_engine.ingest_batches([most // 2] * 40 + [3 * most] + [most // 2] * 40, 1)
    assert large == pairs + [[40]] + [[i + 41 for i in pair] for pair in pairs]
    assert ray_engine.ingest_batches([0] * 4, 1) == [[0], [1], [2], [3]]
    assert ray_engine.ingest_batches([], 4) == []


def test_gzip_damage_message_is_the_parsers(local_ray: object, tmp_path: Path) -> None:
    """The failed rank's line is the parser's TraceFormatError text, as the local engine reports it."""
    files = rank_files(tmp_path)
    files[0].write_bytes(NOT_A_TRACE)
    local = runner.invoke(app, ["ingest", str(files[0]), "-o", str(tmp_path / "local.traceview")])
    on_ray = runner.invoke(app, ["ingest", *map(str, files), "--ray", "-o", str(tmp_path / "ray.traceview")])
    problem = local.stderr.removeprefix(f"Error: {files[0]}: ").strip()
    assert f"Warning: {files[0].resolve()}: failed: {problem}" in on_ray.stderr.splitlines()


@pytest.mark.parametrize(("sample", "tasks_per_cpu"), [(CLUSTERS[0], 4), (CLUSTERS[1], 4), (CLUSTERS[0], 1)])
def test_analyze_on_ray_gives_the_local_results(
    local_ray: object, sample: str, tasks_per_cpu: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`analyze --json` with and without --ray: identical results, findings and errors (rank queries ran on Ray,
    one rank per task, or 2 ranks per task with 1 task per CPU)."""
    monkeypatch.setattr(ray_engine, "TASKS_PER_CPU", tasks_per_cpu)
    store = ingest([SAMPLES / sample], tmp_path / "s.traceview").store
    reports = {}
    for name, extra in (("local", []), ("ray", ["--ray"])):
        result = runner.invoke(app, ["analyze", str(store), "--json", str(tmp_path / f"{name}.json"), *extra])
        assert result.exit_code == 0, result.output
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert reports["ray"]["results"] == reports["local"]["results"]
    assert reports["ray"]["findings"] == reports["local"]["findings"]
    assert reports["ray"]["errors"] == reports["local"]["errors"] == []


def test_a_command_attaches_to_a_running_ray(local_ray: object, tmp_path: Path) -> None:
    """`RAY_ADDRESS=auto traceview analyze --ray`, in a process of its own, runs on the Ray already running (this
    module's, as after `ray start --head`) and gives the local results."""
    import subprocess

    store = ingest([SAMPLES / "cluster_gpu"], tmp_path / "s.traceview").store
    local = tmp_path / "local.json"
    assert runner.invoke(app, ["analyze", str(store), "--json", str(local)]).exit_code == 0
    env = {
        **os.environ,
        "RAY_ADDRESS": "auto",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    attached = tmp_path / "attached.json"
    command = [sys.executable, "-m", "traceview", "analyze", str(store), "--ray", "--json", str(attached)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    reports = {name: json.loads(path.read_text()) for name, path in (("local", local), ("attached", attached))}
    for part in ("results", "findings", "errors"):
        assert reports["attached"][part] == reports["local"][part], part


def test_analyze_on_ray_sweeps_the_ranks_on_ray(local_ray: object, tmp_path: Path) -> None:
    """`analyze --ray` builds the per-rank sweep (busy_rows) on the tasks only; the driver reads the gathered
    rank_busy rows, and the cluster queries' results equal the local ones."""
    from traceview.analysis.rank_work import RANK_RELATIONS

    store = ingest([SAMPLES / "cluster_gpu"], tmp_path / "s.traceview").store
    local = run_packs([store])
    on_ray = run_packs([store], rank_runner=partial(ray_engine.submit_rank_work, num_cpus=2))
    assert set(RANK_RELATIONS) <= {s.relation.name for s in local.shared}
    assert {s.relation.name for s in on_ray.shared} & set(RANK_RELATIONS) == {"rank_busy"}
    for mine, theirs in zip(on_ray.results, local.results, strict=True):
        assert mine.query is theirs.query or mine.query.name == theirs.query.name
        assert mine.error is None and mine.frame is not None and theirs.frame is not None
        assert mine.frame.equals(theirs.frame), mine.query.name


@pytest.mark.parametrize("sample", CLUSTERS)
def test_cluster_on_ray_gives_the_local_json(
    local_ray: object, sample: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cluster --json` with and without --ray: the same document; the per-rank sweep ran on Ray in batches of two
    ranks (the least: a batch of one rank has no cluster to sweep for)."""
    store = ingest([SAMPLES / sample], tmp_path / "s.traceview").store
    calls: list[int] = []
    monkeypatch.setattr(ray_engine, "_parts_bytes", lambda store, ids: calls.append(len(ids)) or 0)
    texts = {}
    for name, extra in (("local", []), ("ray", ["--ray"])):
        result = runner.invoke(app, ["cluster", str(store), "--json", str(tmp_path / f"{name}.json"), *extra])
        assert result.exit_code == 0, result.output
        texts[name] = (tmp_path / f"{name}.json").read_text()
    assert calls == [2, 2]
    assert json.loads(texts["ray"])["overlap"]
    assert texts["ray"] == texts["local"]


def test_rank_batches_keep_the_order_and_one_store_each() -> None:
    """Consecutive traces, about `tasks` batches, a new batch where the store changes."""
    a, b = Path("a"), Path("b")
    traces = [(a, "t0"), (a, "t1"), (a, "t2"), (b, "t3"), (a, "t4")]
    assert ray_engine.rank_batches(traces, 2) == [(a, ["t0", "t1", "t2"]), (b, ["t3"]), (a, ["t4"])]
    assert ray_engine.rank_batches(traces[:2], 8) == [(a, ["t0"]), (a, ["t1"])]
    assert ray_engine.rank_batches(traces[:3], 8, min_size=2) == [(a, ["t0", "t1", "t2"])]


def test_rank_batches_per_cpu() -> None:
    """TASKS_PER_CPU batches per CPU (one on one CPU), at least one."""
    assert ray_engine.batch_count(1) == ray_engine.TASKS_PER_CPU == 1
    assert ray_engine.batch_count(2) == 2 * ray_engine.TASKS_PER_CPU
    assert ray_engine.batch_count(0) == 1


def test_tasks_of_about_one_size_ask_for_the_same_memory() -> None:
    """The memory a task asks Ray for is rounded up to MEMORY_STEP (one scheduling class for similar tasks), at most
    a node's memory."""
    step = ray_engine.MEMORY_STEP
    asked = {ray_engine.scheduled_memory_bytes(size) for size in (0, 10_000, 1_000_000)}
    assert asked == {-(-ray_engine.task_memory_bytes(1_000_000) // step) * step}
    assert ray_engine.scheduled_memory_bytes(10**12, node_bytes=8 << 30) == 8 << 30


def test_task_memory_follows_the_input_size(tmp_path: Path) -> None:
    """A task may use 300 MB + 1.5 x its input (a gzip's inflated size); what it asks Ray for is at most a node's
    memory (test_tasks_of_about_one_size_ask_for_the_same_memory)."""
    raw = b"x" * 1_000_000
    (tmp_path / "t.json.gz").write_bytes(gzip.compress(raw))
    assert ray_engine.input_bytes(tmp_path / "t.json.gz") == len(raw)
    assert ray_engine.input_bytes(tmp_path) == len(raw)
    assert ray_engine.task_memory_bytes(len(raw)) == (300 << 20) + 1_500_000


def test_a_task_gives_its_duckdb_the_memory_ray_gave_it(local_ray: object, tmp_path: Path) -> None:
    """Ray's `memory` for the task, less the fixed part, is its DuckDB's memory_limit."""
    ray = local_ray
    store = ingest([SAMPLES / "cluster_gpu"], tmp_path / "s.traceview").store

    def limit() -> str:
        from traceview.sandbox import sandboxed_connection

        memory = ray_engine.duckdb_memory_bytes()
        con = sandboxed_connection([store], threads=1, memory=memory)
        (setting,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
        return f"{memory} {setting}"

    probe = ray.remote(num_cpus=1, memory=812 << 20)(limit)  # type: ignore[attr-defined]
    assert ray.get(probe.remote()) == f"{512 << 20} 512.0 MiB"  # type: ignore[attr-defined]


def test_an_ingest_task_gives_its_parser_its_share_of_the_memory(local_ray: object) -> None:
    """The parser's DuckDB gets PARSER_DUCKDB_SHARE of the task's memory beyond the fixed part, at least 128 MB."""
    ray = local_ray
    probe = ray.remote(num_cpus=1)(ray_engine.parser_memory_bytes)  # type: ignore[attr-defined]
    asked = [probe.options(memory=(300 + m) << 20).remote() for m in (1000, 100)]
    assert ray.get(asked) == [300 << 20, 128 << 20]  # type: ignore[attr-defined]


def test_the_parser_takes_the_memory_it_is_given(tmp_path: Path) -> None:
    """`memory` reaches the Kineto parser's DuckDB as its memory_limit."""
    import duckdb

    from traceview import parsers

    seen: list[object] = []
    real = duckdb.connect

    def spy(database: str = ":memory:", config: dict | None = None, **kwargs: object) -> object:
        seen.append((config or {}).get("memory_limit"))
        return real(database, config=config or {}, **kwargs)

    trace = rank_files(tmp_path)[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(duckdb, "connect", spy)
        parsers.parse(trace, parsers.KINETO, tmp_path, "t0", memory=200 << 20).close()
    assert "200MB" in seen


def test_rank_queries_run_once_per_trace(tmp_path: Path) -> None:
    """run_packs hands exactly the `scope: rank` queries to the rank runner, with every trace in trace_id order, and
    asks it for the per-rank relation the cluster queries read (built per batch of two ranks or more)."""
    store = ingest([SAMPLES / "cluster_gpu"], tmp_path / "s.traceview").store
    calls: list[tuple[list, list[str], list[str], list[str], int]] = []

    def fails_everything(traces: list, pack: Pack, gathered: list[str], overrides: dict, limit_s: float, least: int):
        calls.append((traces, [q.name for q in pack.queries], [r.name for r in pack.shared], gathered, least))
        return lambda: ([(None, "on purpose", 0.0)] * len(pack.queries), [(None, "on purpose", 0.0)] * len(gathered))

    report = run_packs([store], rank_runner=fails_everything)
    ((traces, names, relations, gathered, least),) = calls
    assert [trace_id for _, trace_id in traces] == sorted(e["trace_id"] for e in read_manifest(store)["inputs"])
    assert len(traces) == 4
    rank_scoped = [q.name for q in find_pack("core").queries if q.scope == "rank"]
    assert names == rank_scoped and "hotspots" in names
    assert gathered == ["rank_busy"] and {"busy_rows", "rank_busy"} <= set(relations) and least == 2
    assert {r.query.name for r in report.results if r.error == "on purpose"} == set(rank_scoped)
    # the relation failed on the tasks: the driver built it, and the queries that read it have their results
    assert {"busy_rows", "rank_busy"} <= {s.relation.name for s in report.shared}
    assert all(r.frame is not None for r in report.results if r.query.name in ("slow_rank", "comm_overlap"))


def test_scope_header(tmp_path: Path) -> None:
    """`-- scope: rank|cluster`; a query without it is `cluster`; another value is a file:line error."""
    path = tmp_path / "q.sql"
    path.write_text("-- title: q\nSELECT 1\n")
    assert parse_query(path).scope == "cluster"
    path.write_text("-- title: q\n-- scope: rank\nSELECT 1\n")
    assert parse_query(path).scope == "rank"
    path.write_text("-- title: q\n-- scope: node\nSELECT 1\n")
    with pytest.raises(PackError) as error:
        parse_query(path)
    assert str(error.value) == f"{path}:2: scope: 'node' is not one of rank, cluster"


def test_a_rank_that_hits_a_bug_fails_alone_with_exit_3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A worker's internal error (not the rank's input) is kept as that rank's one line, marked as a bug, so the
    ingest ends with exit code 3 (a bug in traceview), not 2 (bad input)."""
    from traceview.commands import ingest as ingest_cmd
    from traceview.errors import EXIT_BUG, EXIT_USER_ERROR
    from traceview.store import IngestResult

    def broken(*args: object, **kwargs: object) -> dict:
        raise KeyError("oops")

    monkeypatch.setattr(ray_engine, "ingest_unit", broken)
    monkeypatch.setattr(ray_engine, "task_cpus", lambda: 1)  # what Ray would tell a task: no Ray needed here
    monkeypatch.setattr(ray_engine, "parser_memory_bytes", lambda: None)
    unit = Unit(path=rank_files(tmp_path)[0], fmt="kineto", explicit=True, trace_id="t0")
    outcome = ray_engine._ingest_task(unit, str(tmp_path))
    assert outcome["failed"]["error"] == "internal error (KeyError: 'oops')" and outcome["failed"]["bug"] is True
    manifest = {"inputs": [{}, {}, {}], "failed": [outcome["failed"]]}
    result = IngestResult(tmp_path / "s.traceview", False, manifest)
    assert ingest_cmd.failure(result) == (
        f"{tmp_path / 's.traceview'}: 1 of 4 ranks failed (1 of them on an internal error: a bug in traceview)"
        " (see the warnings); the store holds the others, and a rerun ingests only the failed ones"
    )
    assert ingest_cmd.failure_exit_code(result) == EXIT_BUG
    input_failure = {**outcome["failed"], "bug": False}
    assert ingest_cmd.failure_exit_code(IngestResult(result.store, False, {**manifest, "failed": [input_failure]})) == (
        EXIT_USER_ERROR
    )
