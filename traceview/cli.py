"""The `traceview` command line: parses arguments, calls the library, maps errors.

Everything it prints goes through `_say` (or `_say_data` for query results and folded stacks): text from
a trace or an error is redacted (parsers.redact.redact_text) and made terminal-safe (control characters and
bidi overrides shown escaped, traceview.reports.safe.terminal_safe). Data (query --format csv/json/table,
flame --folded -) is only made terminal-safe, never rewritten otherwise; written to a file with -o it is exact.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from parsers.limits import set_limits
from parsers.redact import redact_text
from traceview import __version__
from traceview.atomic import write_text_atomic
from traceview.commands import ingest as ingest_cmd
from traceview.commands import query as query_cmd
from traceview.commands import schema as schema_cmd
from traceview.errors import UserError
from traceview.reports.safe import terminal_safe

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


PeakBw = Annotated[
    Optional[float], typer.Option("--peak-bw", help="Device peak memory bandwidth in GB/s (overrides the table).")
]


def _say(text: str, err: bool = False, nl: bool = True) -> None:
    """Print text that may come from a trace or an error: redacted and terminal-safe."""
    _say_data(redact_text(text), err=err, nl=nl)


def _say_data(text: str, err: bool = False, nl: bool = True) -> None:
    """Print data (query results, folded stacks) terminal-safe but otherwise as it is."""
    typer.echo(terminal_safe(text), err=err, nl=nl)


def _fail(message: str) -> None:
    _say(f"Error: {message}", err=True)
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
        _say(
            f"Error: internal error ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''});"
            " rerun with TRACEVIEW_DEBUG=1 for the traceback",
            err=True,
        )
        raise typer.Exit(1) from None


def _warn(lines: list[str]) -> None:
    for line in lines:
        _say(f"Warning: {line}", err=True)


def _progress() -> Optional[ingest_cmd.Progress]:
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True)
    status = console.status("ingesting")
    status.start()

    def update(message: str) -> None:
        status.update(Text(terminal_safe(redact_text(f"ingesting {message}"))))

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
        _say(ingest_cmd.summary(result))


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
            _say_data(text, nl=False)
        else:
            write_text_atomic(output, text)


@app.command()
def analyze(
    targets: Annotated[list[Path], typer.Argument(help="Trace files, dump directories or stores.")],
    pack: Annotated[list[Path], typer.Option("--pack", help="Another query pack directory (repeatable).")] = [],  # noqa: B006
    html_out: Annotated[Optional[Path], typer.Option("--html", help="Write a self-contained HTML report.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the findings and results as JSON.")] = None,
    peak_bw: PeakBw = None,
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
        color = sys.stdout.isatty()
        rendered = terminal.render(report, color=color)
        if color:  # the pieces from the trace are already safe; the colours must get through
            sys.stdout.write(rendered)
        else:
            _say(rendered, nl=False)
        if json_out is not None:
            from traceview.reports.json_report import to_json

            write_text_atomic(json_out, to_json(report))
            _say(f"JSON report: {json_out}", err=True)
        if html_out is not None:
            from traceview.reports.html import to_html

            write_text_atomic(html_out, to_html(report, _report_extras(report, targets, cache_dir)))
            _say(f"HTML report: {html_out}", err=True)


def _report_extras(report, targets: list[Path], cache_dir: Optional[Path]) -> list[str]:
    """The flame chart (device weight where there are device tasks) and the throughput panels for --html.

    A section that fails is replaced by a one-line note (and a warning): the rest of the report still gets written.
    """
    from html import escape

    from traceview.commands import flame as flame_cmd
    from traceview.commands import throughput as throughput_cmd
    from traceview.engine import connect, resolve_store
    from traceview.reports import html as html_report

    stores = [resolve_store(target, cache_dir) for target in targets]
    sections: list[str] = []

    def flame_section() -> str:
        con = connect(stores)
        try:
            weight = flame_cmd.Weight.device if flame_cmd.has_device_tasks(con) else flame_cmd.Weight.wall
            return html_report.flame_section(flame_cmd.compute_flame(con, weight))
        finally:
            con.close()

    def throughput_section() -> str:
        return html_report.throughput_section(throughput_cmd.throughput_from_report(report, stores).to_dict())

    for name, make in (("flame chart", flame_section), ("throughput panels", throughput_section)):
        try:
            sections.append(make())
        except Exception as exc:  # noqa: BLE001 - one section must not cost the whole report
            if os.environ.get("TRACEVIEW_DEBUG"):
                raise
            message = f"{name} left out ({type(exc).__name__}: {exc})"
            _warn([message])
            sections.append(f'<p class="critical">{escape(message)}</p>')
    return sections


@app.command()
def flame(
    targets: Annotated[list[Path], typer.Argument(help="Trace files, dump directories or stores.")],
    weight: Annotated[str, typer.Option("--weight", help="wall (durations), self (self time) or device"
                                        " (device time by the host code path that launched it).")] = "wall",
    step: Annotated[Optional[int], typer.Option("--step", help="Only ProfilerStep#N.")] = None,
    html_out: Annotated[
        Optional[Path], typer.Option("--html", help="Write a self-contained HTML icicle chart.")
    ] = None,
    folded: Annotated[
        Optional[Path], typer.Option("--folded", help="Write folded stacks (`frame;frame value`, ns); '-' = stdout.")
    ] = None,
    min_share: Annotated[
        float, typer.Option("--min-share", help="Frames under this share of the total go into 'other' (chart).")
    ] = 0.001,
    cache_dir: CacheDir = None,
) -> None:
    """Flame graph of the host call tree (nesting), by wall, self or device time.

    \b
    Examples:
      traceview flame trace.json.gz --weight device --html flame.html
      traceview flame trace.json.gz --step 3 --folded - | flamegraph.pl > flame.svg
    """
    from traceview.commands import flame as flame_cmd

    with _user_errors():
        if weight not in {w.value for w in flame_cmd.Weight}:
            raise UserError(f"--weight must be one of wall, self, device (got {weight!r})")
        result = flame_cmd.run_flame(targets, weight, step, cache_dir)
        if not result.stacks:
            missing = {
                "device": "no device tasks (kernels, copies, communication), so there is no device time to attribute;"
                " try --weight wall",
                "wall": "no host slices to build a call tree from",
                "self": "no host slices to build a call tree from",
            }[result.weight.value]
            _warn([f"the trace has {missing}" + (f" in step {step}" if step is not None else "")])
        if folded is not None:
            if str(folded) == "-":
                _say_data(result.folded(), nl=False)
            else:
                write_text_atomic(folded, result.folded())
                _say(f"folded stacks: {folded}", err=True)
        if html_out is not None:
            from traceview.reports import html as html_report

            body = "<h1>traceview flame graph</h1>" + html_report.flame_section(result, min_share)
            write_text_atomic(html_out, html_report.page("traceview flame graph", body))
            _say(f"HTML: {html_out}", err=True)
        if folded is None or str(folded) != "-":
            line = f"{result.weight.value}: {result.total_ns / 1e6:.3f} ms in {len(result.stacks)} stacks"
            if result.info:
                line += f" ({result.info['attributed_ns'] / 1e6:.3f} ms with a known host launcher)"
            _say(line)


@app.command()
def throughput(
    targets: Annotated[list[Path], typer.Argument(help="Trace files, dump directories or stores (one series each).")],
    html_out: Annotated[Optional[Path], typer.Option("--html", help="Write the panels as self-contained HTML.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the points as JSON.")] = None,
    device_cost: Annotated[
        Optional[float], typer.Option("--device-cost", help="Price per device-hour: adds cost per million tokens.")
    ] = None,
    peak_bw: PeakBw = None,
    cache_dir: CacheDir = None,
) -> None:
    """Prefill and decode throughput, KV cache, kernel mix and bandwidth against context length.

    \b
    Example:
      traceview throughput h200.pt.trace.json.gz run_910b_ascend_pt --html tp.html --device-cost 3.5
    """
    from traceview.commands import throughput as throughput_cmd

    with _user_errors():
        data = throughput_cmd.run_throughput(targets, device_cost, cache_dir, peak_bw)
        points = data.to_dict()
        if not points.get("prefill") and not points.get("decode"):
            _warn([
                "no prefill or decode steps found: the trace has neither serving step labels (vLLM"
                " execute_context_*, SGLang step[...], TensorRT-LLM _forward_step) nor attention shapes that tell"
                " the phase; the prefill, decode, KV-cache and bandwidth panels are empty (see the phases query"
                " of `traceview analyze`)"
            ])
        if json_out is not None:
            write_text_atomic(json_out, data.to_json())
            _say(f"JSON: {json_out}", err=True)
        if html_out is not None:
            from traceview.reports import html as html_report

            body = "<h1>traceview throughput</h1>" + html_report.throughput_section(data.to_dict())
            write_text_atomic(html_out, html_report.page("traceview throughput", body))
            _say(f"HTML: {html_out}", err=True)
        for name, points in data.to_dict().items():
            if isinstance(points, list):
                _say(f"{name}: {len(points)} points")


@app.command()
def diff(
    base: Annotated[Path, typer.Argument(help="The baseline: a trace file, a dump directory or a store.")],
    test: Annotated[Path, typer.Argument(help="The trace to compare against the baseline.")],
    by: Annotated[str, typer.Option("--by", help="Align rows by: op, kernel, family, phase or step.")] = "kernel",
    html_out: Annotated[Optional[Path], typer.Option("--html", help="Write a self-contained HTML report.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write rows, summary and gates as JSON.")] = None,
    fail_on: Annotated[
        list[str],
        typer.Option("--fail-on", help="CI gate (repeatable): 'step_time>+5%', 'kernel:*gemm*>+10%', 'new_kernels>0'."),
    ] = [],  # noqa: B006
    min_effect: Annotated[
        float, typer.Option("--min-effect", help="Smallest |change| in % that counts as significant.")
    ] = 2.0,
    top: Annotated[int, typer.Option("--top", help="Rows shown in the terminal table.")] = 25,
    cache_dir: CacheDir = None,
) -> None:
    """Compare two traces: per-row deltas with confidence intervals, whole-trace deltas, CI gates.

    \b
    Exit status: 0, or 1 when a --fail-on gate trips (the reason on one line on stderr).
    Example:
      traceview diff base.pt.trace.json.gz test.pt.trace.json.gz --by family --fail-on 'step_time>+5%'
    """
    from traceview.commands import diff as diff_cmd

    with _user_errors():
        report = diff_cmd.run_diff(base, test, by, fail_on, min_effect, cache_dir=cache_dir,
                                   with_tree=html_out is not None)
        _say(diff_cmd.render_text(report, top), nl=False)
        if json_out is not None:
            write_text_atomic(json_out, diff_cmd.to_json(report))
            _say(f"JSON report: {json_out}", err=True)
        if html_out is not None:
            from traceview.reports.diff_html import to_html as diff_to_html

            write_text_atomic(html_out, diff_to_html(report))
            _say(f"HTML report: {html_out}", err=True)
    for gate in report.tripped:
        _say(f"Gate failed: {gate.expr}: {gate.reason}", err=True)
    if report.tripped:
        raise typer.Exit(1)


packs_app = typer.Typer(help="Query packs: list, show, check.", no_args_is_help=True)
app.add_typer(packs_app, name="packs")


@packs_app.command("list")
def packs_list() -> None:
    """List the built-in query packs."""
    from traceview.commands import packs as packs_cmd

    with _user_errors():
        _say(packs_cmd.list_packs(), nl=False)


@packs_app.command("show")
def packs_show(name: Annotated[str, typer.Argument(help="A built-in pack name or a pack directory.")]) -> None:
    """Show a pack's queries, parameters and finding rules."""
    from traceview.commands import packs as packs_cmd
    from traceview.packs import find_pack

    with _user_errors():
        _say(packs_cmd.show_pack(find_pack(name)), nl=False)


@packs_app.command("check")
def packs_check(directory: Annotated[Path, typer.Argument(help="The pack directory to check.")]) -> None:
    """Parse a pack's headers and run every query against an empty store; report errors as file:line."""
    from traceview.commands import packs as packs_cmd

    with _user_errors():
        problems = packs_cmd.check_pack(directory)
        for problem in problems:
            _say(problem, err=True)
        if problems:
            raise typer.Exit(1)
        _say(f"{directory}: ok")


@app.command()
def schema() -> None:
    """Print the tables and views of the trace model, one line per column."""
    _say(schema_cmd.describe(), nl=False)


def _version(value: bool) -> None:
    if value:
        _say(f"traceview {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    max_inflate_ratio: Annotated[
        Optional[float],
        typer.Option(
            "--max-inflate-ratio",
            min=1.0,
            help="Refuse gzip inputs that inflate past this many times their size (default 200, at least 64 MiB;"
            " also TRACEVIEW_MAX_INFLATE_RATIO).",
        ),
    ] = None,
) -> None:
    """AI profiler traces into answers."""
    if max_inflate_ratio is not None:
        set_limits(max_inflate_ratio=max_inflate_ratio)
