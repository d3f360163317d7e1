"""`traceview flame`: folded stacks add up, device time lands on its launchers, the icicle's data is consistent."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import write_kineto, x_event
from typer.testing import CliRunner

from traceview.analysis import flame
from traceview.cli import app
from traceview.engine import connect, resolve_store

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
H200 = SAMPLES / "longctx_h200" / "longctx_h200.pt.trace.json.gz"
ASCEND = SAMPLES / "longctx_910b" / "longctx_910b_ascend_pt"
REAL_CPU = SAMPLES / "real_cpu" / "tiny_decoder_cpu.pt.trace.json.gz"
runner = CliRunner()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flame-cache")


def _con(target: Path, cache_dir: Path) -> duckdb.DuckDBPyConnection:
    return connect([resolve_store(target, cache_dir)])


def _folded_sum(text: str) -> int:
    total = 0
    for line in text.splitlines():
        stack, _, value = line.rpartition(" ")
        assert stack and ";" not in value
        total += int(value)
    return total


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.sql(sql).fetchall()[0][0] or 0)


@pytest.mark.parametrize("target", [H200, ASCEND, REAL_CPU], ids=["h200", "910b", "real_cpu"])
def test_folded_values_add_up_to_the_weight_total(target: Path, cache_dir: Path) -> None:
    con = _con(target, cache_dir)
    try:
        wall = flame.compute_flame(con, "wall")
        assert _folded_sum(wall.folded()) == wall.total_ns > 0
        assert all(v >= 0 for v in wall.stacks.values())
        self_ = flame.compute_flame(con, "self")
        expected_self = _scalar(con, "SELECT sum(self_ns) FROM slices WHERE device_type = 'cpu'")
        assert _folded_sum(self_.folded()) == self_.total_ns == expected_self
        # the wall total itself (each thread's time in host slices, once): tests/test_flame_wall.py
    finally:
        con.close()


def test_device_time_is_attributed_to_the_launching_code_path(cache_dir: Path) -> None:
    con = _con(H200, cache_dir)
    try:
        result = flame.compute_flame(con, "device")
        known = _scalar(con, """
            SELECT sum(d.dur_ns) FROM device_tasks d
            WHERE EXISTS (SELECT 1 FROM slices r WHERE r.trace_id = d.trace_id AND r.correlation = d.correlation
                          AND r.kind = 'runtime' AND r.device_type = 'cpu')""")
        busy = _scalar(con, "SELECT sum(dur_ns) FROM device_tasks")
    finally:
        con.close()
    assert result.info["attributed_ns"] == known > 0
    assert _folded_sum(result.folded()) == result.total_ns == busy
    # every stack runs from the step through the op and the launch call to the device task
    for stack in result.stacks:
        assert stack[0] == "ProfilerStep#*"
        assert stack[-2].startswith("cuda") and stack[-1].startswith(flame.DEVICE_PREFIX)
    attention = sum(v for s, v in result.stacks.items() if "flash::" in s[-1])
    assert attention == 521806370  # truth.json kernel_families.attention.total_ns


def test_ascend_device_time_goes_to_the_framework_ops(cache_dir: Path) -> None:
    con = _con(ASCEND, cache_dir)
    try:
        result = flame.compute_flame(con, "device")
        busy = _scalar(con, "SELECT sum(dur_ns) FROM device_tasks")
    finally:
        con.close()
    assert result.info == {"attributed_ns": busy, "unattributed_ns": 0}
    ops = {stack[1] for stack in result.stacks}
    assert {"aten::matmul", "npu::npu_fused_infer_attention_score"} <= ops


def test_names_are_normalised_so_steps_merge(tmp_path: Path) -> None:
    events = []
    for i in range(3):
        t = i * 1000
        events += [
            x_event(f"ProfilerStep#{i + 1}", t, 900, cat="user_annotation"),
            x_event(f"forward 0x{0x7f00 + i:x} id 123456{i}", t + 10, 500),
            x_event("aten::mm", t + 20, 100 + i),
        ]
    trace = tmp_path / "t.pt.trace.json"
    write_kineto(trace, events)
    result = flame.run_flame([trace], "wall", cache_dir=tmp_path / "cache")
    assert set(result.stacks) == {
        ("ProfilerStep#*",), ("ProfilerStep#*", "forward 0x? id #"), ("ProfilerStep#*", "forward 0x? id #", "aten::mm")
    }
    assert result.stacks[("ProfilerStep#*", "forward 0x? id #", "aten::mm")] == (100 + 101 + 102) * 1000
    assert result.total_ns == 3 * 900_000
    step2 = flame.run_flame([trace], "wall", step=2, cache_dir=tmp_path / "cache")
    assert step2.total_ns == 900_000
    assert step2.stacks[("ProfilerStep#*", "forward 0x? id #", "aten::mm")] == 101_000


def test_icicle_tree_rolls_small_frames_into_other(cache_dir: Path) -> None:
    result = flame.run_flame([H200], "device", cache_dir=cache_dir)
    tree = flame.build_tree(result, min_share=0.01)
    assert tree.ids and len(tree.ids) == len(set(tree.ids))
    value = dict(zip(tree.ids, tree.values, strict=True))
    roots = [i for i, p in zip(tree.ids, tree.parents, strict=True) if p == ""]
    assert sum(value[r] for r in roots) == result.total_ns
    for parent in tree.parents:  # branchvalues='total' needs parent >= children
        if parent:
            children = [value[c] for c, p in zip(tree.ids, tree.parents, strict=True) if p == parent]
            assert sum(children) <= value[parent]
    small = [v for v, label in zip(tree.values, tree.labels, strict=True) if label != flame.OTHER]
    assert min(small) >= 0.01 * result.total_ns
    from traceview.reports import charts

    fig = charts.flame_icicle(tree.ids, tree.labels, tree.parents, tree.values, "t").to_dict()
    icicle = fig["data"][0]
    assert icicle["type"] == "icicle" and icicle["branchvalues"] == "total"
    assert list(icicle["ids"]) == tree.ids and len(icicle["values"]) == len(tree.ids)


def test_flame_cli(tmp_path: Path, cache_dir: Path) -> None:
    folded, html = tmp_path / "f.txt", tmp_path / "f.html"
    out = runner.invoke(app, ["flame", str(H200), "--weight", "device", "--folded", str(folded), "--html", str(html),
                              "--cache-dir", str(cache_dir)])
    assert out.exit_code == 0, out.output
    assert _folded_sum(folded.read_text()) == 1796391578
    assert "Plotly.newPlot('flame0'" in html.read_text()
    out = runner.invoke(app, ["flame", str(H200), "--weight", "cpu", "--cache-dir", str(cache_dir)])
    assert out.exit_code == 2 and "--weight must be one of" in out.output
    out = runner.invoke(app, ["flame", str(tmp_path / "missing.json")])
    assert out.exit_code == 2 and "no such file" in out.output


def test_analyze_html_survives_a_failing_flame(tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    def boom(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(flame, "compute_flame", boom)
    html = tmp_path / "r.html"
    out = runner.invoke(app, ["analyze", str(REAL_CPU), "--html", str(html), "--cache-dir", str(cache_dir)])
    assert out.exit_code == 0, out.output
    assert "flame chart left out (RuntimeError: boom)" in html.read_text()
