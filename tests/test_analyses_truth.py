"""Known-answer tests of the built-in analyses (queries/core) against the samples' truth.json.

The synthetic samples (sample_traces/longctx_h200, longctx_910b, runtime_v1/v2) state by construction
which steps are prefill, decode or mixed, where the host stalls are, the KV bytes per token, the
modelled bytes of every decode step and the kernel time per family; sample_traces/real_cpu and
real_h200 are real profiles (CPU; one H200) of a scripted workload, with their own truth.json. Each
test runs the queries as `traceview analyze` does (`run_analyze`, the sandboxed runner) and compares
with those numbers.
"""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal
from functools import cache
from pathlib import Path

import polars as pl
import pytest
from conftest import (
    KINETO_CORPUS,
    exact_ns,
    interval_union_ns,
    load_trace,
    require_corpus,
    trace_events,
    write_kineto,
    x_event,
)

from sample_traces.synth import RunSpec, generate
from traceview.analysis.analyze import AnalysisReport, run_analyze
from traceview.engine import resolve_store
from traceview.packs import find_pack, load_pack
from traceview.sandbox import run_query, sandboxed_connection

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_traces"
CORE = ROOT / "queries" / "core"
LONGCTX = SAMPLES / "longctx_h200" / "longctx_h200.pt.trace.json.gz"
REAL_CPU = SAMPLES / "real_cpu" / "tiny_decoder_cpu.pt.trace.json.gz"
REAL_H200 = SAMPLES / "real_h200" / "small_decoder_h200.pt.trace.json.gz"
ASCEND_EXTRAS = ("aicpu_fallback", "format_conversion", "dynamic_shape")


@cache
def truth(sample: str) -> dict:
    return json.loads((SAMPLES / sample / "truth.json").read_text())


def frame(report: AnalysisReport, query: str) -> pl.DataFrame:
    result = report.result(query)
    assert result is not None, f"{query} did not run"
    assert result.error is None, result.error
    assert result.frame is not None
    return result.frame


def run_one(target: Path, cache_dir: Path, query: str, **overrides: object) -> pl.DataFrame:
    """One core query with parameter overrides, in the sandbox `analyze` uses."""
    con = sandboxed_connection([resolve_store(target, cache_dir)])
    try:
        result = run_query(con, find_pack("core").query(query), overrides)
    finally:
        con.close()
    assert result.error is None, result.error
    assert result.frame is not None
    return result.frame


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("analyses_cache")


@pytest.fixture(scope="module")
def longctx(cache_dir: Path) -> AnalysisReport:
    report = run_analyze([LONGCTX], cache_dir=cache_dir)
    assert report.errors == []
    return report


@pytest.fixture(scope="module")
def real_cpu(cache_dir: Path) -> AnalysisReport:
    report = run_analyze([REAL_CPU], cache_dir=cache_dir)
    assert report.errors == []
    return report


@pytest.fixture(scope="module")
def real_h200(cache_dir: Path) -> AnalysisReport:
    report = run_analyze([REAL_H200], cache_dir=cache_dir)
    assert report.errors == []
    return report


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[AnalysisReport, dict]:
    """longctx_h200 written again without the vLLM step labels: phases must come from shapes."""
    spec = dataclasses.replace(RunSpec.from_dict(truth("longctx_h200")["spec"]), name="unlabeled", annotations="none")
    out = tmp_path_factory.mktemp("unlabeled")
    generate(spec, out)
    report = run_analyze([out / "unlabeled.pt.trace.json"], cache_dir=cache_dir)
    assert report.errors == []
    return report, json.loads((out / "truth.json").read_text())


@pytest.fixture(scope="module")
def ascend(cache_dir: Path) -> AnalysisReport:
    """The committed torch_npu sample, as stored (gzipped files, read through a mirror)."""
    report = run_analyze([SAMPLES / "longctx_910b" / "longctx_910b_ascend_pt"], cache_dir=cache_dir)
    assert report.errors == []
    return report


