"""`traceview diff BASE TEST`: run the diff (traceview.analysis.diff) and render what the options ask for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from traceview import jsonify
from traceview.analysis.diff import DiffReport, diff
from traceview.reports.diff_html import to_html
from traceview.reports.diff_text import render_text


@dataclass
class DiffOutputs:
    """The report and its renderings: each None where it was not asked for."""

    report: DiffReport
    text: str | None
    json: str | None
    html: str | None


def run_diff(
    base: Path,
    test: Path,
    by: str,
    fail_on: list[str],
    min_effect: float,
    top: int,
    cache_dir: Path | None,
    *,
    text: bool,
    json: bool,
    html: bool,
) -> DiffOutputs:
    """Diff TEST against BASE and render the terminal text, JSON and HTML that are wanted."""
    report = diff(base, test, by, fail_on, min_effect, cache_dir=cache_dir, with_tree=html)
    return DiffOutputs(
        report=report,
        text=render_text(report, top) if text else None,
        json=jsonify.dumps(report.to_json(), indent=True) if json else None,
        html=to_html(report) if html else None,
    )
