"""The library API: traceview.analyze / flame / throughput next to traceview.open, results with .to_json()."""

from __future__ import annotations

from pathlib import Path

import pytest
from fresh_python import fresh_python
from typer.testing import CliRunner

import traceview
from traceview import jsonify
from traceview.analysis import flame as flame_analysis
from traceview.analysis.analyze import FLAME_SECTION, THROUGHPUT_SECTION, run_analyze
from traceview.cli import app

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
REAL_CPU = SAMPLES / "real_cpu" / "tiny_decoder_cpu.pt.trace.json.gz"


def test_import_traceview_is_light() -> None:
    code = (
        "import sys, traceview; print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('duckdb', 'polars', 'plotly', 'typer') or m.startswith('traceview.')))"
    )
    assert fresh_python(code) == "['traceview._version']"


def test_analyze_with_sections_and_to_json(tmp_path: Path) -> None:
    report = traceview.analyze([REAL_CPU], cache_dir=tmp_path, sections=True)
    assert report.flame is not None and report.flame.weight is flame_analysis.Weight.wall
    assert report.throughput is not None and report.unavailable == {}
    document = report.to_json()
    keys = {"traceview_version", "traces", "data_quality", "findings", "errors", "results", "units", "empty"}
    assert set(document) == keys
    assert jsonify.dumps(document)
    assert traceview.analyze([REAL_CPU], cache_dir=tmp_path).flame is None  # sections only when asked for


def test_flame_and_throughput_to_json(tmp_path: Path) -> None:
    result = traceview.flame([REAL_CPU], weight="self", cache_dir=tmp_path)
    document = result.to_json()
    assert document["weight"] == "self" and sum(s["ns"] for s in document["stacks"]) == result.total_ns
    points = traceview.throughput([REAL_CPU], cache_dir=tmp_path).to_json()
    assert set(points) == {"time_basis", "prefill", "decode", "kv_cache", "mix", "bandwidth"}


def test_a_failing_section_is_stated_not_fatal_unless_strict(tmp_path: Path, monkeypatch) -> None:
    def boom(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(flame_analysis, "compute_flame", boom)
    report = run_analyze([REAL_CPU], cache_dir=tmp_path, sections=True)
    assert report.flame is None and report.unavailable == {FLAME_SECTION: "flame chart left out (RuntimeError: boom)"}
    assert THROUGHPUT_SECTION not in report.unavailable and report.throughput is not None
    with pytest.raises(RuntimeError, match="boom"):
        run_analyze([REAL_CPU], cache_dir=tmp_path, sections=True, strict=True)
    result = CliRunner().invoke(
        app, ["analyze", str(REAL_CPU), "--html", str(tmp_path / "r.html"), "--cache-dir", str(tmp_path)]
    )
    assert result.exit_code == 0 and "Warning: flame chart left out (RuntimeError: boom)" in result.stderr
    result = CliRunner().invoke(
        app, ["--debug", "analyze", str(REAL_CPU), "--html", str(tmp_path / "r.html"), "--cache-dir", str(tmp_path)]
    )
    assert result.exit_code == 3


def test_diff_from_the_package(tmp_path: Path) -> None:
    samples = Path(__file__).resolve().parents[1] / "sample_traces"
    base = next((samples / "runtime_v1").glob("*.json.gz"))
    test = next((samples / "runtime_v2").glob("*.json.gz"))
    report = traceview.diff(str(base), str(test), by="family", fail_on=["step_time>+5%"], cache_dir=str(tmp_path))
    document = report.to_json()
    assert "diff" in traceview.__all__
    assert {"rows", "summary", "gates"} <= set(document)
    assert [g["expr"] for g in document["gates"]] == ["step_time>+5%"]
