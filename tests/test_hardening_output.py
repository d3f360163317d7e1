"""Nothing from a trace controls the terminal or the page: a malicious trace through every command.

The trace is runtime_v1 with its busiest kernel named like an HTML injection, its matmul op named with
terminal escapes (OSC window title, clear screen, rich markup, a bidi override, an 8-bit CSI), its device
name carrying an escape, and its file name too. No output may carry a raw control character, plotly
labels are entity-escaped, and JSON inside a script element cannot end or corrupt it.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from traceview.analysis.diff import normalise_kernel
from traceview.cli import app
from traceview.reports.safe import (
    json_terminal_safe,
    plotly_safe,
    plotly_text,
    script_json,
    script_safe_json_text,
    terminal_safe,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_traces"
HTML_NAME = '<a href="https://evil.example/">x</a><b>y</b><!--<script>'
TERM_NAME = "aten::mm\x1b]0;pwned\x07\x1b[2J[bold]bold[/] \u202eexe.txt \x9b31m"
TERM_SHOWN = "aten::mm\\x1b]0;pwned\\x07\\x1b[2J[bold]bold[/] \\u202eexe.txt \\x9b31m"
DEVICE_NAME = "NVIDIA H200\x1b]0;device\x07"
GEMM = (
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64_warpgroupsize1x1x1_execute_segment_k_on_kernel"
    "__5x_cublas"
)
# What must never reach a terminal raw (the same set terminal_safe escapes).
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
runner = CliRunner()


def malicious_copy(sample: str, directory: Path) -> Path:
    """A sample trace with hostile names, written under a hostile file name."""
    doc = json.loads(gzip.decompress((SAMPLES / sample / f"{sample}.pt.trace.json.gz").read_bytes()))
    renames = {GEMM: HTML_NAME, "aten::mm": TERM_NAME}
    for event in doc["traceEvents"]:
        event["name"] = renames.get(event.get("name"), event.get("name"))
    doc["deviceProperties"][0]["name"] = DEVICE_NAME
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{sample}\x1b]0;title\x07<i>&amp;.pt.trace.json.gz"  # no "[": see the report
    path.write_bytes(gzip.compress(json.dumps(doc).encode(), mtime=0))
    return path


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evil")
    return {
        "base": malicious_copy("runtime_v1", root / "in"),
        "test": malicious_copy("runtime_v2", root / "in"),
        "cache": root / "cache",
        "root": root,
    }


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def assert_terminal_safe(result: Any) -> None:
    """Neither stream carries a raw control character, and nothing crashed."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for stream in (result.stdout, result.stderr):
        assert not RAW_CONTROL.search(stream), RAW_CONTROL.findall(stream)


# ---------------------------------------------------------------------------------------------
# The functions.


def test_terminal_safe_escapes_controls_visibly_and_keeps_newlines_and_tabs() -> None:
    text = "a\x1b]0;t\x07b\x1b[2J\r\x00\x7f\x85\x9b\u202e\u2066\ud800\tc\nd é ü 中"
    assert terminal_safe(text) == "a\\x1b]0;t\\x07b\\x1b[2J\\x0d\\x00\\x7f\\x85\\x9b\\u202e\\u2066\\ud800\tc\nd é ü 中"
    assert terminal_safe(terminal_safe(text)) == terminal_safe(text)


def test_json_escapes_are_lossless() -> None:
    value = {"name": "</script><!--<b>&\u2028\u2029\x7f\x9b\u202e\x1b"}
    text = script_json(value)
    assert not re.search("[<>&\u2028\u2029\x7f-\x9f\u202e\x1b]", text)
    assert json.loads(text) == value
    assert json.loads(json_terminal_safe(json.dumps(value, ensure_ascii=False))) == value
    assert script_safe_json_text('"a<b"') == '"a\\u003cb"'


def test_plotly_safe_escapes_labels_but_not_our_templates() -> None:
    fig = {
        "data": [{"labels": [HTML_NAME], "hovertemplate": "%{label}<br>x<extra></extra>", "x": ["a&b"]}],
        "layout": {"title": {"text": "<b>t</b>"}, "template": {"layout": {"font": {"family": "<x>"}}}},
    }
    safe = plotly_safe(fig)
    assert safe["data"][0]["labels"] == [
        '&lt;a href="https://evil.example/"&gt;x&lt;/a&gt;&lt;b&gt;y&lt;/b&gt;&lt;!--&lt;script&gt;'
    ]
    assert safe["data"][0]["hovertemplate"] == "%{label}<br>x<extra></extra>"
    assert safe["data"][0]["x"] == ["a&amp;b"]
    assert safe["layout"]["title"]["text"] == "&lt;b&gt;t&lt;/b&gt;"
    assert safe["layout"]["template"] == fig["layout"]["template"]


# ---------------------------------------------------------------------------------------------
# The commands over the malicious trace.


