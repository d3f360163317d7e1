"""The cluster analyses (collective_skew, slow_rank, comm_bandwidth, slow_link, comm_overlap) and `traceview
cluster` against the known truth of the cluster samples: the injected straggler and its delay, the degraded link,
the bus bandwidth; the real gloo sample's slowed rank; links never summed twice; overlap as busy_breakdown."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from traceview.analysis.cluster import CLUSTER_QUERIES, ClusterResult, run_cluster
from traceview.analysis.report import run_packs
from traceview.cli import app
from traceview.devices import LINKS_BY_NAME, SPECS
from traceview.packs import find_pack
from traceview.parsers.model import TABLES
from traceview.parsers.parsed import empty_table
from traceview.store import ingest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sample_traces.synth.cluster import ClusterSpec  # noqa: E402
from sample_traces.synth.cluster_writer import generate_cluster  # noqa: E402

SAMPLES = ROOT / "sample_traces"
runner = CliRunner()


def _truth(path: Path) -> dict[str, Any]:
    return json.loads((path / "truth.json").read_text())


def _inputs(sample: Path) -> list[Path]:
    return [sample / name for name in _truth(sample)["files"]]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled cluster samples and an 8-rank generated one (straggler 5, degraded link 3 -> 4), ingested."""
    base = tmp_path_factory.mktemp("cluster")
    spec = ClusterSpec(name="c8", vendor="ascend", ranks=8, steps=3, seed=11, straggler_rank=5,
                       straggler_steps=(1, 3), straggler_delay_ns=2_000_000, degraded_src=3,
                       degraded_dst=4)  # fmt: skip
    generate_cluster(spec, base / "c8_src")
    dirs = {"gpu": SAMPLES / "cluster_gpu", "ascend": SAMPLES / "cluster_ascend", "gloo": SAMPLES / "real_gloo",
            "c8": base / "c8_src"}  # fmt: skip
    return {name: ingest(_inputs(path), base / f"{name}.tv").store for name, path in dirs.items()}


@pytest.fixture(scope="module")
def views(stores: dict[str, Path]) -> dict[str, ClusterResult]:
    return {name: run_cluster([store]) for name, store in stores.items()}


def _truth_of(name: str, stores: dict[str, Path]) -> dict[str, Any]:
    if name == "c8":
        return _truth(stores["c8"].parent / "c8_src")
    return _truth(SAMPLES / {"gpu": "cluster_gpu", "ascend": "cluster_ascend"}[name])


@pytest.mark.parametrize("name", ["gpu", "ascend", "c8"])
def test_straggler_and_its_delay_recovered(name: str, views: dict[str, ClusterResult], stores: dict[str, Path]) -> None:
    truth = _truth_of(name, stores)["straggler"]
    stragglers = views[name].stragglers
    assert sorted(s["step"] for s in stragglers) == [s["step"] for s in truth["steps"]]
    assert {s["last_rank"] for s in stragglers} == {truth["rank"]}
    assert {s["op"] for s in stragglers} == {"all_reduce"}
    by_step = {s["step"]: s for s in stragglers}
    for step in truth["steps"]:
        lateness = by_step[step["step"]]["lateness_ns"]
        assert lateness == pytest.approx(step["lateness_ns"], rel=0.01)
        assert lateness == pytest.approx(step["injected_delay_ns"], rel=0.01)


@pytest.mark.parametrize("name", ["gpu", "ascend", "c8"])
def test_straggler_is_the_slow_rank_and_host_makes_it_slow(
    name: str, views: dict[str, ClusterResult], stores: dict[str, Path]
) -> None:
    slow = views[name].slow_ranks
    assert [(r["rank"], r["cause"]) for r in slow] == [(_truth_of(name, stores)["straggler"]["rank"], "host")]
    assert slow[0]["times_last"] == len(_truth_of(name, stores)["straggler"]["steps"])