# ---------------------------------------------------------------------------------------------
# launch_gaps: the injected host stalls are the largest device gaps


def test_stalls_are_the_largest_launch_gaps(longctx: AnalysisReport) -> None:
    stalls = sorted(truth("longctx_h200")["stalls"], key=lambda s: -s["device_gap_ns"])
    gaps = frame(longctx, "launch_gaps").sort("gap_ns", descending=True).head(len(stalls))
    assert gaps.select("gap_start_ns", "gap_ns", "step").rows() == [
        (s["device_gap_start_ns"], s["device_gap_ns"], s["step"]) for s in stalls
    ]
    # the stall before step 13's forward leaves the device waiting on the host
    assert gaps.row(0, named=True)["cause"] == "host"


# ---------------------------------------------------------------------------------------------
# phases


def test_phases_match_truth_step_by_step(longctx: AnalysisReport) -> None:
    steps = truth("longctx_h200")["steps"]
    phases = frame(longctx, "phases").sort("step")
    assert phases["step"].to_list() == [s["step"] for s in steps]
    assert phases["phase"].to_list() == [s["phase"] for s in steps]
    assert set(phases["source"]) == {"label"}
    assert phases["tokens"].to_list() == [s["tokens"] for s in steps]
    assert phases["context_len"].to_list() == [s["kv_tokens"] for s in steps]
    assert phases["dur_ns"].to_list() == [s["dur_ns"] for s in steps]
    assert phases["device_busy_ns"].to_list() == [s["device_busy_ns"] for s in steps]
    assert phases["label"].to_list() == [s["annotation"] for s in steps]


def test_phases_from_shapes_without_labels(unlabeled: tuple[AnalysisReport, dict]) -> None:
    report, known = unlabeled
    phases = frame(report, "phases").sort("step")
    assert phases["label"].null_count() == phases.height
    assert set(phases["source"]) == {"shapes"}
    assert phases["phase"].to_list() == [s["phase"] for s in known["steps"]]
    assert phases["tokens"].to_list() == [s["tokens"] for s in known["steps"]]
    assert phases["context_len"].to_list() == [s["kv_tokens"] for s in known["steps"]]


@pytest.mark.parametrize("sample", ["real_cpu", "real_h200"])
def test_phases_of_the_real_traces(sample: str, request: pytest.FixtureRequest) -> None:
    steps = truth(sample)["steps"]
    phases = frame(request.getfixturevalue(sample), "phases").sort("step")
    assert phases["step"].to_list() == [int(s["profiler_step"].split("#")[1]) for s in steps]
    assert phases["label"].to_list() == [s["label"] for s in steps]
    assert phases["phase"].to_list() == [s["phase"] for s in steps]
    assert phases["tokens"].to_list() == [s["tokens"] for s in steps]
    # SDPA shapes give the KV length exactly: [batch, heads, S, head_dim]
    assert phases["context_len"].to_list() == [s["context_len"] for s in steps]
    assert set(phases["context_source"]) == {"shapes"}


def test_phases_of_the_ascend_sample(ascend: AnalysisReport) -> None:
    """No labels and no max_seqlen_q in torch_npu records: prefill chunks batched with decodes look like prefill."""
    steps = truth("longctx_910b")["steps"]
    phases = frame(ascend, "phases").sort("step")
    assert phases["step"].to_list() == [s["step"] for s in steps]
    expected = ["prefill" if s["phase"] == "mixed" else s["phase"] for s in steps]
    assert phases["phase"].to_list() == expected
    assert phases["tokens"].to_list() == [s["tokens"] for s in steps]
    assert phases["context_len"].to_list() == [s["kv_tokens"] for s in steps]


# ---------------------------------------------------------------------------------------------
# kv_cache


