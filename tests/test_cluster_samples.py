"""The cluster samples (sample_traces/cluster_*): they ingest into a multi-rank store, the generator is
deterministic, and truth.json matches what the files say."""

from __future__ import annotations

import gzip
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import store_rows

from traceview.store import ingest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sample_traces.synth.cli import main  # noqa: E402
from sample_traces.synth.cluster import ClusterSpec  # noqa: E402
from sample_traces.synth.cluster_samples import cluster_specs, regenerate_clusters  # noqa: E402
from sample_traces.synth.cluster_writer import generate_cluster  # noqa: E402

SAMPLES = ROOT / "sample_traces"


def _load(path: Path) -> Any:
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def _truth(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name / "truth.json").read_text())


def _inputs(name: str) -> list[Path]:
    truth = _truth(name)
    if truth["vendor"] == "ascend":
        return [SAMPLES / name / d for d in truth["files"]]
    return [SAMPLES / name / f for f in truth["files"]]


@pytest.mark.parametrize("name", ["cluster_gpu", "cluster_ascend"])
def test_cluster_sample_ingests_into_a_multi_rank_store(name: str, tmp_path: Path) -> None:
    truth = _truth(name)
    result = ingest(_inputs(name), tmp_path / "s.traceview")
    assert result.warnings == []
    ranks = store_rows(result.store, "traces", "rank", "ORDER BY rank")
    assert [r[0] for r in ranks] == list(range(truth["world_size"]))
    steps = store_rows(result.store, "slices", "rank, count(*)", "WHERE kind = 'step' GROUP BY rank ORDER BY rank")
    assert steps == [(r, truth["spec"]["steps"]) for r in range(truth["world_size"])]


def test_committed_cluster_samples_are_what_the_generator_writes(tmp_path: Path) -> None:
    written = regenerate_clusters(tmp_path)
    for path in written:
        rel = path.relative_to(tmp_path)
        committed, fresh = (SAMPLES / rel).read_bytes(), path.read_bytes()
        if path.suffix == ".gz":
            committed, fresh = gzip.decompress(committed), gzip.decompress(fresh)
        assert committed == fresh, rel
    assert {p.relative_to(tmp_path).parts[0] for p in written} == set(cluster_specs())


