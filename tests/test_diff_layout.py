"""`traceview diff` as a library (traceview.analysis.diff) with renderers (reports/diff_text, diff_html) and a
thin command: imports go one way, the renderers take a DiffReport, the library's JSON is what the CLI writes."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

from typer.testing import CliRunner

from traceview import jsonify
from traceview.analysis.diff import DiffReport, DiffRow, Gate, LevelDiff, diff
from traceview.analysis.diff.summary import metric
from traceview.cli import app
from traceview.reports.diff_html import to_html
from traceview.reports.diff_text import render_text

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "traceview"
SAMPLE = ROOT / "sample_traces" / "runtime_v1" / "runtime_v1.pt.trace.json.gz"
EVIL = "<script>alert(1)</script>"
ABOVE_REPORTS = ("traceview.cli", "traceview.commands")


def traceview_imports(path: Path) -> set[str]:
    """Every traceview module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {name for name in found if name.split(".")[0] == "traceview"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_diff_imports_go_one_way() -> None:
    library = sorted((PACKAGE / "analysis" / "diff").glob("*.py"))
    assert {p.name for p in library} >= {"__init__.py", "alignment.py", "gates.py", "stats.py", "summary.py"}
    for path in library:
        upward = {m for m in traceview_imports(path) if m.startswith((*ABOVE_REPORTS, "traceview.reports"))}
        assert not upward, (path.name, upward)
    for name in ("diff_text.py", "diff_html.py"):
        upward = {m for m in traceview_imports(PACKAGE / "reports" / name) if m.startswith(ABOVE_REPORTS)}
        assert not upward, (name, upward)


def test_diff_modules_have_no_import_cycle() -> None:
    files = [*(PACKAGE / "analysis" / "diff").glob("*.py"), PACKAGE / "reports" / "diff_text.py",
             PACKAGE / "reports" / "diff_html.py", PACKAGE / "commands" / "diff.py"]  # fmt: skip
    names = {module_name(p): p for p in files}
    graph = {name: {m for m in traceview_imports(p) if m in names and m != name} for name, p in names.items()}
    graph["traceview.analysis.diff"] -= {m for m in names if m.startswith("traceview.analysis.diff.")}  # re-exports

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    assert not [name for name in graph if reaches(name, name, set())]


def test_diff_command_is_thin() -> None:
    assert len((PACKAGE / "commands" / "diff.py").read_text().splitlines()) < 150


def row(key: str, base_ns: int, test_ns: int, status: str = "changed", ci: tuple = (None, None)) -> DiffRow:
    return DiffRow(
        key=key, base_count=1, test_count=1, base_total_ns=base_ns, test_total_ns=test_ns,
        base_mean_ns=float(base_ns), test_mean_ns=float(test_ns), base_p50_ns=None, test_p50_ns=math.nan,
        base_share_pct=50.0, test_share_pct=50.0, delta_ns=test_ns - base_ns,
        delta_pct=(test_ns - base_ns) / base_ns * 100 if base_ns else None, ci_low_pct=ci[0], ci_high_pct=ci[1],
        significant=status != "changed", status=status,
    )  # fmt: skip


def hand_made_report(with_sections: bool) -> DiffReport:
    rows = [row(EVIL, 1_000_000, 3_000_000, ci=(10.0, 250.0)), row("gemm", 2_000_000, 1_000_000),
            row("new one", 0, 500_000, status="new")]  # fmt: skip
    level = LevelDiff("kernel", rows, 3_000_000, 4_500_000, "steps", True)
    report = DiffReport("base & co", "test", "kernel", {"kernel": level}, {}, 2.0)
    if with_sections:
        report.summary = {"step_time": metric(100.0, 150.0, "ns", 2.0, (40.0, 60.0)),
                          "idle_pct": metric(math.nan, 5.0, "%", 2.0)}  # fmt: skip
        report.gates = [Gate(f"kernel:{EVIL}>+5%", True, "changed +200.0%")]
        report.cross_vendor = {
            "base_vendors": ["cuda"], "test_vendors": ["npu"],
            "ops": [{"op": EVIL, "base_device_ns": 10, "test_device_ns": 0, "ratio": None, "base_tasks_per_op": 2.0,
                     "test_tasks_per_op": None, "base_aicpu_tasks": 0, "test_aicpu_tasks": 3}],
            "slower_on_test": [], "slower_on_base": [], "aicpu_fallback": [EVIL], "split_more": [],
        }  # fmt: skip
        report.op_tree = {"forward": [1000, 2000], f"forward \u203a {EVIL}": [500, 0]}
    return report


def test_text_renderer_takes_a_report() -> None:
    lines = render_text(hand_made_report(with_sections=True), top=2).splitlines()
    assert lines[0] == "traceview diff --by kernel: base & co -> test"
    assert lines[1] == "total 3.000 ms -> 4.500 ms (+50.0%); CI over steps (paired), min effect 2%"
    assert lines[4].split() == ["<script>alert(1)</script>", "1.000", "3.000", "+200.0%", "+10.0..+250.0%", "1", "1"]
    assert lines[6].split() == ["(other:", "1", "rows)", "0.000", "0.500", "-"]
    assert "  FAIL: kernel:<script>alert(1)</script>>+5%: changed +200.0%" in lines
    assert "  AI_CPU fallback: <script>alert(1)</script>" in lines
    assert lines[lines.index("Summary") + 2].split() == ["idle_pct", "nan", "->", "5", "%", "-"]


def test_html_renderer_escapes_every_trace_string_and_writes_nan_as_null() -> None:
    for with_sections in (False, True):
        report = hand_made_report(with_sections)
        page = to_html(report)
        body = re.sub(r"<script[^>]*>.*?</script>", "", page.split("</head>", 1)[1], flags=re.S)
        assert EVIL not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "base &amp; co" in body
        data = page.split('<script type="application/json" id="diff-data">', 1)[1].split("</script>", 1)[0]
        assert "<" not in data
        assert json.loads(data) == json.loads(jsonify.dumps(report.to_json()))
        assert json.loads(data)["rows"][0]["test_p50_ns"] is None
        assert ('id="diff-flame"' in page) == with_sections
        assert ("<h2>Cross-vendor" in body) == with_sections


def test_library_json_is_what_the_cli_writes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    out = tmp_path / "d.json"
    gates = ["step_time>+5%", "new_kernels>0"]
    args = ["diff", str(SAMPLE), str(SAMPLE), "--by", "family", "--json", str(out), "--cache-dir", str(cache)]
    result = CliRunner().invoke(app, [*args, *(a for g in gates for a in ("--fail-on", g))])
    assert result.exit_code == 0, result.output
    report = diff(SAMPLE, SAMPLE, by="family", fail_on=gates, cache_dir=cache)
    assert out.read_text() == jsonify.dumps(report.to_json(), indent=True)
    assert [g.tripped for g in report.gates] == [False, False]
    assert set(report.levels) == {"family", "kernel"}