def test_kv_bytes_per_token(
    longctx: AnalysisReport, real_cpu: AnalysisReport, real_h200: AnalysisReport, ascend: AnalysisReport
) -> None:
    samples = ((longctx, "longctx_h200"), (real_cpu, "real_cpu"), (real_h200, "real_h200"), (ascend, "longctx_910b"))
    for report, sample in samples:
        known = truth(sample)
        per_token = known["model"].get("kv_bytes_per_token", known.get("kv_bytes_per_token"))
        kv = frame(report, "kv_cache").sort("step")
        assert set(kv["kv_bytes_per_token"]) == {per_token}, sample
        # the KV footprint from shapes is what the workload keeps resident after each step
        assert kv["kv_footprint_bytes"].to_list() == [s["kv_cache_bytes"] for s in known["steps"]], sample
        # both samples grow the cache on demand, so the allocator follows it
        assert set(kv["preallocated"]) == {False}, sample
        assert set(kv["allocator_tracks_kv"]) == {True}, sample


def test_kv_cache_memory_per_step(longctx: AnalysisReport) -> None:
    kv = frame(longctx, "kv_cache").sort("step")
    per_token = truth("longctx_h200")["model"]["kv_bytes_per_token"]
    steps = truth("longctx_h200")["steps"]
    growth = dict(zip(kv["step"], kv["allocated_growth"], strict=True))
    # every step but a batch's last (which frees the batch's cache) grows allocated memory by its new tokens' KV
    for step, after in zip(steps[1:], steps[2:] + [None], strict=True):
        if after is not None and after["batch"] == step["batch"]:
            assert growth[step["step"]] == step["tokens"] * per_token, step["step"]
    peak = kv.filter(pl.col("peak_kv_step"))
    assert peak["step"].to_list() == [max(steps, key=lambda s: s["kv_cache_bytes"])["step"]]


# ---------------------------------------------------------------------------------------------
# bandwidth


def _saturated_truth(sample: str, peak: float) -> set[int]:
    return {d["step"] for d in truth(sample)["decode_bandwidth"] if d["bytes_per_s"] >= 0.8 * peak}


def _check_step_bandwidth(steps: pl.DataFrame, sample: str, peak: float) -> None:
    known = {d["step"]: d for d in truth(sample)["decode_bandwidth"]}
    assert sorted(steps["step"]) == sorted(known)
    for row in steps.iter_rows(named=True):
        d = known[row["step"]]
        assert row["dur_ns"] == d["device_ns"]
        # modelled bytes: GEMM weights + KV read; truth adds the small activation traffic of norms etc.
        assert row["bytes"] == pytest.approx(d["bytes"], rel=0.005)
        assert row["peak_bytes_per_s"] == peak
    assert set(steps.filter(pl.col("saturated"))["step"]) == _saturated_truth(sample, peak)


def test_bandwidth_decode_steps_against_the_device_peak(longctx: AnalysisReport) -> None:
    peak = truth("longctx_h200")["device"]["hbm_bandwidth"]
    bandwidth = frame(longctx, "bandwidth")
    _check_step_bandwidth(bandwidth.filter(pl.col("source") == "step"), "longctx_h200", peak)
    assert _saturated_truth("longctx_h200", peak) == set()  # ~78-79% of 4.8 TB/s: none saturated
    assert not [f for f in longctx.findings if f.query == "bandwidth"]
    copies = bandwidth.filter(pl.col("source") == "memcpy")
    assert copies.height == truth("longctx_h200")["kernel_families"]["copy"]["count"]


def test_bandwidth_peak_override_flags_exactly_the_saturated_steps(cache_dir: Path) -> None:
    # a peak of 4734 GB/s puts 80% between the 32k-context decode steps and the others
    peak_gbps = 4734.0
    expected = _saturated_truth("longctx_h200", peak_gbps * 1e9)
    assert expected == {11, 12, 13}
    report = run_analyze([LONGCTX], cache_dir=cache_dir, peak_bw_gbps=peak_gbps)
    steps = frame(report, "bandwidth").filter(pl.col("source") == "step")
    _check_step_bandwidth(steps, "longctx_h200", peak_gbps * 1e9)
    assert set(steps["peak_source"]) == {"param"}
    flagged = [f.row["step"] for f in report.findings if f.query == "bandwidth"]
    assert sorted(flagged) == sorted(expected)