def test_analyze_terminal_report_shows_escapes_visibly(evil: dict[str, Path], tmp_path: Path) -> None:
    html_out, json_out = tmp_path / "r.html", tmp_path / "r.json"
    result = invoke(
        "analyze",
        str(evil["base"]),
        "--cache-dir",
        str(evil["cache"]),
        "--html",
        str(html_out),
        "--json",
        str(json_out),
    )
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result)
    assert "devices: NVIDIA H200\\x1b]0;device\\x07" in result.stdout
    assert "runtime_v1\\x1b]0;title\\x07<i>&amp;.pt.trace.json.gz" in result.stdout
    assert "HTML report: " in result.stderr and "\\x1b]0;title" not in result.stderr
    # the JSON report keeps the names exactly (JSON escapes control characters itself)
    report = json.loads(json_out.read_text())
    assert report["traces"][0]["device_names"] == [DEVICE_NAME]
    check_html_page(html_out.read_text())


def test_analyze_pack_titles_and_errors_are_not_markup(evil: dict[str, Path], tmp_path: Path) -> None:
    """A pack's title with rich markup and escapes is shown literally; a failing query's error too."""
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.toml").write_text('name = "evil"\nversion = "1"\ndescription = "x"\n')
    (pack / "evil_q.sql").write_text(
        "-- title: [bold red]T[/] \x1b]0;t\x07 [/]\n-- finding: true => warning: found {name}\n"
        "SELECT DISTINCT name FROM slices WHERE name LIKE 'aten::mm%'\n"
    )
    (pack / "broken_q.sql").write_text('-- title: broken\nSELECT "no_such_column_\x1b" FROM slices\n')
    result = invoke("analyze", str(evil["base"]), "--cache-dir", str(evil["cache"]), "--pack", str(pack))
    assert_terminal_safe(result)
    assert result.exit_code == 0, result.output
    assert "[bold red]T[/] \\x1b]0;t\\x07 [/] (evil_q)" in result.stdout
    assert f"warning  evil_q: found {TERM_SHOWN}" in result.stdout
    assert "no_such_column_\\x1b" in result.stdout


def test_query_table_csv_json_to_the_terminal(evil: dict[str, Path], tmp_path: Path) -> None:
    sql = "SELECT DISTINCT name FROM slices WHERE name LIKE 'aten::mm%'"
    cache = str(evil["cache"])
    table = invoke("query", str(evil["base"]), sql, "--cache-dir", cache)
    assert_terminal_safe(table)
    assert TERM_SHOWN in table.stdout  # no markup read: "[bold]" and "[/]" are shown as written
    csv = invoke("query", str(evil["base"]), sql, "-f", "csv", "--cache-dir", cache)
    assert_terminal_safe(csv)
    assert csv.stdout == f"name\n{TERM_SHOWN}\n"
    as_json = invoke("query", str(evil["base"]), sql, "-f", "json", "--cache-dir", cache)
    assert_terminal_safe(as_json)
    assert json.loads(as_json.stdout) == [{"name": TERM_NAME}]
    out = tmp_path / "names.csv"
    to_file = invoke("query", str(evil["base"]), sql, "-f", "csv", "-o", str(out), "--cache-dir", cache)
    assert to_file.exit_code == 0
    assert out.read_text() == f"name\n{TERM_NAME}\n"  # data written to a file stays exact


def test_query_error_is_escaped_and_redacted(tmp_path: Path) -> None:
    result = invoke("query", str(tmp_path / "HF_TOKEN=abc123\x1b]0;t\x07.json"), "select 1")
    assert result.exit_code == 2
    assert_terminal_safe(result)
    assert result.stderr.startswith("Error: ")
    assert "abc123" not in result.stderr and "HF_TOKEN=<redacted>" in result.stderr


def test_diff_text_and_html(evil: dict[str, Path], tmp_path: Path) -> None:
    html_out = tmp_path / "diff.html"
    result = invoke(
        "diff",
        str(evil["base"]),
        str(evil["test"]),
        "--by",
        "op",
        "--cache-dir",
        str(evil["cache"]),
        "--html",
        str(html_out),
        "--fail-on",
        "step_time>-100%",
    )
    assert_terminal_safe(result)
    assert TERM_SHOWN in result.stdout
    text = html_out.read_text()
    check_html_page(text)
    data = text.split('id="diff-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data and "&" not in data
    assert TERM_NAME in {row["key"] for row in json.loads(data)["rows"]}


def test_diff_by_kernel_html_keeps_the_data_json_intact(evil: dict[str, Path], tmp_path: Path) -> None:
    html_out = tmp_path / "diff.html"
    result = invoke(
        "diff", str(evil["base"]), str(evil["test"]), "--cache-dir", str(evil["cache"]), "--html", str(html_out)
    )
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result)
    data = html_out.read_text().split('id="diff-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and normalise_kernel(HTML_NAME) == "xy<!--"
    assert normalise_kernel(HTML_NAME) in {row["key"] for row in json.loads(data)["rows"]}


def test_flame_folded_to_stdout(evil: dict[str, Path]) -> None:
    result = invoke("flame", str(evil["base"]), "--folded", "-", "--cache-dir", str(evil["cache"]))
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result)
    assert TERM_SHOWN.replace(";", ":") in result.stdout  # flame writes ';' in names as ':'


