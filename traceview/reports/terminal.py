"""The terminal report of `traceview analyze` (rich).

Text from the traces and packs goes in as rich `Text` (never read as markup), redacted and terminal-safe
(see traceview.reports.safe), so the only escape sequences in the output are rich's own colours.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from traceview.analysis.report import AnalysisReport
from traceview.parsers.redact import redact_text
from traceview.reports.finding_groups import group_findings
from traceview.reports.safe import terminal_safe
from traceview.reports.tables import Table, prepare, ranks_tell_traces_apart, trace_starts

ROWS_PER_TABLE = 10  # the top rows by impact; --json and --html have the rest
MAX_COLUMNS = 9
NAME_WIDTH = 40  # a long name is shortened to this many characters (different names stay different)
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def shown(value: object) -> str:
    """Untrusted text as it may be shown in a terminal: secrets redacted, control characters escaped."""
    return terminal_safe(redact_text(str(value)))


def _table(table: Table) -> tuple[RichTable, str]:
    """The rich table and the line under it (rows left out, denominators of the shares)."""
    columns = table.columns[:MAX_COLUMNS]
    out = RichTable(title=Text(shown(f"{table.title} ({table.name})")), title_justify="left", show_edge=False,
                    header_style="bold")
    for column in columns:
        out.add_column(Text(shown(column.label)), overflow="fold", justify="right" if column.numeric else "left")
    for row in table.rows:
        out.add_row(*(Text(shown(cell.text)) for cell in row[: len(columns)]))
    notes = []
    if table.total_rows > len(table.rows):
        order = f" by {table.order}" if table.order else ""
        notes.append(f"top {len(table.rows)} of {table.total_rows} rows{order} (all rows: --json or --html)")
    if len(table.columns) > len(columns):
        notes.append(f"{len(table.columns) - len(columns)} more columns: --json or --html")
    notes += table.legend
    return out, "; ".join(notes)


def _quality(console: Console, report: AnalysisReport) -> None:
    if not report.quality:
        console.print("[bold]Data quality[/bold]: no ingest warnings")
        return
    console.print(f"[bold]Data quality ({len(report.quality)})[/bold]")
    for note in report.quality:
        console.print(Text(shown(f"  {note.kind:<10} {note.message}")))


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
    _quality(console, report)
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
    hide_trace_id = ranks_tell_traces_apart(report.traces)
    starts = trace_starts(report.traces)
    for result in report.results:
        if result.frame is None:
            continue  # it failed: listed with the errors
        table = prepare(result, starts, ROWS_PER_TABLE, NAME_WIDTH, hide_trace_id)
        console.print()
        if table.empty:
            console.print(Text.assemble((shown(f"{table.title} ({table.name})"), "bold"), ": ", shown(table.empty)))
        else:
            rich_table, notes = _table(table)
            console.print(rich_table)
            if notes:
                console.print(Text(shown(notes)))
    return buffer.getvalue()
