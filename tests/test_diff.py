"""`traceview diff`: alignment, deltas against truth and raw JSON, significance, cross-vendor, gates, CLI."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import KINETO_CORPUS, exact_ns, load_trace, require_corpus, trace_events
from typer.testing import CliRunner

from traceview.analysis.diff import canonical_op, normalise_kernel
from traceview.analysis.diff import diff as run_diff
from traceview.cli import app
from traceview.store import ingest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
TRACES = {
    "v1": SAMPLES / "runtime_v1" / "runtime_v1.pt.trace.json.gz",
    "v2": SAMPLES / "runtime_v2" / "runtime_v2.pt.trace.json.gz",
    "h200": SAMPLES / "longctx_h200" / "longctx_h200.pt.trace.json.gz",
    "npu": SAMPLES / "longctx_910b" / "longctx_910b_ascend_pt",
    "hta_base": KINETO_CORPUS / "hta" / "trace_compare" / "base" / "base.json.gz",
    "hta_test": KINETO_CORPUS / "hta" / "trace_compare" / "test" / "test.json.gz",
}


def truth(name: str) -> dict:
    return json.loads((SAMPLES / name / "truth.json").read_text())


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_corpus()
    root = tmp_path_factory.mktemp("diff")
    return {name: ingest([path], root / name).store for name, path in TRACES.items()}


@pytest.fixture(scope="module")
def v1_v2(stores):
    return run_diff(stores["v1"], stores["v2"], by="family", fail_on=["new_kernels>0"])


def test_normalise_kernel_names():
    assert normalise_kernel("void foo<int, bar<x> >(float*, 0x7ffe12ab)") == "void foo(float*, 0x?)"
    assert normalise_kernel("triton_poi_fused_add_0_a1b2c3d4e5") == "triton_poi_fused_add_0"
    assert normalise_kernel("kernel_9f8e7d6c5b4a39281706f5e4d3c2b1a0") == "kernel"
    assert normalise_kernel("ampere_sgemm_128x64_nn") == "ampere_sgemm_128x64_nn"
    assert canonical_op("aten::mm") == canonical_op("aten::matmul") == "matmul"
    assert canonical_op("npu::npu_add_rms_norm") == canonical_op("_C::fused_add_rms_norm") == "add_rms_norm"


@pytest.mark.parametrize("by", ["op", "kernel", "family", "phase", "step"])
def test_self_diff_has_no_significant_change(stores, by):
    gates = ["step_time>+5%", "kernel:*gemm*>+10%", "new_kernels>0", "launch_latency>+1%", f"{by}:*>+0%"]
    report = run_diff(stores["v1"], stores["v1"], by=by, fail_on=gates, with_summary=(by == "kernel"))
    assert report.rows
    assert not [r.key for r in report.rows if r.significant]
    assert all(r.delta_ns == 0 and r.status == "changed" for r in report.rows)
    assert not report.tripped, [g.reason for g in report.gates]
    assert not any(m["significant"] for m in report.summary.values())


def test_family_deltas_match_truth(v1_v2):
    t1, t2 = truth("runtime_v1")["kernel_families"], truth("runtime_v2")["kernel_families"]
    rows = {r.key: r for r in v1_v2.rows}
    assert set(rows) == set(t1) | set(t2)
    for family, row in rows.items():
        assert row.base_total_ns == t1[family]["total_ns"]
        assert row.test_total_ns == t2[family]["total_ns"]
        assert (row.base_count, row.test_count) == (t1[family]["count"], t2[family]["count"])
        expected = (t2[family]["total_ns"] - t1[family]["total_ns"]) / t1[family]["total_ns"] * 100
        assert abs(row.delta_pct - expected) <= 2
    # attention scaled 1.3, the qk_norm kernel added to the norm family: those and nothing else
    assert {r.key for r in v1_v2.rows if r.significant} == {"attention", "norm"}
    assert abs(rows["attention"].delta_pct - 30) <= 2
    assert sum(r.base_total_ns for r in v1_v2.rows) == v1_v2.levels["family"].base_total_ns
    assert sum(r.test_total_ns for r in v1_v2.rows) == v1_v2.levels["family"].test_total_ns


def test_kernel_level_new_kernel_and_attention(v1_v2, stores):
    kernel = v1_v2.levels["kernel"]  # computed for the new_kernels gate
    significant = {r.key: r for r in kernel.rows if r.significant}
    new = [r for r in kernel.rows if r.status == "new"]
    assert [r.key for r in new] == [normalise_kernel(n) for n in truth("runtime_v2")["kernel_families"]["norm"]["names"]
                                    if "qk_norm" in n]
    assert not [r for r in kernel.rows if r.status == "vanished"]
    attention = {normalise_kernel(n) for n in truth("runtime_v1")["kernel_families"]["attention"]["names"]}
    assert set(significant) == attention | {new[0].key}
    for key in attention:
        assert abs(significant[key].delta_pct - 30) <= 2
    assert v1_v2.gates[0].tripped


def test_summary_launch_latency_and_step_time(v1_v2):
    s = v1_v2.summary
    assert s["launch_latency"]["significant"] is True
    assert abs(s["launch_latency"]["delta_pct"] - 40) <= 2  # launch_overhead_scale 1.4
    steps = [st["dur_ns"] for st in truth("runtime_v1")["steps"]], [st["dur_ns"] for st in truth("runtime_v2")["steps"]]
    medians = [sorted(x)[len(x) // 2 - 1: len(x) // 2 + 1] for x in steps]
    assert s["step_time"]["base"] == sum(medians[0]) / 2
    assert s["step_time"]["test"] == sum(medians[1]) / 2
    assert s["kv_bytes_per_token"]["base"] == truth("runtime_v1")["model"]["kv_bytes_per_token"]


def _raw_ops(path: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for event in trace_events(load_trace(path)):
        if isinstance(event, dict) and event.get("ph") == "X" and event.get("cat") == "cpu_op":
            out[event["name"]][0] += 1
            out[event["name"]][1] += exact_ns(event["dur"])
    return dict(out)


def test_hta_pair_matches_raw_json(stores):
    report = run_diff(stores["hta_base"], stores["hta_test"], by="op", with_summary=False)
    base, test = _raw_ops(TRACES["hta_base"]), _raw_ops(TRACES["hta_test"])
    rows = {r.key: r for r in report.rows}
    assert set(rows) == set(base) | set(test)
    for name, row in rows.items():
        b, t = base.get(name, [0, 0]), test.get(name, [0, 0])
        assert (row.base_count, row.test_count) == (b[0], t[0])
        assert (row.base_total_ns, row.test_total_ns) == (b[1], t[1])
        assert row.delta_ns == t[1] - b[1]
        assert row.status == ("new" if not b[0] else "vanished" if not t[0] else "changed")


def test_cross_vendor_cuda_against_ascend(stores):
    report = run_diff(stores["h200"], stores["npu"], by="op", with_summary=False)
    xv = report.cross_vendor
    assert xv is not None and xv["base_vendors"] == ["cuda"] and xv["test_vendors"] == ["npu"]
    t_gpu, t_npu = truth("longctx_h200")["kernel_families"], truth("longctx_910b")["kernel_families"]
    ops = {o["op"]: o for o in xv["ops"]}
    # device time attributed to each framework op through correlation equals the family totals of its kernels
    for op, family in [("matmul", "gemm"), ("attention", "attention"), ("reshape_and_cache", "kv_cache"),
                       ("argmax", "sampling"), ("copy_", "copy")]:
        assert ops[op]["base_device_ns"] == t_gpu[family]["total_ns"], op
        assert ops[op]["test_device_ns"] == t_npu[family]["total_ns"], op
    family_of = {"matmul": "gemm", "attention": "attention", "swiglu": "elementwise", "rotary_embedding": "elementwise",
                 "embedding": "elementwise", "add_rms_norm": "norm", "rms_norm": "norm",
                 "reshape_and_cache": "kv_cache", "argmax": "sampling", "copy_": "copy"}
    assert set(ops) == set(family_of)
    slower = {op for op, fam in family_of.items() if t_npu[fam]["total_ns"] > 1.02 * t_gpu[fam]["total_ns"]}
    assert set(xv["slower_on_test"]) == slower and "copy_" not in slower
    assert xv["slower_on_base"] == [] and xv["aicpu_fallback"] == [] and xv["split_more"] == []
    assert ops["attention"]["base_tasks_per_op"] == pytest.approx(832 / 544)
    assert ops["attention"]["test_tasks_per_op"] == 1.0
    assert sum(r.base_total_ns for r in report.rows) == sum(f["total_ns"] for f in t_gpu.values())


def test_cli_gates_and_json(stores, tmp_path):
    runner = CliRunner()
    out = tmp_path / "d.json"
    result = runner.invoke(app, ["diff", str(stores["v1"]), str(stores["v2"]), "--by", "kernel", "--json", str(out),
                                 "--fail-on", "new_kernels>0", "--fail-on", "kernel:*gemm*>+10%"])
    assert result.exit_code == 1, result.output
    qk = ("void vllm::fused_qk_norm_kernel(c10::BFloat16*, c10::BFloat16 const*, c10::BFloat16 const*, float, int,"
          " int, int)")
    assert result.stderr.splitlines()[-1] == f"Gate failed: new_kernels>0: new_kernels = 1 ({qk}), limit >+0"
    doc = json.loads(out.read_text())
    assert set(doc) >= {"rows", "summary", "gates"}
    assert doc["gates"][0] == {"expr": "new_kernels>0", "tripped": True,
                               "reason": f"new_kernels = 1 ({qk}), limit >+0"}
    assert doc["gates"][1]["tripped"] is False
    assert doc["gates"][1]["reason"].startswith("kernel:*gemm* (2 rows) changed -0.1% (")
    row_keys = {"key", "base_count", "test_count", "base_total_ns", "test_total_ns", "delta_ns", "delta_pct",
                "ci_low_pct", "ci_high_pct", "significant"}
    assert all(row_keys <= set(r) for r in doc["rows"])
    assert sum(r["base_total_ns"] for r in doc["rows"]) == doc["base_total_ns"]
    assert sum(r["test_total_ns"] for r in doc["rows"]) == doc["test_total_ns"]

    same = runner.invoke(app, ["diff", str(stores["v1"]), str(stores["v1"]), "--fail-on", "step_time>+5%",
                               "--fail-on", "new_kernels>0"])
    assert same.exit_code == 0, same.output
    assert "Gate failed" not in same.stderr

    bad = runner.invoke(app, ["diff", str(stores["v1"]), str(stores["v1"]), "--fail-on", "step_time>>5"])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == (
        "Error: --fail-on 'step_time>>5': expected METRIC>VALUE, e.g. step_time>+5% or new_kernels>0"
    )
    bad = runner.invoke(app, ["diff", str(stores["v1"]), str(stores["v1"]), "--by", "nope"])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "Error: --by nope: expected one of op, kernel, family, phase, step"
    missing = runner.invoke(app, ["diff", str(tmp_path / "nope.json"), str(stores["v1"])])
    assert missing.exit_code == 2
    assert missing.stderr.strip() == f"Error: {tmp_path / 'nope.json'}: no such file or directory"


def test_html_report(stores, tmp_path):
    out = tmp_path / "d.html"
    result = CliRunner().invoke(app, ["diff", str(stores["v1"]), str(stores["v2"]), "--by", "family", "--html",
                                      str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "Differential flame chart" in text and 'id="diff-flame"' in text and "attention" in text
    data = text.split('id="diff-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["by"] == "family"


def _altered_npu_store(src: Path, dst: Path) -> Path:
    """A copy of an Ascend store where argmax ran on AI_CPU and every swiglu launch became 4 device tasks."""
    import shutil

    import duckdb

    shutil.copytree(src, dst)
    part = next((src / "slices").glob("*.parquet"))
    out = dst / "slices" / part.name
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
          WITH s AS (SELECT * REPLACE (CASE WHEN kind = 'kernel' AND name ILIKE '%argmax%' THEN 'AI_CPU' ELSE core END
                                       AS core) FROM read_parquet('{part}')),
          extra AS (SELECT s.* REPLACE (slice_id + 10000000 * k AS slice_id, dur_ns // 4 AS dur_ns)
                    FROM s, range(1, 4) r(k) WHERE kind = 'kernel' AND name ILIKE '%swiglu%')
          SELECT * REPLACE (CASE WHEN kind = 'kernel' AND name ILIKE '%swiglu%' THEN dur_ns // 4 ELSE dur_ns END
                            AS dur_ns) FROM s
          UNION ALL SELECT * FROM extra
        ) TO '{out}' (FORMAT parquet)
        """
    )
    con.close()
    return dst


