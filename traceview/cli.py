"""The `traceview` command line: parses arguments, calls the library, maps errors.

Everything it prints goes through `_say` (or `_say_data` for query results and folded stacks): text from
a trace or an error is redacted (parsers.redact.redact_text) and made terminal-safe (control characters and
bidi overrides shown escaped, traceview.reports.safe.terminal_safe). Data (query --format csv/json/table,
flame --folded -) is only made terminal-safe, never rewritten otherwise; written to a file with -o it is exact.

Errors are mapped to exit codes in one place, `_CaughtOnce.invoke`: 0 ok; 1 a gate tripped (`diff --fail-on`);
2 bad input or usage (UserError, TraceFormatError, a usage error, `packs check` problems); 3 an internal
error (a bug: one line, the traceback with `--debug` or TRACEVIEW_DEBUG=1).

Output options (`--json`, `--html`, `-o`, `--folded`) take a file or `-` for stdout. A file is written
atomically, into a directory that must exist; with an output on stdout the human summary is not printed.
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from traceview._version import __version__
from traceview.atomic import check_output_path, write_text_atomic
from traceview.commands import ingest as ingest_cmd
from traceview.commands import query as query_cmd
from traceview.commands import schema as schema_cmd
from traceview.errors import EXIT_BUG, EXIT_GATE, EXIT_USER_ERROR, UserError
from traceview.parsers.errors import TraceFormatError
from traceview.parsers.limits import set_limits
from traceview.parsers.redact import redact_text
from traceview.ray_engine import ray_requested
from traceview.reports.safe import json_terminal_safe, terminal_safe

STDOUT = "-"  # an output path that means stdout
_debug = False  # set by the --debug option of every run (main)


def _debug_wanted() -> bool:
    """--debug or TRACEVIEW_DEBUG (other than empty or 0): internal errors show their traceback."""
    return _debug or os.environ.get("TRACEVIEW_DEBUG", "") not in ("", "0")


class _CaughtOnce(TyperGroup):
    """The root command: every command's errors are turned into a message and an exit code here, and only here."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # exit codes, usage errors (2): typer's own
            raise
        except (UserError, TraceFormatError) as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted")
        except Exception as exc:  # a bug: one line for the user, the traceback on request
            _internal_error(exc)


def _internal_error(exc: Exception) -> None:
    if _debug_wanted():
        traceback.print_exc()
    else:
        first = str(exc).splitlines()[0] if str(exc) else ""
        _say(
            f"Error: internal error ({type(exc).__name__}: {first}); this is a bug in traceview,"
            " rerun with --debug (or TRACEVIEW_DEBUG=1) to see the traceback",
            err=True,
        )
    raise typer.Exit(EXIT_BUG) from None


app = typer.Typer(
    cls=_CaughtOnce,
    name="traceview",
    help="AI profiler traces (PyTorch/Kineto, Chrome JSON, Ascend torch_npu/msprof) into answers, SQL-first.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CacheDir = Annotated[
    Optional[Path], typer.Option("--cache-dir", help="Where traces given as TARGET are ingested on the fly.")
]


def _positive_gbps(option: str) -> Callable[[Optional[float]], Optional[float]]:
    """The check of a bandwidth option: a positive, finite number of GB/s."""

    def check(value: Optional[float]) -> Optional[float]:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UserError(f"{option} {value:g}: must be a positive number of GB/s")
        return value

    return check


PeakBw = Annotated[
    Optional[float],
    typer.Option(
        "--peak-bw",
        help="Device peak memory bandwidth in GB/s (overrides the table).",
        callback=_positive_gbps("--peak-bw"),
    ),
]


RayFlag = Annotated[
    bool,
    typer.Option(
        "--ray",
        help="Run on Ray (also TRACEVIEW_RAY=1): the cluster RAY_ADDRESS names, or a local Ray."
        " Needs the ray extra.",
    ),
]
RayCpus = Annotated[
    Optional[int], typer.Option("--ray-cpus", min=1, help="CPUs of a local Ray started for --ray (default: all).")
]


PeakLinkBw = Annotated[
    Optional[float],
    typer.Option(
        "--peak-link-bw",
        help="Interconnect peak per direction in GB/s, for bus bandwidth (overrides the device table).",
        callback=_positive_gbps("--peak-link-bw"),
    ),
]


def _say(text: str, err: bool = False, nl: bool = True) -> None:
    """Print text that may come from a trace or an error: redacted and terminal-safe."""
    _say_data(redact_text(text), err=err, nl=nl)


def _say_data(text: str, err: bool = False, nl: bool = True) -> None:
    """Print data (query results, folded stacks) terminal-safe but otherwise as it is."""
    typer.echo(terminal_safe(text), err=err, nl=nl)


