"""`traceview throughput`: the points behind the panels match the truth of the synthetic long-context samples."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from traceview.analysis import throughput
from traceview.cli import app
from traceview.reports import charts

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
H200 = SAMPLES / "longctx_h200" / "longctx_h200.pt.trace.json.gz"
ASCEND = SAMPLES / "longctx_910b" / "longctx_910b_ascend_pt"
runner = CliRunner()


def truth(sample: str) -> dict:
    return json.loads((SAMPLES / sample / "truth.json").read_text())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("throughput-cache")


@pytest.fixture(scope="module")
def h200(cache_dir: Path) -> dict:
    return throughput.run_throughput([H200], device_cost=3.6, cache_dir=cache_dir).to_dict()


def test_prefill_points_are_the_prefill_steps(h200: dict) -> None:
    steps = [s for s in truth("longctx_h200")["steps"] if s["phase"] == "prefill"]
    assert [(p["step"], p["prompt_len"], p["wall_ns"]) for p in h200["prefill"]] == [
        (s["step"], s["tokens"], s["dur_ns"]) for s in steps
    ]
    assert {p["trace"] for p in h200["prefill"]} == {"longctx_h200"}


def test_decode_points_follow_the_kv_length(h200: dict) -> None:
    steps = [s for s in truth("longctx_h200")["steps"] if s["phase"] == "decode"]
    assert [(p["step"], p["context_len"], p["wall_ns"], p["tokens"]) for p in h200["decode"]] == [
        (s["step"], s["kv_tokens"], s["dur_ns"], s["tokens"]) for s in steps
    ]
    for point, step in zip(h200["decode"], steps, strict=True):
        assert point["tokens_per_s_wall"] == pytest.approx(step["tokens"] / (step["dur_ns"] / 1e9))
        # 3.6 per hour is 0.001 per second
        assert point["cost_per_million_tokens"] == pytest.approx(0.001 * step["dur_ns"] / 1e9 / step["tokens"] * 1e6)


def test_kv_cache_points(h200: dict) -> None:
    steps = truth("longctx_h200")["steps"]
    per_token = truth("longctx_h200")["model"]["kv_bytes_per_token"]
    assert [(p["step"], p["context_len"], p["kv_bytes"]) for p in h200["kv_cache"]] == [
        (s["step"], s["kv_tokens"], s["kv_cache_bytes"]) for s in steps
    ]
    assert {p["kv_bytes_per_token"] for p in h200["kv_cache"]} == {per_token}


def test_mix_shares_by_family(h200: dict) -> None:
    families = truth("longctx_h200")["kernel_families"]
    assert sum(p["attention_ns"] for p in h200["mix"]) == families["attention"]["total_ns"]
    assert sum(p["gemm_ns"] for p in h200["mix"]) == families["gemm"]["total_ns"]
    assert sum(p["comm_ns"] for p in h200["mix"]) == 0
    for point in h200["mix"]:
        assert sum(point[f"{f}_pct"] for f in throughput.MIX_FAMILIES) == pytest.approx(100.0)
    decode = {p["step"]: p for p in h200["mix"] if p["phase"] == "decode"}
    prefill = {p["step"]: p for p in h200["mix"] if p["phase"] == "prefill"}
    # long prompts spend a growing share in attention (steps 7..10: 8k new tokens over 8k..32k of context)
    shares = [prefill[s]["attention_pct"] for s in (7, 8, 9, 10)]
    assert shares == sorted(shares) and decode


def test_bandwidth_points_are_the_decode_steps(h200: dict) -> None:
    known = {d["step"]: d for d in truth("longctx_h200")["decode_bandwidth"]}
    assert [p["step"] for p in h200["bandwidth"]] == sorted(known)
    for point in h200["bandwidth"]:
        d = known[point["step"]]
        assert point["busy_ns"] == d["device_ns"]
        assert point["achieved_bytes_per_s"] == pytest.approx(d["bytes_per_s"], rel=0.005)
        assert point["peak_bytes_per_s"] == d["peak_bytes_per_s"]


def test_figures_carry_the_points(h200: dict) -> None:
    figures = dict(charts.throughput_figures(h200))
    assert list(figures) == ["prefill", "decode", "kv_cache", "mix", "bandwidth"]
    prefill = figures["prefill"].to_dict()["data"]
    assert list(prefill[0]["x"]) == sorted(p["prompt_len"] for p in h200["prefill"])
    decode = figures["decode"].to_dict()["data"]
    by_name = {d["name"]: d for d in decode}
    steps = sorted(h200["decode"], key=lambda p: (p["context_len"], p["step"]))
    assert list(by_name["longctx_h200 active ms"]["x"]) == [p["context_len"] for p in steps]
    rates = [p["tokens_per_s_active"] for p in steps]
    assert list(by_name["longctx_h200 tokens/s (active)"]["y"]) == pytest.approx(rates)
    assert "longctx_h200 cost per 1M tokens" in by_name
    kv = figures["kv_cache"].to_dict()["data"]
    assert "131,072 B/token" in kv[0]["name"]
    mix = figures["mix"].to_dict()["data"]
    assert {d["name"] for d in mix} == set(throughput.MIX_FAMILIES)
    bandwidth = figures["bandwidth"].to_dict()
    assert bandwidth["layout"]["shapes"][0]["y0"] == pytest.approx(4800.0)  # the H200 peak, GB/s


def test_cli_with_two_traces(tmp_path: Path, cache_dir: Path) -> None:
    out_json, out_html = tmp_path / "tp.json", tmp_path / "tp.html"
    result = runner.invoke(app, ["throughput", str(H200), str(ASCEND), "--json", str(out_json), "--html",
                                 str(out_html), "--cache-dir", str(cache_dir)])
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())
    assert set(data) == {"time_basis", "prefill", "decode", "kv_cache", "mix", "bandwidth"}
    assert {p["trace"] for p in data["decode"]} == {"longctx_h200", "longctx_910b_ascend_pt"}
    ascend = [p for p in data["decode"] if p["trace"] == "longctx_910b_ascend_pt"]
    steps = [s for s in truth("longctx_910b")["steps"] if s["phase"] == "decode"]
    assert [(p["step"], p["context_len"], p["wall_ns"]) for p in ascend] == [
        (s["step"], s["kv_tokens"], s["dur_ns"]) for s in steps
    ]
    for key in ("prefill", "decode", "kv_cache", "mix", "bandwidth"):
        assert f"Plotly.newPlot('tp_{key}'" in out_html.read_text()


def test_no_phases_gives_empty_panels(tmp_path: Path, cache_dir: Path) -> None:
    real_cpu = SAMPLES / "real_cpu" / "tiny_decoder_cpu.pt.trace.json.gz"
    data = throughput.run_throughput([real_cpu], cache_dir=cache_dir).to_dict()
    assert not data["bandwidth"] and not data["mix"]
    assert charts.throughput_figures({"prefill": [], "decode": []}) == []


def test_analyze_html_has_the_flame_chart_and_the_panels(tmp_path: Path, cache_dir: Path) -> None:
    html = tmp_path / "report.html"
    result = runner.invoke(app, ["analyze", str(H200), "--html", str(html), "--cache-dir", str(cache_dir)])
    assert result.exit_code == 0, result.output
    text = html.read_text()
    assert "Flame graph: device time by the host code path that launched it" in text
    for div in ("flame0", "tp_prefill", "tp_decode", "tp_kv_cache", "tp_mix", "tp_bandwidth"):
        assert f"Plotly.newPlot('{div}'" in text


def test_tokens_per_joule_from_power_counters(tmp_path: Path) -> None:
    """A trace with a power counter (constant 500 W) gets tokens per joule on every prefill and decode point."""
    source = Path(__file__).resolve().parents[1] / "sample_traces/longctx_h200/longctx_h200.pt.trace.json.gz"
    doc = json.loads(gzip.decompress(source.read_bytes()))
    spans = [e for e in doc["traceEvents"] if e.get("ph") == "X" and str(e.get("name", "")).startswith("ProfilerStep#")]
    for event in spans:  # one sample at each step start, so every step has one inside it
        doc["traceEvents"].append({"ph": "C", "name": "GPU 0 Power", "pid": 0, "ts": event["ts"], "args": {"W": 500}})
    trace = tmp_path / "powered.json"
    trace.write_text(json.dumps(doc))
    data = throughput.run_throughput([trace], cache_dir=tmp_path / "cache").to_dict()
    points = data["prefill"] + data["decode"]
    assert points and all("tokens_per_joule" in p for p in points)
    for p in points:
        tokens = p.get("prompt_len") or p["tokens"]
        assert p["joules"] == pytest.approx(500 * p["wall_ns"] / 1e9)
        assert p["tokens_per_joule"] == pytest.approx(tokens / (500 * p["wall_ns"] / 1e9))
    plain = throughput.run_throughput([source], cache_dir=tmp_path / "cache").to_dict()
    assert not any("tokens_per_joule" in p for p in plain["prefill"] + plain["decode"])
