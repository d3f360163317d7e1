"""The terminal text of `traceview diff`: the largest changes, the summary, cross-vendor notes and gates."""

from __future__ import annotations

from typing import Any

from traceview.analysis.diff import DiffReport, DiffRow, SummaryMetric
from traceview.analysis.diff.stats import pct_change

KEY_WIDTH = 60
DEFAULT_TOP = 25


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def render_text(report: DiffReport, top: int = DEFAULT_TOP) -> str:
    """A plain-text table of the `top` largest changes (the rest summed), the summary, cross-vendor, gates."""
    level = report.level
    lines = [
        f"traceview diff --by {report.by}: {report.base} -> {report.test}",
        f"total {_ms(level.base_total_ns)} ms -> {_ms(level.test_total_ns)} ms"
        f" ({_p(pct_change(level.test_total_ns, level.base_total_ns))}); CI over {level.units}"
        f"{' (paired)' if level.paired else ''}, min effect {report.min_effect_pct:g}%",
        "",
        f"{'':1} {'key':{KEY_WIDTH}} {'base ms':>10} {'test ms':>10} {'delta':>9} {'95% CI':>17}"
        f" {'n base':>7} {'n test':>7}",
    ]
    lines += [_row_line(r) for r in level.rows[:top]]
    rest = level.rows[top:]
    if rest:
        b = sum(r.base_total_ns for r in rest)
        t = sum(r.test_total_ns for r in rest)
        other = f"(other: {len(rest)} rows)"
        lines.append(f"  {other:{KEY_WIDTH}} {_ms(b):>10} {_ms(t):>10} {_p(pct_change(t, b)):>9}")
    lines.append("* significant: the interval excludes 0 and |change| >= the minimum effect; or new / vanished")
    if report.summary:
        lines += ["", "Summary"] + [_summary_line(name, m) for name, m in report.summary.items()]
    if report.cross_vendor:
        lines += ["", *_cross_vendor_lines(report.cross_vendor)]
    if report.gates:
        lines += ["", "Gates"] + [f"  {'FAIL' if g.tripped else 'ok'}: {g.expr}: {g.reason}" for g in report.gates]
    return "\n".join(lines) + "\n"


def _row_line(r: DiffRow) -> str:
    ci = "-" if r.ci_low_pct is None or r.ci_high_pct is None else f"{r.ci_low_pct:+.1f}..{r.ci_high_pct:+.1f}%"
    delta = r.status if r.status != "changed" else _p(r.delta_pct)
    mark = "*" if r.significant else " "
    key = r.key if len(r.key) <= KEY_WIDTH else r.key[: KEY_WIDTH - 3] + "..."
    return (
        f"{mark} {key:{KEY_WIDTH}} {_ms(r.base_total_ns):>10} {_ms(r.test_total_ns):>10} {delta:>9} {ci:>17}"
        f" {r.base_count:>7} {r.test_count:>7}"
    )


def _summary_line(name: str, m: SummaryMetric) -> str:
    sig = "*" if m["significant"] else " "
    return f"{sig} {name:30} {_g(m['base']):>14} -> {_g(m['test']):>14} {m['unit']:8} {_p(m['delta_pct'])}"


def _cross_vendor_lines(xv: dict[str, Any]) -> list[str]:
    lines = [
        f"Cross-vendor ({', '.join(xv['base_vendors'])} -> {', '.join(xv['test_vendors'])}),"
        " device time per framework op"
    ]
    for o in sorted(xv["ops"], key=lambda o: -(o["test_device_ns"] - o["base_device_ns"])):
        ratio = "-" if o["ratio"] is None else f"x{o['ratio']:.2f}"
        tpo = f"{o['base_tasks_per_op'] or 0:.1f}/{o['test_tasks_per_op'] or 0:.1f}"
        lines.append(
            f"  {o['op']:40} {_ms(o['base_device_ns']):>10} {_ms(o['test_device_ns']):>10} {ratio:>8}"
            f"  tasks/op {tpo}  AI_CPU {o['base_aicpu_tasks']}/{o['test_aicpu_tasks']}"
        )
    lines.append(f"  slower on test: {', '.join(xv['slower_on_test']) or '-'}")
    lines.append(f"  slower on base: {', '.join(xv['slower_on_base']) or '-'}")
    lines.append(f"  AI_CPU fallback: {', '.join(xv['aicpu_fallback']) or '-'}")
    lines.append(f"  split into many more tasks: {', '.join(xv['split_more']) or '-'}")
    return lines