@pytest.mark.parametrize("sample", ["runtime_v1", "runtime_v2"])
def test_bandwidth_runtime_samples(sample: str, cache_dir: Path) -> None:
    report = run_analyze([SAMPLES / sample / f"{sample}.pt.trace.json.gz"], cache_dir=cache_dir)
    steps = frame(report, "bandwidth").filter(pl.col("source") == "step")
    _check_step_bandwidth(steps, sample, truth(sample)["device"]["hbm_bandwidth"])


def test_bandwidth_decode_kernels_from_shapes(longctx: AnalysisReport) -> None:
    """Decode attention reads the KV cache of its step once per layer."""
    kernels = frame(longctx, "bandwidth").filter(pl.col("source") == "kernel")
    attention = kernels.filter(pl.col("op") == "_vllm_fa2_C::varlen_fwd")
    steps = {s["step"]: s for s in truth("longctx_h200")["steps"]}
    assert attention.height == 32 * sum(1 for s in steps.values() if s["phase"] == "decode")
    for row in attention.iter_rows(named=True):
        assert row["bytes"] == steps[row["step"]]["kv_read_bytes_per_layer"]


def test_bandwidth_of_the_real_h200_trace(real_h200: AnalysisReport) -> None:
    """Bytes known by construction, times measured on a real H200: a decode step reads every Linear
    weight and the KV cache once; each prefill starts with a 32 MiB pinned host-to-device copy."""
    known = truth("real_h200")
    steps = {int(s["profiler_step"].split("#")[1]): s for s in known["steps"]}
    bandwidth = frame(real_h200, "bandwidth")
    assert set(bandwidth["peak_source"]) == {"device table: H200"}
    decode = bandwidth.filter(pl.col("source") == "step")
    assert sorted(decode["step"]) == sorted(n for n, s in steps.items() if s["phase"] == "decode")
    for row in decode.iter_rows(named=True):
        context = steps[row["step"]]["context_len"]
        assert row["bytes"] == known["linear_weight_bytes"] + context * known["kv_bytes_per_token"]
    swaps = bandwidth.filter((pl.col("source") == "memcpy") & (pl.col("bytes") == known["swap_in_bytes"]))
    assert sorted(swaps["step"]) == sorted(n for n, s in steps.items() if s["swap_in_bytes"])
    # nothing measured on the device can beat its memory: every kernel stays under the H200's peak
    kernels = bandwidth.filter(pl.col("source") == "kernel")
    assert kernels.height > 0
    assert kernels["achieved_bytes_per_s"].max() < kernels["peak_bytes_per_s"].min()


# ---------------------------------------------------------------------------------------------
# kernel families


@pytest.mark.parametrize("sample", ["longctx_h200", "runtime_v2"])
def test_kernel_families_match_truth(sample: str, cache_dir: Path) -> None:
    path = SAMPLES / sample / truth(sample)["files"][0]
    families = frame(run_analyze([path], cache_dir=cache_dir), "kernel_families")
    _check_families(families, sample)


def test_kernel_families_of_the_ascend_sample(ascend: AnalysisReport) -> None:
    _check_families(frame(ascend, "kernel_families"), "longctx_910b")


def _check_families(families: pl.DataFrame, sample: str) -> None:
    known = truth(sample)["kernel_families"]
    got = {r["family"]: r for r in families.iter_rows(named=True)}
    assert set(got) == set(known)
    for family, expected in known.items():
        assert got[family]["total_ns"] == expected["total_ns"], family
        assert got[family]["tasks"] == expected["count"], family
        assert got[family]["names"] == expected["names"], family


# ---------------------------------------------------------------------------------------------
# spikes


