"""The `traceview` command line: parses arguments, calls the library, maps errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from traceview import __version__
from traceview.atomic import write_text_atomic
from traceview.commands import ingest as ingest_cmd
from traceview.commands import query as query_cmd
from traceview.commands import schema as schema_cmd
from traceview.errors import UserError

app = typer.Typer(
    name="traceview",
    help="AI profiler traces (PyTorch/Kineto, Chrome JSON, Ascend torch_npu/msprof) into answers, SQL-first.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CacheDir = Annotated[
    Optional[Path], typer.Option("--cache-dir", help="Where traces given as TARGET are ingested on the fly.")
]


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except UserError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted")
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("TRACEVIEW_DEBUG"):
            raise
        typer.echo(
            f"Error: internal error ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''});"
            " rerun with TRACEVIEW_DEBUG=1 for the traceback",
            err=True,
        )
        raise typer.Exit(1) from None


def _warn(lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"Warning: {line}", err=True)


def _progress() -> Optional[ingest_cmd.Progress]:
    if not sys.stderr.isatty():
        return None
    from rich.console import Console

    console = Console(stderr=True)
    status = console.status("ingesting")
    status.start()

    def update(message: str) -> None:
        status.update(f"ingesting {message}")

    update.stop = status.stop  # type: ignore[attr-defined]
    return update


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Kineto/Chrome traces (.json, .json.gz), Ascend dumps (*_ascend_pt, PROF_*, .db, .csv),"
            " or folders of them."
        ),
    ],
    out: Annotated[Optional[Path], typer.Option("-o", "--out", help="Store directory to write.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the store is up to date.")] = False,
) -> None:
    """Ingest traces into a store (Parquet tables plus manifest.json).

    \b
    Example:
      traceview ingest rank0.pt.trace.json.gz -o run1.traceview
    """
    progress = _progress()
    with _user_errors():
        try:
            result = ingest_cmd.run_ingest(paths, out, force, progress)
        finally:
            if progress is not None:
                progress.stop()  # type: ignore[attr-defined]
        _warn(result.warnings)
        typer.echo(ingest_cmd.summary(result))


@app.command()
def query(
    target: Annotated[Path, typer.Argument(help="A trace file, a dump directory or a store.")],
    sql: Annotated[str, typer.Argument(help="The SQL to run (DuckDB dialect).")],
    fmt: Annotated[query_cmd.OutputFormat, typer.Option("--format", "-f", help="Output format.")] = (
        query_cmd.OutputFormat.table
    ),
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write to FILE instead of stdout.")] = None,
    cache_dir: CacheDir = None,
) -> None:
    """Run SQL over a trace; `traceview schema` lists the tables.

    \b
    Example:
      traceview query trace.json.gz "select kind, count(*) from slices group by 1" --format json
    """
    with _user_errors():
        frame = query_cmd.run_query(target, sql, cache_dir)
        text = query_cmd.render(frame, fmt)
        if output is None:
            sys.stdout.write(text)
        else:
            write_text_atomic(output, text)


@app.command()
def analyze(
    targets: Annotated[list[Path], typer.Argument(help="Trace files, dump directories or stores.")],
    pack: Annotated[list[Path], typer.Option("--pack", help="Another query pack directory (repeatable).")] = [],  # noqa: B006
    html_out: Annotated[Optional[Path], typer.Option("--html", help="Write a self-contained HTML report.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the findings and results as JSON.")] = None,
    peak_bw: Annotated[
        Optional[float], typer.Option("--peak-bw", help="Device peak memory bandwidth in GB/s (overrides the table).")
    ] = None,
    cache_dir: CacheDir = None,
) -> None:
    """Analyse traces: hotspots, busy breakdown, launch gaps, bandwidth, KV cache, phases and more.

    \b
    Example:
      traceview analyze rank0.pt.trace.json.gz --html report.html
    """
    from traceview.commands import analyze as analyze_cmd
    from traceview.reports import terminal

    with _user_errors():
        report = analyze_cmd.run_analyze(targets, pack, peak_bw, cache_dir)
        sys.stdout.write(terminal.render(report, color=sys.stdout.isatty()))
        if json_out is not None:
            from traceview.reports.json_report import to_json

            write_text_atomic(json_out, to_json(report))
            typer.echo(f"JSON report: {json_out}", err=True)
        if html_out is not None:
            from traceview.reports.html import to_html

            write_text_atomic(html_out, to_html(report))
            typer.echo(f"HTML report: {html_out}", err=True)


packs_app = typer.Typer(help="Query packs: list, show, check.", no_args_is_help=True)
app.add_typer(packs_app, name="packs")


@packs_app.command("list")
def packs_list() -> None:
    """List the built-in query packs."""
    from traceview.commands import packs as packs_cmd

    with _user_errors():
        sys.stdout.write(packs_cmd.list_packs())


@packs_app.command("show")
def packs_show(name: Annotated[str, typer.Argument(help="A built-in pack name or a pack directory.")]) -> None:
    """Show a pack's queries, parameters and finding rules."""
    from traceview.commands import packs as packs_cmd
    from traceview.packs import find_pack

    with _user_errors():
        sys.stdout.write(packs_cmd.show_pack(find_pack(name)))


@packs_app.command("check")
def packs_check(directory: Annotated[Path, typer.Argument(help="The pack directory to check.")]) -> None:
    """Parse a pack's headers and run every query against an empty store; report errors as file:line."""
    from traceview.commands import packs as packs_cmd

    with _user_errors():
        problems = packs_cmd.check_pack(directory)
        for problem in problems:
            typer.echo(problem, err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"{directory}: ok")


@app.command()
def schema() -> None:
    """Print the tables and views of the trace model, one line per column."""
    sys.stdout.write(schema_cmd.describe())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"traceview {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """AI profiler traces into answers."""
