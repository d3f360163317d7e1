"""The analyze report, read in a minute: human units, times from the trace start, tables ranked by impact and
capped, one line for an analysis with nothing to say, distinct short names, shares with their denominator,
a data-quality section in all three outputs, and an HTML page that stays short."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from conftest import CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st

from traceview.analysis.analyze import run_analyze
from traceview.analysis.report import AnalysisReport
from traceview.packs import PackError, find_pack, parse_query
from traceview.reports import html, json_report, terminal
from traceview.reports.names import shorten_names
from traceview.sandbox import QueryResult

START = 1_716_423_322_416_788_066  # an epoch time stamp in ns, as traces have them
HEADER = """-- title: Demo
-- description: A demo analysis. With a second sentence that the HTML folds away.
-- units: ts_ns=ts, share_pct=% of device busy time, util=% of peak memory bandwidth
-- order: util desc
-- empty: no demo rows: a demo trace
"""


def _query(tmp_path: Path, header: str = HEADER):
    path = tmp_path / "demo.sql"
    path.write_text(header + "SELECT 1 AS x\n")
    return parse_query(path)


def _report(tmp_path: Path, frame: pl.DataFrame, header: str = HEADER) -> AnalysisReport:
    trace = {
        "trace_id": "t1",
        "rank": 0,
        "source_path": "a.json",
        "content_hash": "h",
        "format": "kineto",
        "device_names": [],
        "device_spec": None,
        "tool_versions": {},
        "start_ns": START,
    }
    return AnalysisReport([trace], [QueryResult(_query(tmp_path, header), frame, [])])


def test_terminal_and_html_show_human_units_per_column_and_json_keeps_exact_ns(tmp_path: Path) -> None:
    frame = pl.DataFrame({"name": ["k"], "mean_ns": [1_129_000.0], "bytes": [3_500_000_000], "share_pct": [12.345]})
    report = _report(tmp_path, frame)
    text = terminal.render(report)
    assert "e+0" not in text and "1129000" not in text
    assert re.search(r"mean \(ms\).*bytes \(GB\).*share %", text)
    assert re.search(r"1\.13 .* 3\.50 .* 12\.3", text)
    page = html.to_html(report)
    assert ">1.13</td>" in page and ">3.50</td>" in page and "e+06" not in page
    doc = json.loads(json_report.to_json(report))
    assert doc["results"]["demo"] == [{"name": "k", "mean_ns": 1129000.0, "bytes": 3500000000, "share_pct": 12.345}]
    assert doc["units"]["demo"] == {"mean_ns": "ns", "bytes": "bytes", "share_pct": "% of device busy time"}


def test_time_stamps_are_shown_from_the_trace_start(tmp_path: Path) -> None:
    frame = pl.DataFrame({"trace_id": ["t1"], "ts_ns": [START + 5_000_000], "dur_ns": [250]})
    report = _report(tmp_path, frame)
    text = terminal.render(report)
    assert "ts (ms from start)" in text and str(START)[:10] not in text
    assert re.search(r"\b5\.00\b", text) and "dur (ns)" in text
    assert json.loads(json_report.to_json(report))["results"]["demo"][0]["ts_ns"] == START + 5_000_000


def test_tables_are_ranked_by_impact_and_capped(tmp_path: Path) -> None:
    """Rows come in time order; the reports show the most saturated first: 10 in the terminal, 50 in the
    HTML with the rest behind one click, all of them (in the query's order) in the JSON."""
    rows = 120
    frame = pl.DataFrame({"step": list(range(rows)), "util": [float(n % 97) for n in range(rows)]})
    report = _report(tmp_path, frame)
    text = terminal.render(report)
    steps = [int(m) for m in re.findall(r"^\s+(\d+) │", text, flags=re.M)]
    expected = frame.sort("util", descending=True, maintain_order=True)["step"].to_list()
    assert steps == expected[:10]
    assert "top 10 of 120 rows by util (all rows: --json or --html)" in text
    assert "util: % of peak memory bandwidth" in text
    page = html.to_html(report)
    shown, _, hidden = page.partition("<details><summary>70 more rows</summary>")
    assert shown.count("<tr>") == 2 + 1 + 50  # the traces table (header, row), then the header and 50 rows
    assert hidden.count("<tr>") == 70 + 1
    doc = json.loads(json_report.to_json(report))
    assert [r["step"] for r in doc["results"]["demo"]] == list(range(rows))


def test_an_analysis_with_nothing_to_say_is_one_line(tmp_path: Path) -> None:
    report = _report(tmp_path, pl.DataFrame({"x": []}, schema={"x": pl.Int64}))
    text = terminal.render(report)
    assert "Demo (demo): no demo rows: a demo trace\n" in text
    assert '<p class="empty"><b>Demo</b> <small>(demo)</small>: no demo rows: a demo trace</p>' in html.to_html(report)
    assert json.loads(json_report.to_json(report))["empty"] == {"demo": "no demo rows: a demo trace"}


def test_rows_without_evidence_say_nothing(tmp_path: Path) -> None:
    """kv_cache on a training trace: a row per step, every memory and KV column null."""
    header = HEADER + "-- evidence: kv_bytes, memory_events\n"
    frame = pl.DataFrame(
        {"step": [4, 5], "phase": ["training"] * 2, "kv_bytes": [None, None], "memory_events": [None, None]},
        schema={"step": pl.Int64, "phase": pl.String, "kv_bytes": pl.Int64, "memory_events": pl.Int64},
    )
    text = terminal.render(_report(tmp_path, frame, header))
    assert "Demo (demo): no demo rows: a demo trace\n" in text and "training" not in text


def test_core_pack_declares_how_to_show_every_query() -> None:
    pack = find_pack("core")
    for query in pack.queries:
        shown = query.presentation
        assert shown.order and shown.empty, query.name
    shares = {q.name: {c: str(u) for c, u in q.presentation.units.items() if u.unit == "%"} for q in pack.queries}
    assert shares["hotspots"]["share_pct"].startswith("% of busy time")
    assert shares["kernel_families"]["share_pct"] == "% of device task time"
    row_span = "% of the row's span (step device window / outside steps / device span)"
    assert shares["busy_breakdown"] == {"idle_pct": row_span, "comm_not_overlapped_pct": row_span}
    assert shares["gap_histogram"] == {"share_of_span_pct": "% of device span"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("-- units: total_ns=furlongs", "units needs 'COLUMN=UNIT' with UNIT one of ns, ts, bytes, B/s, %, got"),
        ("-- order: total_ns sideways", "order needs 'COLUMN [asc|desc][, ...]', got 'total_ns sideways'"),
        ("-- evidence: a b", "evidence 'a b': not a column name"),
    ],
)
def test_bad_presentation_lines_are_pack_errors(tmp_path: Path, line: str, problem: str) -> None:
    with pytest.raises(PackError) as caught:
        _query(tmp_path, line + "\n")
    assert str(caught.value).startswith(f"{tmp_path / 'demo.sql'}:1: {problem}")


