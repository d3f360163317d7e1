"""`traceview analyze`: the terminal report, --json, --html (escaped, self-contained), several targets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import small_kineto_events, write_kineto, x_event
from typer.testing import CliRunner

from traceview.analysis.analyze import run_analyze
from traceview.cli import app

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def evil_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small trace whose kernel is named like a script element."""
    events = small_kineto_events()
    base = 1712195495519689
    events.append(x_event(EVIL, f"{base + 20}.000", "30.000", cat="kernel", pid=0, tid=7,
                          args={"device": 0, "stream": 7, "correlation": 99}))
    return write_kineto(tmp_path_factory.mktemp("evil") / "evil.json", events)


def test_json_report_shape(evil_trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["analyze", str(evil_trace), "--json", str(out), "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(doc) >= {"traces", "findings", "results"}
    (trace,) = doc["traces"]
    assert trace["source_path"] == str(evil_trace) and trace["content_hash"].startswith("xxh3_128:")
    assert {"hotspots", "busy_breakdown", "launch_gaps", "phases", "kv_cache", "bandwidth"} <= set(doc["results"])
    kernels = [r for r in doc["results"]["hotspots"] if r["level"] == "device"]
    assert {r["name"] for r in kernels} == {EVIL, "void gemm_kernel<float>(float*)"}
    assert all({"query", "severity", "message"} <= set(f) for f in doc["findings"])
    # the terminal report names the trace and its hash, so a figure can be reproduced
    assert trace["content_hash"] in result.stdout and "traceview 0.1.0" in result.stdout


def test_html_report_escapes_trace_strings_and_is_self_contained(evil_trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["analyze", str(evil_trace), "--html", str(out), "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert EVIL not in page  # neither in a table nor inside a figure's script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert any("Plotly" in s and len(s) > 1_000_000 for s in scripts)  # plotly.js inlined
    assert not re.search(r"<script[^>]+src=", page) and "https://" not in page.split("<script>")[0]


def test_several_targets_side_by_side(tmp_path: Path) -> None:
    first = write_kineto(tmp_path / "a.json", small_kineto_events(4))
    second = write_kineto(tmp_path / "b.json", small_kineto_events(6))
    report = run_analyze([first, second], cache_dir=tmp_path / "cache")
    assert sorted(t["source_path"] for t in report.traces) == [str(first), str(second)]
    ops = report.result("hotspots").frame.filter(report.result("hotspots").frame["level"] == "host")
    assert ops["trace_id"].n_unique() == 2


def test_extra_pack_and_bad_pack(evil_trace: Path, tmp_path: Path) -> None:
    pack = tmp_path / "mine"
    pack.mkdir()
    (pack / "kernel_count.sql").write_text(
        "-- finding: n > 1 => info: {n} kernels\nSELECT count(*) AS n FROM kernels\n"
    )
    report = run_analyze([evil_trace], [pack], cache_dir=tmp_path / "cache")
    assert report.result("kernel_count").frame.to_dicts() == [{"n": 2}]
    assert any(f.query == "kernel_count" and f.message == "2 kernels" for f in report.findings)
    result = CliRunner().invoke(app, ["analyze", str(evil_trace), "--pack", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'nope'}: not a directory of .sql files\n"


def test_peak_bw_override_reaches_bandwidth(tmp_path: Path) -> None:
    sample = SAMPLES / "longctx_h200" / "longctx_h200.pt.trace.json.gz"
    report = run_analyze([sample], peak_bw_gbps=1000.0, cache_dir=tmp_path)
    peaks = set(report.result("bandwidth").frame["peak_bytes_per_s"].drop_nulls().to_list())
    assert peaks == {1000e9}


def test_queries_run_a_few_at_a_time_with_their_own_time_limits(evil_trace: Path, tmp_path: Path) -> None:
    """Results keep the pack's order and equal a one-by-one run; a slow query times out alone."""
    from traceview.packs import load_pack
    from traceview.paths import cache_store_for
    from traceview.sandbox import run_query, sandboxed_connection

    pack = tmp_path / "mine"
    pack.mkdir()
    (pack / "a_slow.sql").write_text("SELECT count(*) AS n FROM range(100000000) a, range(100000000) b\n")
    (pack / "b_kernels.sql").write_text("SELECT name, dur_ns FROM kernels ORDER BY name\n")
    (pack / "c_broken.sql").write_text("SELECT no_such_column FROM slices\n")
    (pack / "d_ops.sql").write_text("SELECT count(*) AS n FROM ops\n")
    report = run_analyze([evil_trace], [pack], cache_dir=tmp_path / "cache", limit_s=2.0)
    mine = [r for r in report.results if r.query.path.parent == pack]
    assert [r.query.name for r in mine] == ["a_slow", "b_kernels", "c_broken", "d_ops"]
    assert mine[0].timed_out and "no_such_column" in mine[2].error
    con = sandboxed_connection(cache_store_for([evil_trace], tmp_path / "cache"))
    for query, result in zip(load_pack(pack).queries, mine, strict=True):
        alone = run_query(con, query, limit_s=2.0)
        if query.name in ("b_kernels", "d_ops"):
            assert result.error is None and result.frame.to_dicts() == alone.frame.to_dicts()


def test_reports_show_the_first_findings_of_a_query_and_count_the_rest() -> None:
    """Seven findings of one query: five shown and "2 more" in the terminal; all of them in the HTML and JSON."""
    from traceview.analysis.report import AnalysisReport
    from traceview.reports.finding_groups import group_findings
    from traceview.reports.html import to_html
    from traceview.reports.terminal import render
    from traceview.sandbox import Finding

    findings = [Finding("busy", "warning", f"idle step {n}", {}) for n in range(7)]
    findings += [Finding("spikes", "info", f"spike {n}", {}) for n in range(2)]
    groups = group_findings(findings)
    assert [(g.query, len(g.shown), len(g.more)) for g in groups] == [("busy", 5, 2), ("spikes", 2, 0)]
    report = AnalysisReport(traces=[], results=[], findings=findings)
    text = render(report)
    assert [n for n in range(7) if f"busy: idle step {n}\n" in text] == [0, 1, 2, 3, 4]
    assert "… and 2 more warning findings of busy (all: --json or --html)" in text
    assert "spikes: spike 1" in text and "more info findings" not in text
    page = to_html(report)
    assert all(f"idle step {n}</li>" in page for n in range(7))
    assert "<details><summary>2 more warning findings of <b>busy</b></summary>" in page