@pytest.mark.parametrize("name", ["gpu", "ascend", "c8"])
def test_degraded_link_recovered(name: str, views: dict[str, ClusterResult], stores: dict[str, Path]) -> None:
    truth = _truth_of(name, stores)["degraded_link"]
    slow = [link for link in views[name].links if link["slow"]]
    assert slow and {(link["src_rank"], link["dst_rank"]) for link in slow} == {(truth["src"], truth["dst"])}
    for link in slow:
        assert link["bandwidth_gbps"] == pytest.approx(truth["bandwidth"] / 1e9, rel=0.01)
        assert link["median_gbps"] == pytest.approx(truth["nominal_bandwidth"] / 1e9, rel=0.01)


def test_real_gloo_slowed_rank_is_the_straggler_of_every_step(views: dict[str, ClusterResult]) -> None:
    truth = _truth(SAMPLES / "real_gloo")
    found = [f for f in views["gloo"].findings if f["query"] == "collective_skew"]
    steps = [int(step.split("#")[1]) for step in truth["profiler_steps"]]
    assert [f["row"]["step"] for f in found] == steps
    for finding in found:
        assert finding["message"].startswith(f"step {finding['row']['step']}: rank {truth['straggler']['rank']}"
                                             " arrived last at all_reduce #")  # fmt: skip
    assert [r["rank"] for r in views["gloo"].slow_ranks] == [truth["straggler"]["rank"]]


def test_findings_text(views: dict[str, ClusterResult]) -> None:
    messages = [f"{f['severity']} {f['query']}: {f['message']}" for f in views["gpu"].findings]
    kernel = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
    assert messages == [
        f"warning collective_skew: step 2: rank 2 arrived last at all_reduce #2 ({kernel}), 3.00 ms after the"
        " median of the other 3 ranks, who waited 9.00 ms in all",
        f"warning collective_skew: step 3: rank 2 arrived last at all_reduce #3 ({kernel}), 3.00 ms after the"
        " median of the other 3 ranks, who waited 9.01 ms in all",
        "warning comm_bandwidth: all_reduce of 64 MiB to 128 MiB: bus bandwidth 20.0 GB/s, 4.4% of the 450 GB/s"
        " interconnect peak (device table: NVLink 4 (H100/H200)) over 4 calls",
        "warning comm_bandwidth: send_recv of 16 MiB to 32 MiB: bus bandwidth 32.0 GB/s, 7.1% of the 450 GB/s"
        " interconnect peak (device table: NVLink 4 (H100/H200)) over 8 calls",
        "warning slow_link: link 1 -> 2 (unknown, send_recv, group 0): 20.0 GB/s, 25% of the median unknown link"
        " (80.0 GB/s, 4 links)",
        "warning slow_rank: rank 2 is slow: 19.0 ms of its own work per step (waits for other ranks excluded),"
        " 8.6% above the median rank, compute +0.0%; host makes it slow; it arrived last at 2 collectives",
    ]


@pytest.mark.parametrize("name", ["gpu", "ascend"])
def test_allreduce_bus_bandwidth_matches_truth(name: str, views: dict[str, ClusterResult]) -> None:
    truth = _truth(SAMPLES / f"cluster_{name}")
    (row,) = [r for r in views[name].results["comm_bandwidth"] if r["op"] == "all_reduce"]
    assert row["busbw_bytes_per_s"] == pytest.approx(truth["allreduce_bus_bandwidth"], rel=1e-3)
    assert row["busbw_bytes_per_s"] == pytest.approx(row["algbw_bytes_per_s"] * 2 * 3 / 4)  # 2(n-1)/n, n = 4


