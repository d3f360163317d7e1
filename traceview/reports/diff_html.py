"""HTML for `traceview diff` (templates/diff.html.j2): gates, summary, the delta table, cross-vendor notes,
a differential flame chart (plotly icicle) and the report's JSON in a data script element."""

from __future__ import annotations

import math
from typing import Any

from traceview.analysis.diff import DiffReport
from traceview.analysis.diff.op_tree import SEP
from traceview.reports.templating import render

MAX_COLOUR_PCT = 50.0  # the colour scale's ends, in % change


def to_html(report: DiffReport) -> str:
    """The diff as a self-contained page; the flame chart where the report holds an op tree."""
    flame = flame_figure(report.op_tree) if report.op_tree else None
    return render("diff.html.j2", title="traceview diff", report=report, flame=flame, g=_g, pct=_pct, ci=_ci,
                  num=_num)  # fmt: skip


def flame_figure(tree: dict[str, list[int]]) -> Any:
    """A plotly icicle of the op tree: width the larger side's time, colour the change of test against base."""
    import plotly.graph_objects as go

    ids, parents, labels, values, colors, text = [], [], [], [], [], []
    for path, (base, test) in tree.items():
        parts = path.split(SEP)
        ids.append(path)
        parents.append(SEP.join(parts[:-1]))
        labels.append(parts[-1])
        values.append(max(base, test))
        pct = (test - base) / base * 100 if base else (100.0 if test else 0.0)
        colors.append(max(-MAX_COLOUR_PCT, min(MAX_COLOUR_PCT, pct)))
        text.append([f"{base / 1e6:.3f}", f"{test / 1e6:.3f}", "new" if not base else f"{pct:+.1f}%"])
    fig = go.Figure(go.Icicle(
        ids=ids, parents=parents, labels=labels, values=values, branchvalues="remainder",
        marker={"colors": colors, "colorscale": "RdBu_r", "cmid": 0, "cmin": -MAX_COLOUR_PCT,
                "cmax": MAX_COLOUR_PCT, "colorbar": {"title": "change %"}},
        customdata=text, tiling={"orientation": "v"},
        hovertemplate="%{label}<br>base %{customdata[0]} ms<br>test %{customdata[1]} ms<br>%{customdata[2]}"
                      "<extra></extra>",
    ))  # fmt: skip
    fig.update_layout(margin={"t": 30, "l": 0, "r": 0, "b": 0}, height=600,
                      title="Differential flame chart (op tree, colour = change of test against base)")  # fmt: skip
    return fig


def _num(value: float | None, spec: str = ".3f", scale: float = 1e6) -> str:
    """value / scale formatted (ns as ms by default); '-' for none or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value / scale, spec)


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def _ci(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:+.1f}..{high:+.1f}%"