def test_flame_html_escapes_labels(evil: dict[str, Path], tmp_path: Path) -> None:
    html_out = tmp_path / "flame.html"
    result = invoke(
        "flame", str(evil["base"]), "--weight", "device", "--html", str(html_out), "--cache-dir", str(evil["cache"])
    )
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result)
    check_html_page(html_out.read_text())
    assert plotly_text(f"[device] {HTML_NAME}") in figure_strings(html_out.read_text())


def test_throughput(evil: dict[str, Path], tmp_path: Path) -> None:
    html_out = tmp_path / "tp.html"
    result = invoke("throughput", str(evil["base"]), "--html", str(html_out), "--cache-dir", str(evil["cache"]))
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result)
    assert "HTML: " in result.stderr
    check_html_page(html_out.read_text())
    assert any("&lt;i&gt;&amp;amp;" in text for text in figure_strings(html_out.read_text()))


def test_packs_check_problems_are_escaped(tmp_path: Path) -> None:
    pack = tmp_path / "pack\x1b]0;t\x07"
    pack.mkdir()
    (pack / "pack.toml").write_text('name = "evil"\nversion = "1"\ndescription = "x"\n')
    (pack / "q.sql").write_text('-- title: [b]x[/]\nSELECT "col\x1b[2J" FROM slices\n')
    result = invoke("packs", "check", str(pack))
    assert result.exit_code == 2
    assert_terminal_safe(result)
    assert "col\\x1b[2J" in result.stderr


def test_ingest_warnings_are_escaped_and_redacted(tmp_path: Path) -> None:
    events = [
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1, "dur": 2},
        {"ph": "\x1b]0;t\x07", "name": "b", "pid": 1, "tid": 1, "ts": 1},
    ]
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps({"traceEvents": events, "ERROR": ["bad \x1b[2J HF_TOKEN=abc123"]}))
    result = invoke("ingest", str(trace), "-o", str(tmp_path / "s.traceview"))
    assert result.exit_code == 0, result.output
    assert_terminal_safe(result)
    assert "phases \\x1b]0;t\\x07 are not modelled" in result.stderr
    assert "profiler reported: bad \\x1b[2J HF_TOKEN=<redacted>" in result.stderr


# ---------------------------------------------------------------------------------------------
# HTML.


def check_html_page(text: str) -> None:
    """The hostile names appear only escaped: in the page, in plotly labels, in script JSON."""
    assert 'href="https://evil.example/"' not in text and "<!--<script>" not in text
    assert "<b>y</b>" not in text and "<i>&amp;" not in text
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", text, re.S)
    for body in scripts[1:]:  # scripts[0] is plotly.js
        assert not re.search("[<>&\u2028\u2029]", body), body[:200]
    figures = [json.loads(spec) for spec in re.findall(r"var f=(.*?);Plotly\.newPlot", text)]
    assert figures
    for figure in figures:
        for key, value in strings(figure):
            assert key in {"hovertemplate", "texttemplate"} or "<" not in value, (key, value)


def figure_strings(text: str) -> set[str]:
    """Every string in the page's plotly figures."""
    figures = [json.loads(spec) for spec in re.findall(r"var f=(.*?);Plotly\.newPlot", text)]
    return {value for figure in figures for _, value in strings(figure)}


def strings(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Every (key, string) in a figure's JSON, the theme left out."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [pair for k, v in value.items() if k != "template" for pair in strings(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in strings(v, key)]
    return []


def test_colored_terminal_report_has_only_its_own_colour_codes() -> None:
    """On a terminal (colours on) trace text is still escaped, redacted and never read as markup."""
    import dataclasses

    import polars as pl

    from traceview.analysis.report import AnalysisReport
    from traceview.packs import find_pack
    from traceview.reports import terminal
    from traceview.sandbox import Finding, QueryResult

    query = dataclasses.replace(find_pack("core").queries[0], title="[bold]T\x1b]0;t\x07[/]")
    trace = {
        "rank": 0,
        "source_path": f"a\x1b[2J{HTML_NAME}",
        "content_hash": "h",
        "format": "kineto",
        "device_names": [DEVICE_NAME],
        "device_spec": None,
        "tool_versions": {"torch": "\x1b[5m"},
    }
    finding = Finding(query.name, "warning", f"slow {TERM_NAME} HF_TOKEN=abc123", {})
    report = AnalysisReport(
        [trace],
        [QueryResult(query, pl.DataFrame({"name": [TERM_NAME]}), [finding])],
        [finding],
        errors=["broken [/] \x1b]0;e\x07"],
    )
    text = terminal.render(report, color=True)
    without_colours = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert not RAW_CONTROL.search(without_colours), RAW_CONTROL.findall(without_colours)
    assert "HF_TOKEN=<redacted>" in without_colours and "abc123" not in without_colours
    assert TERM_SHOWN in without_colours and "[bold]T\\x1b]0;t\\x07[/]" in without_colours
    assert "broken [/] \\x1b]0;e\\x07" in without_colours and "torch \\x1b[5m" in without_colours
