"""The terminal report of `traceview analyze` (rich).

Text from the traces and packs goes in as rich `Text` (never read as markup), redacted and terminal-safe
(see traceview.reports.safe), so the only escape sequences in the output are rich's own colours.
"""

from __future__ import annotations

import io

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from traceview.analysis.report import AnalysisReport
from traceview.parsers.redact import redact_text
from traceview.reports.finding_groups import group_findings
from traceview.reports.safe import terminal_safe

ROWS_PER_TABLE = 8
MAX_COLUMNS = 9
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def shown(value: object) -> str:
    """Untrusted text as it may be shown in a terminal: secrets redacted, control characters escaped."""
    return terminal_safe(redact_text(str(value)))


def _short(value: object, width: int = 48) -> Text:
    text = "" if value is None else (f"{value:.4g}" if isinstance(value, float) else shown(value))
    return Text(text if len(text) <= width else text[: width - 1] + "…")


def _table(frame: pl.DataFrame, title: str, single_trace: bool) -> Table:
    columns = [c for c in frame.columns if not (single_trace and c == "trace_id")][:MAX_COLUMNS]
    table = Table(title=Text(title), title_justify="left", show_edge=False, header_style="bold")
    for name in columns:
        table.add_column(Text(shown(name)), overflow="fold")
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
        line = (
            f"  rank {trace['rank']}: {trace['source_path']}  [{trace['content_hash']}]\n"
            f"    format {trace['format']}; devices: {devices}"
            + (f" (peaks: {trace['device_spec']})" if trace.get("device_spec") else "")
            + (f"; {versions}" if versions else "")
        )
        console.print(Text(shown(line)))
    console.print()
    if report.findings:
        console.print(f"[bold]Findings ({len(report.findings)})[/bold]")
        for group in group_findings(report.findings):
            style = SEVERITY_STYLE.get(group.severity, "")
            for finding in group.shown:
                severity = Text.assemble("  ", (f"{shown(finding.severity):<8}", style), " ")
                console.print(severity + Text(shown(f"{finding.query}: {finding.message}")))
            if group.more:
                more = f"  {'':<8} … and {len(group.more)} more {group.severity} findings of {group.query}"
                console.print(Text(shown(more + " (all: --json or --html)")))
    else:
        console.print("[bold]Findings[/bold]: none")
    for error in report.errors:
        console.print(Text.assemble("  ", ("error", "red"), "    ", shown(error)))
    single = len(report.traces) <= 1
    for result in report.results:
        if result.frame is None or result.frame.is_empty():
            continue
        console.print()
        console.print(_table(result.frame, shown(f"{result.query.title} ({result.query.name})"), single))
    return buffer.getvalue()