def test_the_generator_is_deterministic_and_the_seed_matters(tmp_path: Path) -> None:
    spec = ClusterSpec(name="c", vendor="gpu", ranks=6, steps=2, seed=5, straggler_rank=4, straggler_steps=(2,))
    a = generate_cluster(spec, tmp_path / "a")
    b = generate_cluster(spec, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    other = generate_cluster(ClusterSpec(**{**spec.to_dict(), "straggler_steps": (2,), "seed": 6}), tmp_path / "c")
    assert a[0].read_bytes() != other[0].read_bytes()


def _kernels(trace: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e.get("cat") == "kernel" and e["name"].startswith(prefix)]


def _ns(trace: dict[str, Any], ts: float) -> int:
    return trace["baseTimeNanoseconds"] + round(ts * 1000)


def test_gpu_straggler_arrives_late_by_the_stated_delay() -> None:
    truth = _truth("cluster_gpu")
    n, late = truth["world_size"], truth["straggler"]["rank"]
    traces = [_load(p) for p in _inputs("cluster_gpu")]
    assert [t["distributedInfo"]["rank"] for t in traces] == list(range(n))
    starts = [[_ns(t, k["ts"]) for k in _kernels(t, "ncclDevKernel_AllReduce")] for t in traces]
    allreduces = [c for c in truth["collectives"] if c["kind"] == "allreduce"]
    assert [c["arrival_ns"] for c in allreduces] == [list(col) for col in zip(*starts, strict=True)]
    for entry in truth["straggler"]["steps"]:
        arrivals = allreduces[entry["step"] - 1]["arrival_ns"]
        lateness = arrivals[late] - statistics.median(a for r, a in enumerate(arrivals) if r != late)
        assert abs(lateness - entry["injected_delay_ns"]) < 0.01 * entry["injected_delay_ns"]
    for step in set(range(1, truth["spec"]["steps"] + 1)) - {e["step"] for e in truth["straggler"]["steps"]}:
        arrivals = allreduces[step - 1]["arrival_ns"]
        assert max(arrivals) - min(arrivals) < 0.01 * truth["spec"]["straggler_delay_ns"]


def test_gpu_collective_args_and_the_degraded_link() -> None:
    truth = _truth("cluster_gpu")
    link = truth["degraded_link"]
    trace = _load(_inputs("cluster_gpu")[link["src"]])
    comms = [e for e in trace["traceEvents"] if e.get("name") == "record_param_comms"]
    first = comms[0]["args"]
    assert {k: first[k] for k in ("Collective name", "Group size", "dtype", "Process Group Name", "Seq")} == {
        "Collective name": "allreduce",
        "Group size": truth["world_size"],
        "dtype": "BFloat16",
        "Process Group Name": "0",
        "Seq": 1,
    }
    sends = [k for k in _kernels(trace, "ncclDevKernel_SendRecv") if k["args"]["Collective name"] == "send"]
    assert {k["args"]["Dst Rank"] for k in sends} == {link["dst"]}
    nbytes = sends[0]["args"]["In msg nelems"] * 2
    # the receiver is there first, so the sender's kernel lasts exactly the transfer
    bandwidth = nbytes / (min(k["dur"] for k in sends) / 1e6)
    assert bandwidth == pytest.approx(link["bandwidth"], rel=1e-3)


def test_ascend_matrix_shows_the_degraded_link_and_the_straggler_waits_least() -> None:
    truth = _truth("cluster_ascend")
    link, late = truth["degraded_link"], truth["straggler"]["rank"]
    group = truth["process_group"]["ascend_group"]
    out = SAMPLES / "cluster_ascend" / f"rank{link['src']}_ascend_pt" / "ASCEND_PROFILER_OUTPUT"
    matrix = _load(out / "communication_matrix.json.gz")
    entry = matrix["step1"]["p2p"][f"send-total@{group}"][link["ascend_link_key"]]
    assert entry["Bandwidth(GB/s)"] == pytest.approx(link["bandwidth"] / 1e9)
    assert entry["Transport Type"] == link["transport"]
    for step in truth["straggler"]["steps"]:
        waits = {}
        for rank in range(truth["world_size"]):
            comm = _load(
                SAMPLES / "cluster_ascend" / f"rank{rank}_ascend_pt/ASCEND_PROFILER_OUTPUT/communication.json.gz"
            )
            ops = comm[f"step{step['step']}"]["collective"]
            (op,) = [v for k, v in ops.items() if k.startswith("hcom_allReduce")]
            waits[rank] = op["Communication Time Info"]["Wait Time(ms)"]
        assert min(waits, key=lambda r: waits[r]) == late
        others = sorted(w for r, w in waits.items() if r != late)
        assert others[0] * 1e6 == pytest.approx(step["lateness_ns"], rel=0.01)


def test_cluster_cli_writes_n_ranks_and_rejects_a_bad_spec(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["cluster", "--ranks", "8", "--vendor", "ascend", "--degraded-link", "7:0", str(tmp_path / "a")]) == 0
    truth = json.loads((tmp_path / "a" / "truth.json").read_text())
    assert truth["files"] == [f"rank{r}_ascend_pt" for r in range(8)]
    assert main(["cluster", "--ranks", "8", "--degraded-link", "3:5", str(tmp_path / "b")]) == 1
    assert capsys.readouterr().err.strip() == "Error: degraded link must be a ring link r -> r+1"


def test_real_gloo_sample_ingests_and_the_slowed_rank_arrives_last_every_step(tmp_path: Path) -> None:
    truth = _truth("real_gloo")
    paths = [SAMPLES / "real_gloo" / f for f in truth["files"]]
    result = ingest(paths, tmp_path / "s.traceview")
    assert result.warnings == []
    assert [r[0] for r in store_rows(result.store, "traces", "rank", "ORDER BY rank")] == list(range(4))
    starts = []
    for path in paths:
        events = _load(path)["traceEvents"]
        starts.append(sorted(e["ts"] for e in events if e.get("name") == "gloo:all_reduce"))
    assert all(len(s) == len(truth["profiler_steps"]) for s in starts)
    for step_starts in zip(*starts, strict=True):
        assert max(range(len(step_starts)), key=lambda r: step_starts[r]) == truth["straggler"]["rank"]