def test_spikes_explain_the_stalled_decode_steps(cache_dir: Path) -> None:
    stalls = {s["step"]: s for s in truth("longctx_h200")["stalls"]}
    spikes = run_one(LONGCTX, cache_dir, "spikes", multiple=1.15)
    decode = spikes.filter((pl.col("level") == "step") & (pl.col("phase") == "decode"))
    assert sorted(decode["step"]) == sorted(stalls)
    for row in decode.iter_rows(named=True):
        assert row["gap_ns"] == stalls[row["step"]]["device_gap_ns"]
        assert row["gap_start_ns"] == stalls[row["step"]]["device_gap_start_ns"]
        assert row["grown_ops"]
    # at the default 3x nothing in this run is a spike
    default = run_one(LONGCTX, cache_dir, "spikes")
    assert default.filter(pl.col("level") == "step").is_empty()


def test_spikes_in_the_real_cpu_trace(real_cpu: AnalysisReport) -> None:
    """Some decode steps of the real CPU run took ~10 ms instead of ~1.5 ms (a shared CPU)."""
    steps = frame(real_cpu, "spikes").filter(pl.col("level") == "step")
    durations = {int(s["profiler_step"].split("#")[1]): s for s in truth("real_cpu")["steps"]}
    assert steps.height > 0
    for row in steps.iter_rows(named=True):
        assert durations[row["step"]]["phase"] == row["phase"] == "decode"
        assert row["ratio"] > 3
        assert row["grown_ops"]


def _slow_attention_steps(path: Path, op: str, min_ns: int) -> set[int]:
    """Steps (ProfilerStep#N spans on the host) holding a call of `op` longer than `min_ns`, from the raw JSON."""
    events = [e for e in trace_events(load_trace(path)) if isinstance(e, dict) and e.get("ph") == "X"]
    spans = [
        (int(e["name"].split("#")[1]), exact_ns(e["ts"]), exact_ns(e["ts"]) + exact_ns(e["dur"]))
        for e in events
        if e["name"].startswith("ProfilerStep#")
    ]
    slow = set()
    for e in events:
        if e["name"] == op and exact_ns(e["dur"]) > min_ns:
            start = exact_ns(e["ts"])
            slow |= {n for n, lo, hi in spans if lo <= start < hi}
    return slow


def test_spikes_and_gaps_in_the_real_h200_trace(real_h200: AnalysisReport) -> None:
    """In most decode steps of the H200 run, one cuDNN attention call takes ~33 ms on the host instead of
    ~45 us (cuDNN builds an execution plan for each new KV length; the warm-up had already seen the
    first decode length of each prompt). The device waits for it: those are the largest gaps."""
    op = "aten::_cudnn_attention_forward"
    slow = _slow_attention_steps(REAL_H200, op, 1_000_000)
    decode = {int(s["profiler_step"].split("#")[1]) for s in truth("real_h200")["steps"] if s["phase"] == "decode"}
    assert slow and slow <= decode
    spikes = frame(real_h200, "spikes").filter((pl.col("level") == "host") & (pl.col("name") == op))
    assert set(spikes.filter(pl.col("dur_ns") > 1_000_000)["step"]) == slow
    gaps = frame(real_h200, "launch_gaps").sort("gap_ns", descending=True).head(len(slow))  # top 20 by default
    assert gaps["step"].n_unique() == gaps.height >= 20 and set(gaps["step"]) <= slow
    assert set(gaps["cause"]) == {"host"} and set(gaps["host_op"]) == {op}
    messages = [f.message for f in real_h200.findings if f.query == "spikes" and f.row["level"] == "host"]
    assert messages and all(m.count(f"host op {op} took ") == 1 for m in messages if op in m)


# ---------------------------------------------------------------------------------------------
# Ascend extras, fusion candidates, the shared step model


def test_ascend_extras_are_empty_on_gpu_traces(longctx: AnalysisReport) -> None:
    for query in ASCEND_EXTRAS:
        assert frame(longctx, query).is_empty(), query