def _run_sql(query_name: str, tables: dict[str, list[dict]], overrides: dict[str, object] | None = None) -> list[dict]:
    """Run one core query over hand-made tables (the model's shape; trace_devices with its link columns)."""
    con = duckdb.connect()
    for table, schema in TABLES.items():
        con.from_arrow(empty_table(schema)).create(table)
        for row in tables.get(table, []):
            columns = ", ".join(f'"{k}"' for k in row)
            con.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
    con.execute("CREATE VIEW device_tasks AS SELECT * FROM slices WHERE device_type <> 'cpu'")
    links = tables.get("trace_devices", [{"trace_id": "t0", "link_bw_bytes_per_s": None, "link_name": None}])
    con.execute("CREATE TABLE trace_devices (trace_id VARCHAR, link_bw_bytes_per_s DOUBLE, link_name VARCHAR)")
    for row in links:
        con.execute("INSERT INTO trace_devices VALUES (?, ?, ?)", [row["trace_id"], row["link_bw_bytes_per_s"],
                                                                    row["link_name"]])  # fmt: skip
    query = find_pack("core").query(query_name)
    cursor = con.execute(query.sql, query.bind(overrides))
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _collective(rank: int, op: str, seq: int, ts: int, dur: int, size: int, n: int) -> dict:
    return {"trace_id": f"t{rank}", "rank": rank, "op": op, "group": "g", "group_size": n, "seq": seq, "step": 1,
            "name": op, "ts_ns": ts, "dur_ns": dur, "bytes": size}  # fmt: skip


@pytest.mark.parametrize(
    ("op", "factor"),
    [("all_reduce", 2 * 7 / 8), ("all_gather", 7 / 8), ("reduce_scatter", 7 / 8), ("all_to_all", 7 / 8),
     ("broadcast", 1.0)],
)  # fmt: skip
def test_bus_bandwidth_factors(op: str, factor: float) -> None:
    n, size = 8, 1 << 26
    # rank 7 arrives 5 us late; the transfer is from its arrival to the last end: 1 ms
    rows = [_collective(r, op, 0, 1_000 + (5_000 if r == 7 else 0), 1_000_000 + (0 if r == 7 else 5_000), size, n)
            for r in range(n)]  # fmt: skip
    devices = [{"trace_id": "t0", "link_bw_bytes_per_s": 450e9, "link_name": "NVLink 4 (H100/H200)"}]
    (row,) = _run_sql("comm_bandwidth", {"collectives": rows, "trace_devices": devices})
    assert row["transfer_ns"] == 1_000_000
    assert row["algbw_bytes_per_s"] == pytest.approx(size / 1e-3)
    assert row["busbw_bytes_per_s"] == pytest.approx(size / 1e-3 * factor)
    assert row["utilization_pct"] == pytest.approx(100 * size / 1e-3 * factor / 450e9)
    (override,) = _run_sql("comm_bandwidth", {"collectives": rows, "trace_devices": devices}, {"peak_link_gbps": 100.0})
    assert (override["peak_bytes_per_s"], override["peak_source"]) == (100e9, "param")


def test_small_messages_far_under_peak_are_latency_bound() -> None:
    rows = [_collective(r, "all_reduce", s, 1_000 + s * 100_000, 20_000, 4096, 4) for r in range(4) for s in range(3)]
    devices = [{"trace_id": "t0", "link_bw_bytes_per_s": 450e9, "link_name": "NVLink 4 (H100/H200)"}]
    (row,) = _run_sql("comm_bandwidth", {"collectives": rows, "trace_devices": devices})
    assert (row["bucket_label"], row["calls"], row["latency_bound"], row["far_below_peak"]) == (
        "4 KiB to 8 KiB", 3, True, False)  # fmt: skip


def _link(recorder: int, step: int, src: int, dst: int, size: int, transit: int) -> dict:
    return {"trace_id": f"t{recorder}", "rank": recorder, "step": step, "group": "g", "op": "all_reduce",
            "op_type": "allreduce", "src_rank": src, "dst_rank": dst, "transport": "HCCS", "bytes": size,
            "transit_ns": transit}  # fmt: skip


