"""HTML for `traceview diff`: the delta table, the summary and a differential flame chart (plotly icicle)."""

from __future__ import annotations

import html
import math

from traceview.commands.diff import DiffReport, Side, _finite
from traceview.reports.safe import script_json

SEP = " \u203a "
TREE_KINDS = "('cpu_op', 'annotation', 'step')"
MAX_DEPTH = 8
MAX_NODES = 400


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _tree_rows(side: Side) -> dict[str, int]:
    """Total duration per op-tree path (root to node via parent_id), step numbers folded together."""
    rows = side.con.sql(
        f"""
        WITH RECURSIVE t(trace_id, slice_id, path, dur_ns, depth) AS (
          SELECT trace_id, slice_id, regexp_replace(name, '#\\d+$', ''), dur_ns, 0 FROM slices
          WHERE device_type = 'cpu' AND kind IN {TREE_KINDS} AND parent_id IS NULL
          UNION ALL
          SELECT s.trace_id, s.slice_id, t.path || '{SEP}' || regexp_replace(s.name, '#\\d+$', ''), s.dur_ns,
                 t.depth + 1
          FROM t JOIN slices s ON s.trace_id = t.trace_id AND s.parent_id = t.slice_id
          WHERE s.kind IN {TREE_KINDS} AND t.depth < {MAX_DEPTH}
        )
        SELECT path, CAST(sum(dur_ns) AS BIGINT) FROM t GROUP BY path
        """
    ).fetchall()
    return {path: int(total) for path, total in rows}


def op_tree(base: Side, test: Side) -> dict:
    """Paths of the op tree with their base and test totals (the largest MAX_NODES, ancestors kept)."""
    b, t = _tree_rows(base), _tree_rows(test)
    paths = sorted(set(b) | set(t), key=lambda p: -max(b.get(p, 0), t.get(p, 0)))[:MAX_NODES]
    keep = set(paths)
    for path in list(keep):  # every kept node needs its ancestors
        parts = path.split(SEP)
        for i in range(1, len(parts)):
            keep.add(SEP.join(parts[:i]))
    return {p: [b.get(p, 0), t.get(p, 0)] for p in sorted(keep)}


def flame_figure(tree: dict):
    import plotly.graph_objects as go

    ids, parents, labels, values, colors, text = [], [], [], [], [], []
    for path, (base, test) in tree.items():
        parts = path.split(SEP)
        ids.append(path)
        parents.append(SEP.join(parts[:-1]))
        labels.append(parts[-1])
        values.append(max(base, test))
        pct = (test - base) / base * 100 if base else (100.0 if test else 0.0)
        colors.append(max(-50.0, min(50.0, pct)))
        text.append([f"{base / 1e6:.3f}", f"{test / 1e6:.3f}", "new" if not base else f"{pct:+.1f}%"])
    fig = go.Figure(go.Icicle(
        ids=ids, parents=parents, labels=labels, values=values, branchvalues="remainder",
        marker={"colors": colors, "colorscale": "RdBu_r", "cmid": 0, "cmin": -50, "cmax": 50,
                "colorbar": {"title": "change %"}},
        customdata=text, tiling={"orientation": "v"},
        hovertemplate="%{label}<br>base %{customdata[0]} ms<br>test %{customdata[1]} ms<br>%{customdata[2]}"
                      "<extra></extra>",
    ))
    fig.update_layout(margin={"t": 30, "l": 0, "r": 0, "b": 0}, height=600,
                      title="Differential flame chart (op tree, colour = change of test against base)")
    return fig