def test_dynamic_shapes_on_the_ascend_sample(ascend: AnalysisReport) -> None:
    dynamic = frame(ascend, "dynamic_shape")
    matmul = dynamic.filter(pl.col("name") == "aclnnMatmul_MatMulV3Common_MatMulV3").row(0, named=True)
    # token counts 1, 2, 4, 4096, 4098, 8192 times four weight shapes, plus the LM head's rows
    assert matmul["steps"] == len(truth("longctx_910b")["steps"])
    assert matmul["varying_shapes"] == matmul["distinct_shapes"] > 20
    assert matmul["op_state"] == "dynamic"
    assert frame(ascend, "aicpu_fallback").is_empty()


def test_fusion_candidates_are_short_kernel_runs(longctx: AnalysisReport) -> None:
    fusion = frame(longctx, "fusion_candidates")
    assert fusion.height > 0
    for row in fusion.iter_rows(named=True):
        assert row["tasks_per_run"] >= 3
        assert row["gap_ns"] + row["launch_ns"] > row["work_ns"]
        # per run the larger of gaps and launch overhead, summed over the runs
        assert max(row["gap_ns"], row["launch_ns"]) <= row["est_saved_ns"] <= row["gap_ns"] + row["launch_ns"]
    # the step number is taken out of the code path, so the same code in every step is one group
    assert not any(re.search(r"\d", path) for path in fusion["code_path"])


def test_step_model_is_one_shared_fragment() -> None:
    """phases, bandwidth, kv_cache and spikes include the one step model fragment, expanded at load time."""
    pack = load_pack(CORE)
    users = {q.name for q in pack.queries if "-- @include _step_model.sql" in q.path.read_text()}
    assert users == {"phases", "bandwidth", "kv_cache", "spikes"}
    fragment = (CORE / "_step_model.sql").read_text()
    for name in users:
        query = pack.query(name)
        assert "step_model AS (" in query.sql and "@include" not in query.sql
        # errors in included lines point at the fragment
        assert any(file.name == "_step_model.sql" for file, _ in query.line_map)
    assert "_step_model" not in {q.name for q in pack.queries}
    assert fragment.count("step_model AS (") == 1


# ---------------------------------------------------------------------------------------------
# busy_breakdown against an independent interval union from the raw JSON

DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset"}


def _raw_busy(path: Path) -> dict[int, tuple[int, int]]:
    """Per device: (span, busy) of the device tasks, from the raw events with exact ns."""
    intervals: dict[int, list[tuple[int, int]]] = {}
    for ev in trace_events(load_trace(path)):
        if isinstance(ev, dict) and ev.get("ph") == "X" and ev.get("cat") in DEVICE_CATS:
            start = exact_ns(ev["ts"])
            intervals.setdefault(int(ev["args"]["device"]), []).append((start, start + exact_ns(ev.get("dur", 0))))
    return {
        device: (max(e for _, e in spans) - min(s for s, _ in spans), interval_union_ns(spans))
        for device, spans in intervals.items()
    }


@pytest.mark.parametrize(
    "rel",
    [
        "tracelens/b200/eager_trace.json.gz",
        "nano-vllm/decode_gpu_0.json",
        "hta/trace_compare/base/base.json.gz",
        "sample:real_h200/small_decoder_h200.pt.trace.json.gz",
    ],
)
def test_busy_breakdown_matches_an_interval_union(rel: str, cache_dir: Path) -> None:
    if rel.startswith("sample:"):
        path = SAMPLES / rel.removeprefix("sample:")
    else:
        require_corpus()
        path = KINETO_CORPUS / rel
    report = run_analyze([path], cache_dir=cache_dir)
    busy = frame(report, "busy_breakdown")
    expected = _raw_busy(path)
    device_rows = busy.filter(pl.col("scope") == "device")
    got = {r["device_id"]: (r["span_ns"], r["span_ns"] - r["idle_ns"]) for r in device_rows.iter_rows(named=True)}
    assert got == expected, rel
    # the step windows and the time outside them tile the device span: their rows add up to the device row
    parts = busy.filter(pl.col("scope") != "device").group_by("device_id").agg(pl.col("span_ns", "idle_ns").sum())
    for row in parts.iter_rows(named=True):
        assert (row["span_ns"], row["span_ns"] - row["idle_ns"]) == got[row["device_id"]], rel