def test_links_are_totals_over_steps_and_counted_once() -> None:
    rows = []
    for step in (1, 2):
        for src in range(4):
            dst = (src + 1) % 4
            transit = 4_000_000 if (src, dst) == (1, 2) else 1_000_000
            rows.append(_link(src, step, src, dst, 80_000_000, transit))
            rows.append(_link(dst, step, src, dst, 80_000_000, transit))  # the receiver records it too
    links = {(r["src_rank"], r["dst_rank"]): r for r in _run_sql("slow_link", {"comm_links": rows})}
    assert sorted(links) == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert links[(0, 1)]["bytes"] == 160_000_000 and links[(0, 1)]["transit_ns"] == 2_000_000
    assert links[(0, 1)]["bandwidth_gbps"] == pytest.approx(80.0)
    assert links[(1, 2)]["bandwidth_gbps"] == pytest.approx(20.0)
    assert [k for k, r in links.items() if r["slow"]] == [(1, 2)]


@pytest.mark.parametrize("name", ["gpu", "ascend"])
def test_overlap_consistent_with_busy_breakdown(name: str, stores: dict[str, Path]) -> None:
    """Per rank, comm_overlap's steps add up to busy_breakdown's whole-device row (no task spans two steps here)."""
    report = run_packs([stores[name]])
    overlap: dict[int, list[int]] = {}
    for r in report.result("comm_overlap").frame.to_dicts():
        sums = overlap.setdefault(r["rank"], [0, 0, 0])
        for i, column in enumerate(("comm_ns", "hidden_ns", "exposed_ns")):
            sums[i] += r[column]
    busy = {
        r["rank"]: [r["comm_ns"], r["overlapped_ns"], r["comm_not_overlapped_ns"]]
        for r in report.result("busy_breakdown").frame.to_dicts()
        if r["scope"] == "device"
    }
    assert busy == overlap and len(busy) == 4
    assert all(hidden + exposed == comm for comm, hidden, exposed in busy.values())


@pytest.mark.parametrize("name", ["gpu", "ascend"])
def test_overlap_rows_are_busy_breakdowns_step_rows(name: str, stores: dict[str, Path]) -> None:
    """Row for row: a rank's step in comm_overlap is busy_breakdown's step window (one device per rank here)."""
    report = run_packs([stores[name]])
    overlap = {
        (r["rank"], r["step"]): (r["comm_ns"], r["hidden_ns"], r["exposed_ns"])
        for r in report.result("comm_overlap").frame.to_dicts()
    }
    busy = {
        (r["rank"], r["step"]): (r["comm_ns"], r["overlapped_ns"], r["comm_not_overlapped_ns"])
        for r in report.result("busy_breakdown").frame.to_dicts()
        if r["scope"] != "device" and r["comm_ns"] > 0
    }
    assert overlap == busy and len(overlap) >= 8


def test_analyze_runs_the_cluster_queries(stores: dict[str, Path]) -> None:
    report = run_packs([stores["ascend"]])
    assert all(report.result(name) is not None and report.result(name).error is None for name in CLUSTER_QUERIES)
    assert [f.row["last_rank"] for f in report.findings if f.query == "collective_skew"] == [2, 2]


def test_every_device_link_is_in_the_link_table() -> None:
    assert all(spec.link is None or spec.link in LINKS_BY_NAME for spec in SPECS)
    assert all(link.source and 0 < link.bytes_per_s for link in LINKS_BY_NAME.values())
    assert {s.name for s in SPECS if s.link_spec and s.link_spec.transport == "HCCS"} == {"Ascend 910B", "Ascend 910C"}


