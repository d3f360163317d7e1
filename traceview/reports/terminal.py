"""The terminal report of `traceview analyze` (rich)."""

from __future__ import annotations

import io

import polars as pl
from rich.console import Console
from rich.table import Table

from traceview.commands.analyze import AnalysisReport
from traceview.reports.finding_groups import group_findings

ROWS_PER_TABLE = 8
MAX_COLUMNS = 9
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _short(value: object, width: int = 48) -> str:
    text = "" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(frame: pl.DataFrame, title: str, single_trace: bool) -> Table:
    columns = [c for c in frame.columns if not (single_trace and c == "trace_id")][:MAX_COLUMNS]
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in frame.select(columns).head(ROWS_PER_TABLE).iter_rows():
        table.add_row(*(_short(v) for v in row))
    if frame.height > ROWS_PER_TABLE:
        table.caption = f"{ROWS_PER_TABLE} of {frame.height} rows (all rows: --json or --html)"
    return table


def render(report: AnalysisReport, width: int = 160, color: bool = False) -> str:
    """The whole report as text."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=not color, highlight=False, force_terminal=color)
    console.print(f"[bold]traceview {report.traceview_version}[/bold] — {len(report.traces)} trace(s)")
    for trace in report.traces:
        versions = ", ".join(f"{k} {v}" for k, v in sorted(trace["tool_versions"].items()))
        devices = ", ".join(sorted(set(trace["device_names"] or []))) or "no device recorded"
        console.print(
            f"  rank {trace['rank']}: {trace['source_path']}  [{trace['content_hash']}]\n"
            f"    format {trace['format']}; devices: {devices}"
            + (f" (peaks: {trace['device_spec']})" if trace.get("device_spec") else "")
            + (f"; {versions}" if versions else ""),
            markup=False,
        )
    console.print()
    if report.findings:
        console.print(f"[bold]Findings ({len(report.findings)})[/bold]")
        for group in group_findings(report.findings):
            style = SEVERITY_STYLE.get(group.severity, "")
            for finding in group.shown:
                console.print(f"  [{style}]{finding.severity:<8}[/{style}] ", end="")
                console.print(f"{finding.query}: {finding.message}", markup=False)
            if group.more:
                console.print(
                    f"  {'':<8} … and {len(group.more)} more {group.severity} findings of {group.query}"
                    " (all: --json or --html)",
                    markup=False,
                )
    else:
        console.print("[bold]Findings[/bold]: none")
    for error in report.errors:
        console.print(f"  [red]error[/red]    {error}", markup=True)
    single = len(report.traces) <= 1
    for result in report.results:
        if result.frame is None or result.frame.is_empty():
            continue
        console.print()
        console.print(_table(result.frame, f"{result.query.title} ({result.query.name})", single))
    return buffer.getvalue()