# ---------------------------------------------------------------------------------------------
# a serving trace whose KV pool is allocated up front (as vLLM and SGLang do)


def _preallocated_trace(path: Path) -> Path:
    """Three decode steps of two requests over a paged cache [1024 blocks, 16, 8 heads, 128]; the allocator
    only sees a short-lived activation buffer per step, its total stays at 10 GB."""
    base, total = 1_712_000_000_000_000, 10_000_000_000
    bf16, cache = "c10::BFloat16", [1024, 16, 8, 128]
    events: list[dict] = []
    ext = 0
    for step in range(3):
        t0 = base + 10_000 * step
        events.append(x_event(f"ProfilerStep#{step + 1}", t0, "9000.000", cat="user_annotation"))
        events.append(x_event("execute_context_0(0)_generation_2(2)", t0 + 10, "8900.000", cat="user_annotation"))
        for layer in range(2):
            t = t0 + 100 + 1000 * layer
            ext += 2
            events.append(
                x_event(
                    "_C_cache_ops::reshape_and_cache_flash",
                    t,
                    "20.000",
                    args={
                        "External id": ext,
                        "Input Dims": [[2, 8, 128], [2, 8, 128], cache, cache, [2], [], [], []],
                        "Input type": [bf16, bf16, bf16, bf16, "long int", "Scalar", "Scalar", "Scalar"],
                    },
                )
            )
            events.append(
                x_event(
                    "_vllm_fa2_C::varlen_fwd",
                    t + 100,
                    "30.000",
                    args={
                        "External id": ext + 1,
                        "Input Dims": [[2, 32, 128], cache, cache, [2, 32, 128], [3], [], [2], [], [2, 65], [], [], []],
                        "Input type": [bf16, bf16, bf16, bf16, "int", "", "int", "", "int", "", "Scalar", "Scalar"],
                        "Concrete Inputs": ["", "", "", "", "", "", "", "", "", "", "1", str(1025 + step)],
                    },
                )
            )
        for sign, at in ((1, t0 + 50), (-1, t0 + 8000)):
            events.append(
                {
                    "ph": "i",
                    "cat": "cpu_instant_event",
                    "s": "t",
                    "name": "[memory]",
                    "pid": 100,
                    "tid": 100,
                    "ts": Decimal(at),
                    "args": {
                        "Total Reserved": 12_000_000_000,
                        "Total Allocated": total + (sign > 0) * 65536,
                        "Bytes": sign * 65536,
                        "Device Id": 0,
                        "Device Type": 1,
                        "Addr": 1 << 40,
                    },
                }
            )
    return write_kineto(
        path, events, header={"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100"}]}
    )


def test_kv_cache_detects_a_preallocated_pool(tmp_path: Path) -> None:
    report = run_analyze([_preallocated_trace(tmp_path / "prealloc.json")], cache_dir=tmp_path / "cache")
    assert report.errors == []
    kv = frame(report, "kv_cache").sort("step")
    assert kv["step"].to_list() == [1, 2, 3]
    assert set(kv["phase"]) == {"decode"}
    assert set(kv["kv_bytes_per_token"]) == {2 * 8 * 128 * 2 * 2}  # K and V, 8 heads x 128, bf16, 2 layers
    assert set(kv["allocated_end"]) == {10_000_000_000}
    assert set(kv["preallocated"]) == {True}
    # two requests, the longer at 1025..1027 tokens: the lower bound (1025 + 1), then + 2 tokens per step
    assert kv["context_len"].to_list() == [1026, 1028, 1030]
    assert set(kv["context_source"]) == {"estimate"}
    findings = [f.message for f in report.findings if f.query == "kv_cache"]
    assert len(findings) == 1 and "pre-allocated" in findings[0]