def test_cross_vendor_aicpu_fallback_and_split(stores, tmp_path):
    altered = _altered_npu_store(stores["npu"], tmp_path / "npu_altered")
    report = run_diff(stores["h200"], altered, by="op", with_summary=False)
    xv = report.cross_vendor
    assert xv["aicpu_fallback"] == ["argmax"]
    assert xv["split_more"] == ["swiglu"]
    ops = {o["op"]: o for o in xv["ops"]}
    assert ops["swiglu"]["test_tasks_per_op"] == 4.0 and ops["swiglu"]["base_tasks_per_op"] == 1.0
    assert ops["argmax"]["test_aicpu_tasks"] == 14 and ops["argmax"]["base_aicpu_tasks"] == 0
    # the split and fallback are also seen the other way round
    back = run_diff(altered, stores["h200"], by="op", with_summary=False).cross_vendor
    assert back["aicpu_fallback"] == ["argmax"] and back["split_more"] == ["swiglu"]


def test_step_and_phase_levels(stores):
    report = run_diff(stores["v1"], stores["v2"], by="step", fail_on=["phase:decode>+5%"], with_summary=False)
    steps = {r.key: r for r in report.rows}
    t1, t2 = truth("runtime_v1")["steps"], truth("runtime_v2")["steps"]
    assert set(steps) == {f"step {s['step']}" for s in t1}
    for a, b in zip(t1, t2, strict=True):
        row = steps[f"step {a['step']}"]
        assert (row.base_total_ns, row.test_total_ns) == (a["dur_ns"], b["dur_ns"])
        assert row.ci_low_pct is None and not row.significant  # one value per step: no spread to measure
    phases = {r.key for r in report.levels["phase"].rows}
    assert phases == {s["phase"] for s in t1}
    assert sum(r.base_total_ns for r in report.levels["phase"].rows) == sum(
        f["total_ns"] for f in truth("runtime_v1")["kernel_families"].values()
    )
    assert report.gates[0].tripped and report.gates[0].reason.startswith("phase:decode (1 rows) changed +7.")


def test_summary_decode_bandwidth_is_that_of_the_decode_steps(tmp_path):
    """The real H200 sample: per-kernel rows (GEMVs near 1.5 TB/s) must not stand in for the steps (0.5-1.0 TB/s)."""
    from traceview.analysis.analyze import run_analyze

    sample = SAMPLES / "real_h200" / "small_decoder_h200.pt.trace.json.gz"
    store = ingest([sample], tmp_path / "h200").store
    bandwidth = run_analyze([store]).result("bandwidth").frame
    steps = sorted(bandwidth.filter(bandwidth["source"] == "step")["achieved_bytes_per_s"].to_list())
    assert len(steps) == 24
    summary = run_diff(store, store, by="kernel", cache_dir=tmp_path).summary["decode_bandwidth_bytes_per_s"]
    assert summary["base"] == summary["test"] == (steps[11] + steps[12]) / 2