def _fail(message: str, code: int = EXIT_USER_ERROR) -> None:
    _say(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _to_stdout(path: Optional[Path]) -> bool:
    return path is not None and str(path) == STDOUT


def _check_outputs(*paths: Optional[Path]) -> None:
    """Before any work: at most one output on stdout, and every output file writable where it is named."""
    if sum(_to_stdout(path) for path in paths) > 1:
        raise UserError("only one output can be '-' (stdout)")
    for path in paths:
        if path is not None and not _to_stdout(path):
            check_output_path(path)


def _write_output(path: Path, text: str, what: str, is_json: bool = False) -> None:
    """Write an output to its file (atomically; `what: PATH` on stderr) or to stdout for `-` (terminal-safe)."""
    if _to_stdout(path):
        typer.echo(json_terminal_safe(text) if is_json else terminal_safe(text), nl=False)
    else:
        write_text_atomic(path, text)
        _say(f"{what}: {path}", err=True)


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
    ray: RayFlag = False,
    ray_cpus: RayCpus = None,
) -> None:
    """Ingest traces into a store (Parquet tables plus manifest.json).

    \b
    With --ray, one Ray task per rank; a rank that fails is a warning, the store keeps the others (exit 2).
    Examples:
      traceview ingest rank0.pt.trace.json.gz -o run1.traceview
      traceview ingest /shared/dump --ray -o /shared/store
    """
    if _to_stdout(out):
        raise UserError("-o -: a store is a directory and cannot be written to stdout")
    progress = _progress()
    try:
        result = ingest_cmd.run_ingest(paths, out, force, progress, ray=ray_requested(ray), ray_cpus=ray_cpus)
    finally:
        if progress is not None:
            progress.stop()  # type: ignore[attr-defined]
    _warn(result.warnings)
    _say(ingest_cmd.summary(result))
    if failure := ingest_cmd.failure(result):
        _fail(failure, ingest_cmd.failure_exit_code(result))


@app.command()
def query(
    target: Annotated[Path, typer.Argument(help="A trace file, a dump directory or a store.")],
    sql: Annotated[str, typer.Argument(help="The SQL to run (DuckDB dialect).")],
    fmt: Annotated[query_cmd.OutputFormat, typer.Option("--format", "-f", help="Output format.")] = (
        query_cmd.OutputFormat.table
    ),
    output: Annotated[
        Optional[Path], typer.Option("-o", "--output", help="Write to FILE instead of stdout ('-' = stdout).")
    ] = None,
    cache_dir: CacheDir = None,
) -> None:
    """Run SQL over a trace; `traceview schema` lists the tables.

    \b
    Example:
      traceview query trace.json.gz "select kind, count(*) from slices group by 1" --format json
    """
    _check_outputs(output)
    frame = query_cmd.run_query(target, sql, cache_dir)
    text = query_cmd.render(frame, fmt)
    if output is None or _to_stdout(output):
        _say_data(text, nl=False)
    else:
        write_text_atomic(output, text)


@app.command()
def analyze(
    targets: Annotated[list[Path], typer.Argument(help="Trace files, dump directories or stores.")],
    pack: Annotated[list[Path], typer.Option("--pack", help="Another query pack directory (repeatable).")] = [],  # noqa: B006
    html_out: Annotated[
        Optional[Path], typer.Option("--html", help="Write a self-contained HTML report ('-' = stdout).")
    ] = None,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Write the findings and results as JSON ('-' = stdout).")
    ] = None,
    peak_bw: PeakBw = None,
    peak_link_bw: PeakLinkBw = None,
    cache_dir: CacheDir = None,
    ray: RayFlag = False,
    ray_cpus: RayCpus = None,
) -> None:
    """Analyse traces: hotspots, busy breakdown, launch gaps, bandwidth, KV cache, phases and more.

    \b
    With --ray, the per-rank queries (-- scope: rank) run as Ray tasks over batches of ranks; the results are the same.
    Example:
      traceview analyze rank0.pt.trace.json.gz --html report.html
    """
    from traceview.commands import analyze as analyze_cmd

    _check_outputs(json_out, html_out)
    report = analyze_cmd.run(
        targets, pack, peak_bw, cache_dir, with_html=html_out is not None, strict=_debug_wanted(),
        ray=ray_requested(ray), ray_cpus=ray_cpus,
        peak_link_bw=peak_link_bw,
    )  # fmt: skip
    _warn(analyze_cmd.warnings(report))
    if not (_to_stdout(json_out) or _to_stdout(html_out)):
        color = sys.stdout.isatty()
        rendered = analyze_cmd.terminal_text(report, color=color)
        if color:  # the pieces from the trace are already safe; the colours must get through
            sys.stdout.write(rendered)
        else:
            _say(rendered, nl=False)
    if json_out is not None:
        _write_output(json_out, analyze_cmd.json_text(report), "JSON report", is_json=True)
    if html_out is not None:
        _write_output(html_out, analyze_cmd.html_text(report), "HTML report")


