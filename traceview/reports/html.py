"""The HTML pages of analyze, flame and throughput: one self-contained file each (plotly.js inlined).

The pages are jinja2 templates (traceview/reports/templates) rendered by traceview.reports.templating with
autoescaping on: every string from a trace is HTML-escaped in the page; plotly labels are entity-escaped and
the figure JSON is embedded script-safe by the `figure` filter. This module only prepares the values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from traceview.analysis.flame import DEFAULT_MIN_SHARE, FlameResult, build_tree
from traceview.analysis.report import AnalysisReport
from traceview.reports import charts
from traceview.reports.cluster_html import cluster_view
from traceview.reports.finding_groups import group_findings
from traceview.reports.tables import prepare, ranks_tell_traces_apart, trace_starts
from traceview.reports.templating import render

ROWS_SHOWN = 50  # rows of a table shown by impact; the next ones one click away
MAX_TABLE_ROWS = 500  # rows of a table in the page at all; the JSON report has every row
NAME_WIDTH = 60  # a long name is shortened to this many characters; the full name is the cell's title
TRACE_COLUMNS = ["rank", "source", "content hash", "format", "devices", "peaks from", "versions"]
WEIGHT_TITLES = {
    "wall": "wall time",
    "self": "self time",
    "device": "device time by the host code path that launched it",
}


@dataclass
class FlameView:
    """What the flame section shows."""

    title: str
    total_ms: float
    share_pct: str
    unattributed_ms: float
    figure: Any
    div_id: str


@dataclass
class ThroughputView:
    """What the throughput section shows: (name, figure) panels, each drawn into `<prefix>_<name>`."""

    figures: list[tuple[str, Any]]
    cost: object
    prefix: str


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def flame_view(result: FlameResult, min_share: float | None = None, div_id: str = "flame0") -> FlameView:
    """The flame section of a FlameResult (frames under `min_share` of the total folded into 'other')."""
    share = DEFAULT_MIN_SHARE if min_share is None else min_share
    title = f"Flame graph: {WEIGHT_TITLES[result.weight.value]}"
    title += f", step {result.step}" if result.step is not None else ""
    tree = build_tree(result, share)
    figure = charts.flame_icicle(tree.ids, tree.labels, tree.parents, tree.values, title) if tree.ids else None
    unattributed = result.info.get("unattributed_ns", 0) / 1e6
    return FlameView(title, result.total_ns / 1e6, f"{share:.1%}", unattributed, figure, div_id)


def throughput_view(data: dict, prefix: str = "tp") -> ThroughputView:
    """The throughput panels of `Throughput.to_dict()` (none when there are no points)."""
    return ThroughputView(charts.throughput_figures(data), data.get("device_cost_per_hour"), prefix)


def _summary(description: str) -> tuple[str, str]:
    """A description's first sentence, and the rest (shown on request)."""
    head, dot, rest = description.partition(". ")
    return (head + dot.strip(), rest) if rest else (description, "")


def _result_sections(report: AnalysisReport) -> list[dict[str, Any]]:
    sections: list[dict[str, Any]] = []
    hide_trace_id = ranks_tell_traces_apart(report.traces)
    starts = trace_starts(report.traces)
    for result in report.results:
        if result.frame is None:
            continue  # it failed: listed with the errors
        table = prepare(result, starts, MAX_TABLE_ROWS, NAME_WIDTH, hide_trace_id)
        make_figure = charts.FIGURES.get(result.query.name)
        figure = make_figure(result.frame) if make_figure is not None and not table.empty else None
        summary, more = _summary(result.query.description)
        sections.append(
            {
                "table": table,
                "summary": summary,
                "more": more,
                "figure": figure,
                "div_id": f"chart{sum(s['figure'] is not None for s in sections)}",
                "shown": table.rows[:ROWS_SHOWN],
                "hidden": table.rows[ROWS_SHOWN:],
            }
        )
    return sections


def _trace_rows(report: AnalysisReport) -> list[list[str]]:
    return [
        [
            _cell(t["rank"]),
            _cell(t["source_path"]),
            _cell(t["content_hash"]),
            _cell(t["format"]),
            ", ".join(sorted(set(t["device_names"]))),
            _cell(t.get("device_spec")),
            json.dumps(t["tool_versions"], sort_keys=True),
        ]
        for t in report.traces
    ]


def to_html(report: AnalysisReport) -> str:
    """The analysis report as one HTML document (with its flame and throughput sections where computed)."""
    return render(
        "report.html.j2",
        title="traceview report",
        version=report.traceview_version,
        trace_columns=TRACE_COLUMNS,
        trace_rows=_trace_rows(report),
        finding_count=len(report.findings),
        groups=group_findings(report.findings),
        errors=report.errors,
        quality=report.quality,
        results=_result_sections(report),
        flame=flame_view(report.flame) if report.flame is not None else None,
        throughput=throughput_view(report.throughput.to_dict()) if report.throughput is not None else None,
        cluster=cluster_view(report.cluster) if report.cluster is not None else None,
        unavailable=list(report.unavailable.values()),
    )


def flame_page(result: FlameResult, min_share: float | None = None) -> str:
    """`traceview flame --html`: the icicle chart on a page of its own."""
    return render("flame.html.j2", title="traceview flame graph", flame=flame_view(result, min_share))


def throughput_page(data: dict) -> str:
    """`traceview throughput --html`: the panels on a page of their own (data: Throughput.to_dict())."""
    return render("throughput.html.j2", title="traceview throughput", throughput=throughput_view(data))