def _fmt(value: float | None, spec: str = ".3f", scale: float = 1e6) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value / scale, spec)


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def to_html(report: DiffReport) -> str:
    from traceview.reports.html import figure_div, page

    level = report.levels[report.by]
    parts = [
        "<h1>traceview diff</h1>",
        f"<p>base <code>{_e(report.base)}</code> &rarr; test <code>{_e(report.test)}</code>; by {_e(report.by)};"
        f" confidence intervals over {_e(level.units)}{' (paired)' if level.paired else ''};"
        f" minimum effect {report.min_effect_pct:g}%</p>",
    ]
    if report.gates:
        parts.append("<h2>Gates</h2><ul>")
        for g in report.gates:
            parts.append(f"<li><b>{'FAIL' if g.tripped else 'ok'}</b> <code>{_e(g.expr)}</code>: {_e(g.reason)}</li>")
        parts.append("</ul>")
    if report.summary:
        parts.append("<h2>Summary</h2><table><tr><th>metric</th><th>base</th><th>test</th><th>unit</th>"
                     "<th>change</th><th>95% CI</th><th>significant</th></tr>")
        for name, m in report.summary.items():
            ci = "-" if m["ci_low_pct"] is None else f"{m['ci_low_pct']:+.1f}..{m['ci_high_pct']:+.1f}%"
            parts.append(
                f"<tr><td>{_e(name)}</td><td>{_g(m['base'])}</td>"
                f"<td>{_g(m['test'])}</td><td>{_e(m['unit'])}</td>"
                f"<td>{_pct(m['delta_pct'])}</td><td>{ci}</td>"
                f"<td>{'yes' if m['significant'] else ''}</td></tr>"
            )
        parts.append("</table>")
    parts.append(f"<h2>Rows ({len(level.rows)})</h2><table><tr><th>key</th><th>status</th><th>base n</th>"
                 "<th>test n</th><th>base ms</th><th>test ms</th><th>base share</th><th>test share</th>"
                 "<th>delta ms</th><th>change</th><th>95% CI</th><th>significant</th></tr>")
    for r in level.rows:
        ci = "-" if r.ci_low_pct is None else f"{r.ci_low_pct:+.1f}..{r.ci_high_pct:+.1f}%"
        change = "-" if r.delta_pct is None else f"{r.delta_pct:+.1f}%"
        parts.append(
            f"<tr><td>{_e(r.key)}</td><td>{r.status}</td><td>{r.base_count}</td><td>{r.test_count}</td>"
            f"<td>{_fmt(r.base_total_ns)}</td><td>{_fmt(r.test_total_ns)}</td><td>{r.base_share_pct:.1f}%</td>"
            f"<td>{r.test_share_pct:.1f}%</td><td>{_fmt(r.delta_ns)}</td><td>{change}</td><td>{ci}</td>"
            f"<td>{'yes' if r.significant else ''}</td></tr>"
        )
    parts.append("</table>")
    if report.cross_vendor:
        xv = report.cross_vendor
        parts.append("<h2>Cross-vendor: device time per framework op</h2><table><tr><th>op</th><th>base ms</th>"
                     "<th>test ms</th><th>ratio</th><th>tasks/op base</th><th>tasks/op test</th>"
                     "<th>AI_CPU tasks base</th><th>AI_CPU tasks test</th></tr>")
        for o in xv["ops"]:
            parts.append(
                f"<tr><td>{_e(o['op'])}</td><td>{_fmt(o['base_device_ns'])}</td><td>{_fmt(o['test_device_ns'])}</td>"
                f"<td>{_fmt(o['ratio'], '.2f', 1)}</td>"
                f"<td>{_fmt(o['base_tasks_per_op'], '.1f', 1)}</td><td>{_fmt(o['test_tasks_per_op'], '.1f', 1)}</td>"
                f"<td>{o['base_aicpu_tasks']}</td><td>{o['test_aicpu_tasks']}</td></tr>"
            )
        parts.append("</table>")
        parts.append(f"<p>slower on test: {_e(', '.join(xv['slower_on_test']) or '-')}; slower on base: "
                     f"{_e(', '.join(xv['slower_on_base']) or '-')}; AI_CPU fallback: "
                     f"{_e(', '.join(xv['aicpu_fallback']) or '-')}; split into many more tasks: "
                     f"{_e(', '.join(xv['split_more']) or '-')}</p>")
    if report.op_tree:
        parts.append("<h2>Differential flame chart</h2>")
        parts.append(figure_div(flame_figure(report.op_tree), "diff-flame"))
    data = script_json(_finite(report.to_json_dict()))
    parts.append(f'<script type="application/json" id="diff-data">{data}</script>')
    return page("traceview diff", "".join(parts))