NAMES = st.lists(
    st.one_of(
        st.text(min_size=0, max_size=120),
        st.builds(
            lambda a, b: f"void {a}<{b}>(float*, int)", st.text("ab:_<>, ", max_size=60), st.text("xy,", max_size=60)
        ),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(NAMES, st.integers(min_value=24, max_value=80))
def test_shortened_names_stay_distinct_and_fit(names: list[str], width: int) -> None:
    short = shorten_names(names, width)
    assert set(short) == set(names)
    assert len(set(short.values())) == len(short)
    assert all(len(form) <= width for form in short.values())
    assert all(short[name] == name for name in names if len(name) <= width)


def test_kernel_names_keep_the_part_that_differs() -> None:
    first = "void cudnn::bn_bw_1C11_kernel_new<float, float, float2, 128, true, 1>(float, float, float const*)"
    second = first.replace("128", "512")
    short = shorten_names([first, second], 40)
    assert "128" in short[first] and "512" in short[second]
    assert shorten_names(["ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)"], 40)


PARTIAL_ASCEND = CORPUS / "ascend" / "torch_npu_cann83_level2"
NCCL_TRAINING = CORPUS / "kineto" / "hta" / "nccl_parser_config" / "nccl_data.json.gz"


@pytest.fixture(scope="module")
def partial_ascend(tmp_path_factory: pytest.TempPathFactory) -> AnalysisReport:
    return run_analyze([PARTIAL_ASCEND], cache_dir=tmp_path_factory.mktemp("cache"))


def test_data_quality_names_the_files_a_rank_lacks_in_all_three_outputs(partial_ascend: AnalysisReport) -> None:
    missing = "rank 1: partial dump: trace_view.json, kernel_details.csv not found"
    absent = "rank 1: no events were read; the rank is absent from every table"
    text = terminal.render(partial_ascend, width=200)
    assert "Data quality (5)" in text and missing in text and absent in text
    assert "rank 0: 2463 of 2463 device tasks have no launch record" in text
    page = html.to_html(partial_ascend)
    assert "<h2>Data quality (5)</h2>" in page and missing in page and absent in page
    notes = json.loads(json_report.to_json(partial_ascend))["data_quality"]
    assert {(n["kind"], n["rank"], n["message"]) for n in notes} >= {("partial", 1, missing), ("no_events", 1, absent)}


def _visible(page: str) -> str:
    """What the page shows before the flame graph without a click: no scripts, no folded details."""
    page = page.split("<h2>Flame graph")[0]
    page = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    return re.sub(r"<details.*?</details>", "", page, flags=re.S)


def test_html_of_a_real_training_trace_stays_short(tmp_path: Path) -> None:
    """A height proxy: table rows, text and the longest cell shown before the flame graph without a click
    (before: 371 rows, 97k characters, a 9,358-character cell; 30,500 px in Chromium at 1280 px wide. After:
    208 rows, 23k characters, 199; 10,700 px)."""
    report = run_analyze([NCCL_TRAINING], cache_dir=tmp_path, sections=True)
    page = _visible(html.to_html(report))
    text = re.sub(r"<[^>]+>", "", page)
    assert page.count("<tr>") <= 250
    assert len(text) <= 30_000
    assert max(len(cell) for cell in re.findall(r"<td[^>]*>([^<]*)</td>", page)) <= 200