@app.command()
def flame(
    targets: Annotated[list[Path], typer.Argument(help="Trace files, dump directories or stores.")],
    weight: Annotated[
        str,
        typer.Option(
            "--weight",
            help="wall (durations), self (self time) or device (device time by the host code path that launched it).",
        ),
    ] = "wall",
    step: Annotated[Optional[int], typer.Option("--step", help="Only ProfilerStep#N.")] = None,
    html_out: Annotated[
        Optional[Path], typer.Option("--html", help="Write a self-contained HTML icicle chart ('-' = stdout).")
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

    flame_cmd.check_weight(weight)
    _check_outputs(folded, html_out)
    result = flame_cmd.run(targets, weight, step, cache_dir)
    reason = result.empty_reason()
    _warn([reason] if reason else [])
    if folded is not None:
        _write_output(folded, result.folded(), "folded stacks")
    if html_out is not None:
        _write_output(html_out, flame_cmd.html_text(result, min_share), "HTML")
    if not (_to_stdout(folded) or _to_stdout(html_out)):
        _say(flame_cmd.summary(result))


@app.command()
def throughput(
    targets: Annotated[list[Path], typer.Argument(help="Trace files, dump directories or stores (one series each).")],
    html_out: Annotated[
        Optional[Path], typer.Option("--html", help="Write the panels as self-contained HTML ('-' = stdout).")
    ] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the points as JSON ('-' = stdout).")] = None,
    device_cost: Annotated[
        Optional[float], typer.Option("--device-cost", help="Price per device-hour: adds cost per million tokens.")
    ] = None,
    peak_bw: PeakBw = None,
    cache_dir: CacheDir = None,
    time_basis: Annotated[
        str, typer.Option("--time", help="Step time the charts plot: active (first to last device task) or wall.")
    ] = "active",
) -> None:
    """Prefill and decode throughput, KV cache, kernel mix and bandwidth against context length.

    \b
    Example:
      traceview throughput h200.pt.trace.json.gz run_910b_ascend_pt --html tp.html --device-cost 3.5
    """
    from traceview.commands import throughput as throughput_cmd

    _check_outputs(json_out, html_out)
    data = throughput_cmd.run(targets, device_cost, cache_dir, peak_bw, time_basis)
    _warn(throughput_cmd.warnings(data))
    if json_out is not None:
        _write_output(json_out, throughput_cmd.json_text(data), "JSON", is_json=True)
    if html_out is not None:
        _write_output(html_out, throughput_cmd.html_text(data), "HTML")
    if not (_to_stdout(json_out) or _to_stdout(html_out)):
        for line in throughput_cmd.summary(data):
            _say(line)


@app.command()
def cluster(
    targets: Annotated[list[Path], typer.Argument(help="Trace files, dump directories or stores of 2 or more ranks.")],
    html_out: Annotated[
        Optional[Path],
        typer.Option("--html", help="Write heatmaps, link matrices and stragglers as HTML ('-' = stdout)."),
    ] = None,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Write the cluster view as JSON ('-' = stdout).")
    ] = None,
    peak_link_bw: PeakLinkBw = None,
    cache_dir: CacheDir = None,
    ray: RayFlag = False,
    ray_cpus: RayCpus = None,
) -> None:
    """Cluster view: stragglers, slow ranks, slow links, bus bandwidth and overlap across ranks.

    With --ray, the ranks' device-time sweep runs as Ray tasks, the cross-rank analyses here; the results are the same.

    \b
    Example:
      traceview cluster rank*.pt.trace.json.gz --html cluster.html
    """
    from traceview.commands import cluster as cluster_cmd

    _check_outputs(json_out, html_out)
    result = cluster_cmd.run(targets, peak_link_bw, cache_dir, ray=ray_requested(ray), ray_cpus=ray_cpus)
    _warn(cluster_cmd.warnings(result))
    if json_out is not None:
        _write_output(json_out, cluster_cmd.json_text(result), "JSON", is_json=True)
    if html_out is not None:
        _write_output(html_out, cluster_cmd.html_text(result), "HTML")
    if not (_to_stdout(json_out) or _to_stdout(html_out)):
        for line in cluster_cmd.summary(result):
            _say(line)


@app.command()
def diff(
    base: Annotated[Path, typer.Argument(help="The baseline: a trace file, a dump directory or a store.")],
    test: Annotated[Path, typer.Argument(help="The trace to compare against the baseline.")],
    by: Annotated[str, typer.Option("--by", help="Align rows by: op, kernel, family, phase or step.")] = "kernel",
    html_out: Annotated[
        Optional[Path], typer.Option("--html", help="Write a self-contained HTML report ('-' = stdout).")
    ] = None,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Write rows, summary and gates as JSON ('-' = stdout).")
    ] = None,
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
    Exit status: 0, or 1 when a --fail-on gate trips (the reason on one line on stderr); 2 bad input; 3 a bug.
    Example:
      traceview diff base.pt.trace.json.gz test.pt.trace.json.gz --by family --fail-on 'step_time>+5%'
    """
    from traceview.commands import diff as diff_cmd

    _check_outputs(json_out, html_out)
    outputs = diff_cmd.run_diff(
        base, test, by, fail_on, min_effect, top, cache_dir,
        text=not (_to_stdout(json_out) or _to_stdout(html_out)), json=json_out is not None, html=html_out is not None,
    )  # fmt: skip
    if outputs.text is not None:
        _say(outputs.text, nl=False)
    if json_out is not None and outputs.json is not None:
        _write_output(json_out, outputs.json, "JSON report", is_json=True)
    if html_out is not None and outputs.html is not None:
        _write_output(html_out, outputs.html, "HTML report")
    for gate in outputs.report.tripped:
        _say(f"Gate failed: {gate.expr}: {gate.reason}", err=True)
    if outputs.report.tripped:
        raise typer.Exit(EXIT_GATE)


@app.command()
def export(
    targets: Annotated[
        list[Path], typer.Argument(help="A store, or trace files or dump directories (one rank each).")
    ],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="The Chrome trace to write: .json, .json.gz (gzip) or '-' (stdout).")
    ],
    ranks: Annotated[Optional[str], typer.Option("--ranks", help="Ranks to export, e.g. 0,2-3 (default: all).")] = None,
    step: Annotated[Optional[int], typer.Option("--step", help="Only the span of ProfilerStep#N on the ranks.")] = None,
    window: Annotated[
        Optional[str],
        typer.Option(
            "--window",
            help="Only START:END from the start of the export's axis; times like 12.5ms, 800us, 2s, 40ns (bare: ms).",
        ),
    ] = None,
    align: Annotated[
        str,
        typer.Option(
            "--align",
            help="clock: ranks as their clocks recorded them; collective: each rank shifted so that the first"
            " collective common to all ends when it ends on the lowest rank.",
        ),
    ] = "clock",
    cache_dir: CacheDir = None,
) -> None:
    """Write several ranks on one time axis as a Chrome trace for Perfetto UI or chrome://tracing.

    \b
    One process per rank and side ("rank N host", "rank N device K"), a thread per host thread
    or device stream; ts and dur in µs with three decimals (exact ns); flows and counters kept.
    Slices that overlap the window are written; read back, they are the same slices.
    Examples:
      traceview export run.traceview --ranks 0-7 --step 12 -o step12.json.gz
      traceview export r0.json.gz r1.json.gz --align collective --window 0:50ms -o w.json
    """
    from traceview.commands import export as export_cmd

    _check_outputs(out)
    sink = typer.get_binary_stream("stdout") if _to_stdout(out) else out
    warnings, summary = export_cmd.run(targets, sink, ranks, step, window, align, cache_dir)
    _warn(warnings)
    if not _to_stdout(out):
        _say(f"Chrome trace: {out}", err=True)
        _say(summary)


packs_app = typer.Typer(help="Query packs: list, show, check.", no_args_is_help=True)
app.add_typer(packs_app, name="packs")


@packs_app.command("list")
def packs_list() -> None:
    """List the built-in query packs."""
    from traceview.commands import packs as packs_cmd

    _say(packs_cmd.list_packs(), nl=False)


@packs_app.command("show")
def packs_show(name: Annotated[str, typer.Argument(help="A built-in pack name or a pack directory.")]) -> None:
    """Show a pack's queries, parameters and finding rules."""
    from traceview.commands import packs as packs_cmd
    from traceview.packs import find_pack

    _say(packs_cmd.show_pack(find_pack(name)), nl=False)


@packs_app.command("check")
def packs_check(directory: Annotated[Path, typer.Argument(help="The pack directory to check.")]) -> None:
    """Parse a pack's headers and run every query against an empty store; report errors as file:line (exit 2)."""
    from traceview.commands import packs as packs_cmd

    problems = packs_cmd.check_pack(directory)
    for problem in problems:
        _say(problem, err=True)
    if problems:
        raise typer.Exit(EXIT_USER_ERROR)
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
    debug: Annotated[
        bool, typer.Option("--debug", help="On an internal error show its traceback (also TRACEVIEW_DEBUG=1).")
    ] = False,
) -> None:
    """AI profiler traces into answers.

    \b
    Exit status: 0 ok; 1 a gate tripped (diff --fail-on); 2 bad input or usage; 3 an internal error (a bug).
    """
    global _debug
    _debug = debug
    if max_inflate_ratio is not None:
        set_limits(max_inflate_ratio=max_inflate_ratio)