def test_cli_cluster_json_shape(stores: dict[str, Path]) -> None:
    result = runner.invoke(app, ["cluster", str(stores["gpu"]), "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"ranks", "collectives", "stragglers", "slow_ranks", "links", "findings"}
    assert data["ranks"] == [0, 1, 2, 3]
    assert len(data["collectives"]) == 48
    call = data["collectives"][0]
    assert {k: call[k] for k in ("rank", "group", "op", "seq", "ts_ns", "dur_ns", "bytes", "wait_ns")} == {
        "rank": 0, "group": "0", "op": "all_reduce", "seq": 1, "ts_ns": 1767225600010511487, "dur_ns": 5035039,
        "bytes": 67108864, "wait_ns": 1874}  # fmt: skip
    assert call["name"].startswith("ncclDevKernel_AllReduce_Sum_bf16_RING_LL") and "transit_ns" in call
    assert [{k: s[k] for k in ("group", "op", "seq", "last_rank")} for s in data["stragglers"]] == [
        {"group": "0", "op": "all_reduce", "seq": 3, "last_rank": 2},
        {"group": "0", "op": "all_reduce", "seq": 2, "last_rank": 2},
    ]
    assert all(s["skew_ns"] > 3_000_000 for s in data["stragglers"])
    assert [r["rank"] for r in data["slow_ranks"]] == [2]
    link_keys = ["group", "op", "src_rank", "dst_rank", "transport", "bytes", "transit_ns", "bandwidth_gbps"]
    assert all(list(link)[: len(link_keys)] == link_keys for link in data["links"])
    assert [(lk["src_rank"], lk["dst_rank"], lk["bytes"]) for lk in data["links"]][:2] == [
        (0, 1, 67108864), (1, 2, 67108864)]  # fmt: skip
    assert len(data["findings"]) == 6


def test_cli_cluster_html_and_summary(stores: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "c.html"
    result = runner.invoke(app, ["cluster", str(stores["ascend"]), "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert "cluster: 4 ranks (0..3), 48 collective calls" in result.stdout
    page = out.read_text()
    for title in ("Step time per rank", "Wait in collectives", "Link bandwidth, HCCS", "Arrival offset per rank"):
        assert title in page


def test_cli_cluster_refuses_one_rank(tmp_path: Path) -> None:
    store = ingest([SAMPLES / "real_cpu" / "tiny_decoder_cpu.pt.trace.json.gz"], tmp_path / "one.tv").store
    result = runner.invoke(app, ["cluster", str(store)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {store}: the cluster view needs traces of two or more ranks (ranks seen: 0)\n"


def test_cli_peak_link_bw_must_be_positive(stores: dict[str, Path]) -> None:
    result = runner.invoke(app, ["cluster", str(stores["gpu"]), "--peak-link-bw", "0"])
    assert result.exit_code == 2
    assert result.stderr == "Error: --peak-link-bw 0: must be a positive number of GB/s\n"


def test_ingest_warnings_reach_every_cluster_output(tmp_path: Path) -> None:
    """A rank dump that lacks its timeline: the partial-dump warning is in the terminal, JSON and HTML outputs."""
    import shutil

    dumps = sorted((ROOT / "sample_traces" / "cluster_ascend").glob("rank*_ascend_pt"))
    for dump in dumps:
        shutil.copytree(dump, tmp_path / dump.name)
    (tmp_path / dumps[1].name / "ASCEND_PROFILER_OUTPUT" / "trace_view.json.gz").unlink()
    targets = [str(tmp_path / d.name) for d in dumps]
    expected = "rank 1: partial dump: trace_view.json not found"
    text = runner.invoke(app, ["cluster", *targets, "--cache-dir", str(tmp_path / "cache")])
    assert text.exit_code == 0, text.output
    assert f"  partial: {expected}" in text.output.splitlines()
    data = json.loads(runner.invoke(app, ["cluster", *targets, "--cache-dir", str(tmp_path / "cache"),
                                          "--json", "-"]).output)
    assert {"kind": "partial", "message": expected} in [{k: n[k] for k in ("kind", "message")}
                                                        for n in data["data_quality"]]
    page = runner.invoke(app, ["cluster", *targets, "--cache-dir", str(tmp_path / "cache"), "--html", "-"]).output
    assert f'<span class="kind">partial</span> {expected}' in page
