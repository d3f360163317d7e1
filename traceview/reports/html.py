"""The HTML report: one self-contained file (plotly.js inlined) that opens offline.

Every string that comes from a trace is escaped: HTML-escaped in the page, entity-escaped in plotly labels
(plotly reads a subset of HTML there), and the figure JSON embedded with `<`, `>`, `&`, U+2028/9 as `\\uXXXX`
so that no name can close or corrupt the script element.
"""

from __future__ import annotations

import html
import json

import plotly.io as pio
from plotly.offline import get_plotlyjs

from traceview import charts
from traceview.commands.analyze import AnalysisReport
from traceview.reports.finding_groups import group_findings
from traceview.reports.safe import plotly_safe, script_json
from traceview.sandbox import Finding

MAX_TABLE_ROWS = 200
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:8px 0 24px}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;max-width:420px;overflow-wrap:anywhere}
th{background:#f4f4f4}.critical{color:#b00020;font-weight:bold}.warning{color:#a15c00}.info{color:#005f8f}
.chart{width:100%;min-height:380px}
"""


def _e(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return html.escape(f"{value:.6g}")
    return html.escape(str(value))


def _table(columns: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure_div(fig, div_id: str) -> str:
    """A div plus the script that draws `fig` into it (labels escaped for plotly, the JSON safely embedded)."""
    spec = script_json(plotly_safe(json.loads(pio.to_json(fig, validate=False))))
    return (
        f'<div id="{div_id}" class="chart"></div>'
        f"<script>(function(){{var f={spec};Plotly.newPlot('{div_id}',f.data,f.layout,"
        f"{{displaylogo:false,responsive:true}});}})();</script>"
    )


def page(title: str, body: str) -> str:
    """A complete self-contained HTML page with plotly.js inlined."""
    return (
        f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>{body}</body></html>\n"
    )


def _finding_item(finding: Finding) -> str:
    return (
        f'<li><span class="{_e(finding.severity)}">{_e(finding.severity)}</span> '
        f"<b>{_e(finding.query)}</b>: {_e(finding.message)}</li>"
    )


def to_html(report: AnalysisReport, extra_sections: list[str] | None = None) -> str:
    """Render the analysis report as one HTML document."""
    parts = [f"<h1>traceview report</h1><p>traceview {_e(report.traceview_version)}</p>", "<h2>Traces</h2>"]
    parts.append(
        _table(
            ["rank", "source", "content hash", "format", "devices", "peaks from", "versions"],
            [
                (t["rank"], t["source_path"], t["content_hash"], t["format"], ", ".join(sorted(set(t["device_names"]))),
                 t.get("device_spec"), json.dumps(t["tool_versions"], sort_keys=True))
                for t in report.traces
            ],
        )
    )
    parts.append(f"<h2>Findings ({len(report.findings)})</h2><ul>")
    for group in group_findings(report.findings):
        parts += [_finding_item(f) for f in group.shown]
        if group.more:
            parts.append(
                f"<li><details><summary>{len(group.more)} more {_e(group.severity)} findings of"
                f" <b>{_e(group.query)}</b></summary><ul>{''.join(_finding_item(f) for f in group.more)}</ul>"
                "</details></li>"
            )
    parts.append("</ul>")
    for error in report.errors:
        parts.append(f'<p class="critical">error: {_e(error)}</p>')
    chart_index = 0
    for result in report.results:
        if result.frame is None or result.frame.is_empty():
            continue
        parts.append(f"<h2>{_e(result.query.title)} <small>({_e(result.query.name)})</small></h2>")
        if result.query.description:
            parts.append(f"<p>{_e(result.query.description)}</p>")
        make_figure = charts.FIGURES.get(result.query.name)
        if make_figure is not None:
            parts.append(figure_div(make_figure(result.frame), f"chart{chart_index}"))
            chart_index += 1
        frame = result.frame.head(MAX_TABLE_ROWS)
        parts.append(_table(frame.columns, frame.rows()))
        if result.frame.height > MAX_TABLE_ROWS:
            parts.append(f"<p>{MAX_TABLE_ROWS} of {result.frame.height} rows; the JSON report has all.</p>")
    parts.extend(extra_sections or [])
    return page("traceview report", "".join(parts))


def flame_section(result, min_share: float | None = None, div_id: str = "flame0") -> str:
    """An HTML section with the icicle chart of a FlameResult (traceview.commands.flame)."""
    from traceview.commands.flame import DEFAULT_MIN_SHARE, build_tree

    share = DEFAULT_MIN_SHARE if min_share is None else min_share
    tree = build_tree(result, share)
    what = {"wall": "wall time", "self": "self time", "device": "device time by the host code path that launched it"}
    title = f"Flame graph: {what[result.weight.value]}" + (f", step {result.step}" if result.step is not None else "")
    parts = [f"<h2>{_e(title)}</h2>",
             f"<p>total {result.total_ns / 1e6:.3f} ms; frames under {share:.1%} of the total are folded into"
             f" &quot;other&quot;; identical stacks merged, ProfilerStep#N shown as ProfilerStep#*.</p>"]
    if result.info.get("unattributed_ns"):
        parts.append(f"<p>{result.info['unattributed_ns'] / 1e6:.3f} ms of device time has no known host launcher.</p>")
    if not tree.ids:
        parts.append("<p>no host slices.</p>")
        return "".join(parts)
    fig = charts.flame_icicle(tree.ids, tree.labels, tree.parents, tree.values, title)
    parts.append(figure_div(fig, div_id))
    return "".join(parts)


def throughput_section(data: dict, prefix: str = "tp") -> str:
    """An HTML section with the throughput panels (data: Throughput.to_dict())."""
    figures = charts.throughput_figures(data)
    if not figures:
        return ""
    parts = ["<h2>Throughput vs context length</h2>"]
    if data.get("device_cost_per_hour") is not None:
        parts.append(f"<p>cost per million tokens at {_e(data['device_cost_per_hour'])} per device-hour.</p>")
    for name, fig in figures:
        parts.append(figure_div(fig, f"{prefix}_{name}"))
    return "".join(parts)
