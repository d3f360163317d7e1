"""CI gates (`--fail-on`): `METRIC OP VALUE[%]` on a summary metric, a count of new/vanished rows, or
`LEVEL:GLOB`, the summed rows of a level whose key matches the glob (case-insensitive)."""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable

from traceview.analysis.diff.report import LEVELS, DiffReport, Gate
from traceview.analysis.diff.stats import pct_change
from traceview.analysis.diff.summary import SUMMARY_METRICS
from traceview.errors import UserError

_GATE = re.compile(r"^\s*(?P<metric>[^<>=]+?)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[+-]?\d+(?:\.\d+)?)\s*(?P<pct>%?)\s*$")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le
}  # fmt: skip
COUNT_GATES = {
    "new_kernels": ("kernel", "new"),
    "vanished_kernels": ("kernel", "vanished"),
    "new_ops": ("op", "new"),
    "vanished_ops": ("op", "vanished"),
}
SHOWN_KEYS = 3  # keys named in a count gate's reason


def parse_gate(expr: str) -> tuple[str, str, float, bool]:
    """(metric, comparison, value, value is a %); a UserError naming the expression when it is malformed."""
    match = _GATE.match(expr)
    if not match:
        raise UserError(f"--fail-on {expr!r}: expected METRIC>VALUE, e.g. step_time>+5% or new_kernels>0")
    metric = match["metric"]
    if ":" in metric:
        level = metric.split(":", 1)[0]
        if level not in LEVELS:
            raise UserError(f"--fail-on {expr!r}: unknown level {level!r}, expected one of {', '.join(LEVELS)}")
    elif metric not in COUNT_GATES and metric not in SUMMARY_METRICS:
        known = ", ".join(sorted(set(COUNT_GATES) | set(SUMMARY_METRICS)))
        raise UserError(f"--fail-on {expr!r}: unknown metric {metric!r}, expected LEVEL:GLOB or one of {known}")
    if metric in COUNT_GATES and match["pct"]:
        raise UserError(f"--fail-on {expr!r}: {metric} is a count, not a percentage")
    return metric, match["op"], float(match["value"]), bool(match["pct"])


def gate_levels(exprs: list[str]) -> set[str]:
    """The levels the gates read rows of (each is diffed besides the `--by` level)."""
    levels = set()
    for expr in exprs:
        metric = parse_gate(expr)[0]
        if ":" in metric:
            levels.add(metric.split(":", 1)[0])
        elif metric in COUNT_GATES:
            levels.add(COUNT_GATES[metric][0])
    return levels


def evaluate_gate(expr: str, report: DiffReport) -> Gate:
    """Whether gate EXPR trips on REPORT, with the measured change and the limit in its reason."""
    metric, op, value, pct = parse_gate(expr)
    limit = f"{op}{value:+g}{'%' if pct else ''}"
    if metric in COUNT_GATES:
        return _count_gate(expr, metric, op, value, limit, report)
    if ":" in metric:
        level, pattern = metric.split(":", 1)
        rows = [r for r in report.levels[level].rows if fnmatch.fnmatchcase(r.key.lower(), pattern.lower())]
        if not rows:
            return Gate(expr, False, f"{metric}: no {level} rows match")
        base: float = sum(r.base_total_ns for r in rows)
        test: float = sum(r.test_total_ns for r in rows)
        name = f"{metric} ({len(rows)} rows)"
    else:
        entry = report.summary.get(metric)
        if not entry or entry["base"] is None or entry["test"] is None:
            return Gate(expr, False, f"{metric}: not measured on both sides")
        base, test, name = entry["base"], entry["test"], metric
    if pct:
        change = pct_change(test, base)
        if change is None:
            change = math.inf if test > 0 else 0.0
        reason = f"{name} changed {change:+.1f}% ({_g(base)} -> {_g(test)}), limit {limit}"
    else:
        change = test - base
        reason = f"{name} changed {change:+g} ({_g(base)} -> {_g(test)}), limit {limit}"
    return Gate(expr, bool(_COMPARE[op](change, value)), reason)


def _count_gate(expr: str, metric: str, op: str, value: float, limit: str, report: DiffReport) -> Gate:
    level, status = COUNT_GATES[metric]
    keys = [r.key for r in report.levels[level].rows if r.status == status]
    shown = ", ".join(keys[:SHOWN_KEYS]) + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")
    reason = f"{metric} = {len(keys)}" + (f" ({shown})" if keys else "") + f", limit {limit}"
    return Gate(expr, bool(_COMPARE[op](len(keys), value)), reason)


def _g(value: float) -> str:
    return f"{value:.6g}"