def test_bandwidth_from_counters_and_cupti_bytes(tmp_path: Path) -> None:
    """Measured bytes where a trace has them: CUPTI dram byte counters on a kernel, HBM read/write counters."""
    base = 1_712_000_000_000_000
    kernel_args = {
        "device": 0,
        "stream": 7,
        "correlation": 1,
        "dram__bytes_read.sum": 1_500_000,
        "dram__bytes_write.sum": 500_000,
    }
    events = [
        x_event("cudaLaunchKernel", base, "3.000", cat="cuda_runtime", args={"correlation": 1}),
        x_event("void copy_kernel<float>(float*)", base + 5, "1.000", cat="kernel", pid=0, tid=7, args=kernel_args),
    ]
    for i, (read, write) in enumerate([(1200, 300), (2400, 600), (100, 0)]):
        events.append(
            {
                "ph": "C",
                "name": "HBM bandwidth",
                "pid": 0,
                "tid": 0,
                "ts": Decimal(base + 10 * i),
                "args": {"read (GB/s)": read, "write (GB/s)": write},
            }
        )
    header = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}]}
    path = write_kineto(tmp_path / "counters.json", events, header=header)
    report = run_analyze([path], cache_dir=tmp_path / "cache")
    assert report.errors == []
    bandwidth = frame(report, "bandwidth").sort("source", "ts_ns")
    kernel = bandwidth.filter(pl.col("source") == "kernel").row(0, named=True)
    assert (kernel["bytes"], kernel["dur_ns"]) == (2_000_000, 1000)
    assert kernel["achieved_bytes_per_s"] == pytest.approx(2e12)
    assert kernel["utilization_pct"] == pytest.approx(100 * 2e12 / 3.35e12)
    counters = bandwidth.filter(pl.col("source") == "counter")
    assert counters["achieved_bytes_per_s"].to_list() == pytest.approx([1.5e12, 3.0e12, 0.1e12])
    assert counters["saturated"].to_list() == [False, True, False]  # 3.0 / 3.35 TB/s = 89.6%
    assert [f.row["source"] for f in report.findings if f.query == "bandwidth"] == ["counter"]


# ---------------------------------------------------------------------------------------------
# busy_breakdown against Ascend's own step_trace_time (steps table), for every full corpus dump

ASCEND_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "ascend"
# Dumps that hold the device tasks of their step (not a 21-row kernel fragment, not a rank without tasks).
ASCEND_DUMPS = [
    "torch_npu_2025_text/level0/rank0_ascend_pt", "torch_npu_2025_text/level1/rank0_ascend_pt",
    "torch_npu_2025_text/level1/rank1_ascend_pt", "torch_npu_2025_text/level2/rank0_ascend_pt",
    "torch_npu_2025_db/level0/rank0_ascend_pt", "torch_npu_2025_db/level1/rank1_ascend_pt",
    "torch_npu_2025_db/level2/rank0_ascend_pt", "torch_npu_cann83_level2/rank_0_ascend_pt",
]


@pytest.mark.parametrize("dump", ASCEND_DUMPS)
def test_busy_breakdown_matches_ascend_step_trace_time(dump: str, cache_dir: Path) -> None:
    report = run_analyze([ASCEND_CORPUS / dump], cache_dir=cache_dir)
    breakdown = {row["step"]: row for row in frame(report, "busy_breakdown").to_dicts() if row["step"] is not None}
    import traceview

    with traceview.open(ASCEND_CORPUS / dump, cache_dir=cache_dir) as session:
        written = session.sql("SELECT * FROM steps").to_dicts()
    assert written, "the dump has a step_trace_time"
    for row in written:
        mine = breakdown[row["step"]]
        for ours, theirs in (("compute_ns", "computing_ns"),
                             ("comm_not_overlapped_ns", "communication_not_overlapped_ns"),
                             ("free_ns", "free_ns")):
            assert mine[ours] == pytest.approx(row[theirs], rel=0.01, abs=1000), (dump, row["step"], ours)
