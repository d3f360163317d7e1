"""A merged timeline of several ranks, for `traceview export`: the slices, flows and counters of a time window.

Plain data for the Chrome-trace writer (traceview.reports.chrome_trace): one process per rank and side ("rank N
host", "rank N device K"), one thread per track of the source (a host thread, a device stream), every time as
int ns relative to `origin_ns`, ranks placed on one time axis.

The axis: by default the ranks' recorded clocks (`--align clock`). `--align collective` shifts each rank so that
the first collective common to all chosen ranks ends at the same time as on the first (lowest) chosen rank: a
collective is one (process group, sequence number) of the `collectives` table, present on every chosen rank, the
first by its start on the lowest rank. Stores that have no collectives fall back to communication kernels
(kind 'comm' on a device) matched by name and order of occurrence. The offsets are part of the result.

The window: the whole span of the chosen ranks, one step (`--step N`: from the first start to the last end of
the slices of ProfilerStep#N on any chosen rank, host and device), or `--window START:END`, times from the start
of the axis (the earliest slice of the chosen ranks). A slice is exported when it overlaps the window (a slice
of no duration: when it lies in it); a flow when both its ends are exported; a counter sample when it lies in
the window. Slices of negative duration are left out and counted in a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb

from traceview.analysis.quality import data_quality
from traceview.analysis.report import trace_rows
from traceview.engine import connect, resolve_store
from traceview.errors import UserError
from traceview.parsers.model import MAX_RANK

ALIGNMENTS = ("clock", "collective")
BATCH_ROWS = 10_000  # rows fetched from DuckDB at a time: the export streams, whatever the window's size
DEFAULT_WINDOW_UNIT = "ms"
_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_TIME = re.compile(r"\s*([0-9]{1,19}(?:\.[0-9]{1,9})?)\s*(ns|us|µs|ms|s)?\s*")
_RANK_ITEM = re.compile(r"\s*([0-9]{1,10})\s*(?:-\s*([0-9]{1,10})\s*)?")
_INT64_MAX = (1 << 63) - 1

# Where `--align collective` finds the calls to match across ranks: (call_key, seq) names one call.
# The collectives table (one collective is the same group and seq on every rank of its group); the second,
# for stores written before that table existed: comm kernels matched by name and order of occurrence.
_CALL_SOURCES = (
    """SELECT trace_id, coalesce("group", '') AS call_key, seq, ts_ns, dur_ns FROM collectives
       WHERE seq IS NOT NULL AND ts_ns IS NOT NULL AND dur_ns IS NOT NULL""",
    """SELECT trace_id, name AS call_key, row_number() OVER (PARTITION BY trace_id, name ORDER BY ts_ns, slice_id)
              AS seq, ts_ns, dur_ns FROM slices
       WHERE kind = 'comm' AND device_type <> 'cpu' AND ts_ns IS NOT NULL AND dur_ns IS NOT NULL""",
)

# The category written for a kind where the source's own category would not read back as that kind
# (traces other than Kineto's): what the Kineto parser maps to the kind again (parsers/chrome.py _KIND_SQL).
_HOST_CAT = {"cpu_op": "cpu_op", "python": "python_function", "annotation": "user_annotation",
             "runtime": "cuda_runtime", "driver": "cuda_driver", "sync": "cuda_event", "comm": "collective_comm",
             "step": "cpu_op"}  # fmt: skip
_DEVICE_CAT = {"kernel": "kernel", "comm": "kernel", "memcpy": "gpu_memcpy", "memset": "gpu_memset",
               "sync": "cuda_sync", "annotation": "gpu_user_annotation"}  # fmt: skip


@dataclass(frozen=True)
class Window:
    """The exported interval [lo_ns, hi_ns) on the aligned axis, and how it was chosen."""

    lo_ns: int
    hi_ns: int
    label: str


@dataclass(frozen=True)
class Process:
    """One process of the export: a rank's host or one of its devices."""

    pid: int
    name: str
    rank: int


@dataclass(frozen=True)
class Thread:
    """One track of the export: a host thread or a device stream of the source."""

    pid: int
    tid: int
    name: str


@dataclass
class TraceExport:
    """The chosen ranks in a window: processes, threads, and the rows to write (streamed from DuckDB).

    Times of the rows are ns after `origin_ns` (an absolute time on the aligned axis). Close it (or use it as a
    context manager) when written.
    """

    ranks: list[int]
    align: str
    offsets_ns: dict[int, int]
    window: Window
    origin_ns: int
    processes: list[Process]
    threads: list[Thread]
    warnings: list[str] = field(default_factory=list)
    _con: duckdb.DuckDBPyConnection | None = None

    def slices(self) -> Iterator[tuple[int, int, int, int, str | None, str | None, str | None]]:
        """(pid, tid, ts, dur, name, cat, args JSON text) per slice, by track and start."""
        yield from self._rows(
            """SELECT t.new_pid, t.new_tid, CAST(x.ts - $origin AS HUGEINT), x.dur, s.name,
                      CASE WHEN r.keep_cat THEN s.cat ELSE coalesce(m.cat, s.cat) END, s.args
               FROM _x_sel x JOIN _x_tracks t USING (trace_id, device, pid, tid)
               JOIN _x_ranks r USING (trace_id)
               JOIN slices s ON s.trace_id = x.trace_id AND s.slice_id = x.slice_id
               LEFT JOIN _x_cats m ON m.on_device = x.on_device AND m.kind = s.kind
               ORDER BY t.new_pid, t.new_tid, x.ts, x.dur DESC, x.slice_id"""
        )

    def flows(self) -> Iterator[tuple[str | None, int, int, int, int, int, int]]:
        """(kind, start pid, tid, ts, end pid, tid, ts) per flow with both ends exported, by start time."""
        yield from self._rows(
            """SELECT f.kind, a.new_pid, a.new_tid, CAST(a.ts - $origin AS HUGEINT),
                      b.new_pid, b.new_tid, CAST(b.ts - $origin AS HUGEINT)
               FROM flows f
               JOIN _x_pos a ON a.trace_id = f.trace_id AND a.slice_id = f.src_slice_id
               JOIN _x_pos b ON b.trace_id = f.trace_id AND b.slice_id = f.dst_slice_id
               ORDER BY a.ts, a.new_pid, a.new_tid, b.ts, f.kind"""
        )

    def counters(self) -> Iterator[tuple[int, int, str | None, str | None, float | None]]:
        """(pid, ts, counter name, series, value) per counter sample in the window, by process and time."""
        yield from self._rows(
            """SELECT p.new_pid, CAST(c.ts - $origin AS HUGEINT), c.name, c.series, c.value
               FROM _x_counters c JOIN _x_procs p ON p.rank = c.rank AND NOT p.on_device
               ORDER BY p.new_pid, c.ts, c.name, c.series"""
        )

    def _rows(self, query: str) -> Iterator[Any]:
        if self._con is None:
            raise RuntimeError("the export is closed")
        cursor = self._con.cursor()
        try:
            cursor.execute(query, {"origin": self.origin_ns})
            while batch := cursor.fetchmany(BATCH_ROWS):
                yield from batch
        finally:
            cursor.close()

    def close(self) -> None:
        """Close the database connection behind the rows."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> TraceExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_ranks(text: str) -> list[int]:
    """`0,2-3` -> [0, 2, 3]: rank numbers and inclusive ranges, comma-separated (UserError otherwise)."""
    ranks: set[int] = set()
    for item in text.split(","):
        match = _RANK_ITEM.fullmatch(item)
        if match is None:
            raise UserError(f"--ranks {text}: expected rank numbers and ranges such as 0,2-3")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if low > high:
            raise UserError(f"--ranks {text}: the range {low}-{high} is empty (write it low to high)")
        if high > MAX_RANK:
            raise UserError(f"--ranks {text}: ranks go up to {MAX_RANK}")
        if high - low >= 1 << 20:  # the set is built below; ranks are counted by the thousand, not the million
            raise UserError(f"--ranks {text}: the range {low}-{high} is too long")
        ranks.update(range(low, high + 1))
    return sorted(ranks)


def parse_window(text: str) -> tuple[int, int]:
    """`START:END` -> (start_ns, end_ns) from the start of the axis; times such as 12.5, 12.5ms, 800us, 2s, 40ns
    (a bare number is in ms), rounded down to whole ns."""
    parts = text.split(":")
    if len(parts) != 2:
        raise UserError(f"--window {text}: expected START:END, such as 10ms:25ms")
    start, end = (_time_ns(part, text) for part in parts)
    if start >= end:
        raise UserError(f"--window {text}: START must be before END")
    return start, end


def _time_ns(part: str, whole: str) -> int:
    match = _TIME.fullmatch(part)
    if match is None:
        raise UserError(f"--window {whole}: expected times such as 12.5ms, 800us, 2s or 40ns, found {part.strip()!r}")
    try:
        ns = int(Decimal(match.group(1)) * _UNITS_NS[match.group(2) or DEFAULT_WINDOW_UNIT])
    except InvalidOperation:  # cannot happen for the digits the pattern allows; keep the error one line anyway
        raise UserError(f"--window {whole}: {part.strip()!r} is not a number") from None
    if ns > _INT64_MAX:
        raise UserError(f"--window {whole}: {part.strip()} is past the int64 ns range")
    return ns


def ranks_text(ranks: list[int]) -> str:
    """`rank 3`, `ranks 0-2,5`."""
    return f"rank{'s' if len(set(ranks)) > 1 else ''} {format_ranks(ranks)}"


def format_ranks(ranks: list[int]) -> str:
    """[0, 1, 2, 5] -> `0-2,5`."""
    runs: list[list[int]] = []
    for rank in sorted(set(ranks)):
        if runs and rank == runs[-1][1] + 1:
            runs[-1][1] = rank
        else:
            runs.append([rank, rank])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def check_choices(step: int | None, window: tuple[int, int] | None, align: str) -> None:
    """UserError for an unknown alignment, or a step and a window both given."""
    if align not in ALIGNMENTS:
        raise UserError(f"--align must be one of {', '.join(ALIGNMENTS)} (got {align!r})")
    if step is not None and window is not None:
        raise UserError("--step and --window choose the same thing: give one of them")


def build_export(
    con: duckdb.DuckDBPyConnection,
    ranks: list[int] | None = None,
    step: int | None = None,
    window: tuple[int, int] | None = None,
    align: str = "clock",
) -> TraceExport:
    """The export of `con`'s traces (a connection from traceview.engine.connect; the result closes it)."""
    check_choices(step, window, align)
    traces = _chosen_traces(con, ranks)
    chosen = sorted(traces)
    offsets = _collective_offsets(con, traces) if align == "collective" else dict.fromkeys(chosen, 0)
    _create_ranks_table(con, traces, offsets)
    span = _window(con, chosen, step, window)
    warnings = _select(con, span)
    origin = _origin(con, span)
    processes, threads = _layout(con)
    exported = {p.rank for p in processes}
    empty = [rank for rank in chosen if rank not in exported]
    if empty:
        warnings.append(f"nothing in the window ({span.label}) on {ranks_text(empty)}")
    return TraceExport(chosen, align, offsets, span, origin, processes, threads, warnings, con)


def _chosen_traces(con: duckdb.DuckDBPyConnection, ranks: list[int] | None) -> dict[int, tuple[str, str]]:
    """rank -> (trace_id, format) of the chosen ranks; UserError for a rank not in the store or recorded twice."""
    rows = con.sql("SELECT rank, trace_id, format FROM traces ORDER BY rank, trace_id").fetchall()
    if not rows:
        raise UserError("the target holds no traces to export")
    by_rank: dict[int, list[tuple[str, str]]] = {}
    for rank, trace_id, fmt in rows:
        by_rank.setdefault(int(rank), []).append((str(trace_id), str(fmt)))
    wanted = list(by_rank) if ranks is None else ranks
    missing = [rank for rank in wanted if rank not in by_rank]
    if missing:
        raise UserError(f"--ranks: not in the target: {ranks_text(missing)} (it has {ranks_text(list(by_rank))})")
    for rank in wanted:
        if len(by_rank[rank]) > 1:
            ids = ", ".join(trace_id for trace_id, _ in by_rank[rank])
            raise UserError(
                f"rank {rank} is recorded by {len(by_rank[rank])} traces ({ids}): export needs one trace per rank;"
                " choose ranks with --ranks or give the runs separately"
            )
    return {rank: by_rank[rank][0] for rank in wanted}


def _collective_offsets(con: duckdb.DuckDBPyConnection, traces: dict[int, tuple[str, str]]) -> dict[int, int]:
    """rank -> ns to add to its times so that the first collective common to all chosen ranks ends together."""
    chosen = sorted(traces)
    con.execute("CREATE OR REPLACE TABLE _x_trace_rank (trace_id VARCHAR, rank INTEGER)")
    con.executemany("INSERT INTO _x_trace_rank VALUES (?, ?)", [(traces[r][0], r) for r in chosen])
    for source in _CALL_SOURCES:
        ends = con.sql(f"""
            WITH calls AS (SELECT r.rank, c.* FROM ({source}) c JOIN _x_trace_rank r USING (trace_id)),
            per_rank AS (SELECT rank, call_key, seq, min(ts_ns) AS ts_ns,
                                arg_min(CAST(ts_ns AS HUGEINT) + dur_ns, ts_ns) AS end_ns
                         FROM calls GROUP BY ALL),
            common AS (SELECT call_key, seq FROM per_rank GROUP BY ALL HAVING count(*) = {len(chosen)}),
            first AS (SELECT call_key, seq FROM per_rank JOIN common USING (call_key, seq)
                      WHERE rank = {chosen[0]} ORDER BY ts_ns, call_key, seq LIMIT 1)
            SELECT rank, end_ns FROM per_rank JOIN first USING (call_key, seq)""").fetchall()
        if ends:
            end_by_rank = {int(rank): int(end) for rank, end in ends}
            reference = end_by_rank[chosen[0]]
            return {rank: reference - end_by_rank[rank] for rank in chosen}
    raise UserError(
        f"--align collective: no collective common to {ranks_text(chosen)}"
        " (no communication recorded on every one of them)"
    )


def _create_ranks_table(
    con: duckdb.DuckDBPyConnection, traces: dict[int, tuple[str, str]], offsets: dict[int, int]
) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE _x_ranks (trace_id VARCHAR, rank INTEGER, offset_ns HUGEINT, keep_cat BOOLEAN)"
    )
    rows = [(trace_id, rank, offsets[rank], fmt == "kineto") for rank, (trace_id, fmt) in sorted(traces.items())]
    con.executemany("INSERT INTO _x_ranks VALUES (?, ?, CAST(? AS HUGEINT), ?)", [_text_offset(r) for r in rows])
    con.execute("CREATE OR REPLACE TABLE _x_cats (on_device BOOLEAN, kind VARCHAR, cat VARCHAR)")
    cats = [(False, k, c) for k, c in _HOST_CAT.items()] + [(True, k, c) for k, c in _DEVICE_CAT.items()]
    con.executemany("INSERT INTO _x_cats VALUES (?, ?, ?)", cats)
    con.execute("""
        CREATE OR REPLACE VIEW _x_slices AS
        SELECT s.trace_id, s.slice_id, r.rank, s.device_type <> 'cpu' AS on_device,
               CASE WHEN s.device_type = 'cpu' THEN '' ELSE coalesce(CAST(s.device_id AS VARCHAR), s.pid, '') END
                 AS device,
               coalesce(s.pid, '') AS pid, coalesce(s.tid, '') AS tid, s.stream, s.step, s.kind,
               CAST(s.ts_ns AS HUGEINT) + r.offset_ns AS ts, s.dur_ns AS dur
        FROM slices s JOIN _x_ranks r USING (trace_id)
        WHERE s.ts_ns IS NOT NULL AND s.dur_ns IS NOT NULL""")


def _text_offset(row: tuple[str, int, int, bool]) -> tuple[str, int, str, bool]:
    """The offset as decimal text: DuckDB binds a Python int past int64 as a double."""
    trace_id, rank, offset, keep_cat = row
    return trace_id, rank, str(offset), keep_cat


def _window(
    con: duckdb.DuckDBPyConnection, ranks: list[int], step: int | None, window: tuple[int, int] | None
) -> Window:
    start, end = con.sql("SELECT min(ts), max(ts + greatest(dur, 0)) FROM _x_slices").fetchall()[0]
    if start is None:
        raise UserError(f"no slices to export on {ranks_text(ranks)}")
    if window is not None:
        lo, hi = int(start) + window[0], int(start) + window[1]
        return Window(lo, hi, f"{_ms(window[0])}-{_ms(window[1])} ms from the start")
    if step is None:
        return Window(int(start), int(end) + 1, "whole trace")  # +1: a last slice of no duration is in it
    lo_hi = con.sql(
        "SELECT min(ts), max(ts + greatest(dur, 0)) FROM _x_slices WHERE step = $step", params={"step": step}
    ).fetchall()[0]
    if lo_hi[0] is None:
        steps = con.sql("SELECT DISTINCT step FROM _x_slices WHERE step IS NOT NULL ORDER BY 1").fetchall()
        known = f"steps {format_ranks([int(s) for (s,) in steps])}" if steps else "no steps"
        raise UserError(f"--step {step}: no step {step} on {ranks_text(ranks)} ({known})")
    return Window(int(lo_hi[0]), int(lo_hi[1]) + 1, f"step {step}")


def _ms(ns: int) -> str:
    """ns as ms, exact (`600500` -> `0.6005`)."""
    whole, part = divmod(ns, 1_000_000)
    return f"{whole}.{part:06d}".rstrip("0").rstrip(".")


def _select(con: duckdb.DuckDBPyConnection, window: Window) -> list[str]:
    """Temp tables of what the window holds (`_x_sel` slices, `_x_counters`); warnings about what was left out."""
    bounds = {"lo": str(window.lo_ns), "hi": str(window.hi_ns)}
    overlaps = "ts < CAST($hi AS HUGEINT) AND ts + greatest(dur, 1) > CAST($lo AS HUGEINT)"
    con.execute(f"CREATE OR REPLACE TABLE _x_sel AS SELECT * FROM _x_slices WHERE dur >= 0 AND {overlaps}", bounds)
    negative = con.sql(f"SELECT count(*) FROM _x_slices WHERE dur < 0 AND {overlaps}", params=bounds).fetchall()[0][0]
    con.execute(
        """CREATE OR REPLACE TABLE _x_counters AS
           SELECT r.rank, CAST(c.ts_ns AS HUGEINT) + r.offset_ns AS ts, c.name, c.series, c.value
           FROM counters c JOIN _x_ranks r USING (trace_id)
           WHERE c.ts_ns IS NOT NULL AND CAST(c.ts_ns AS HUGEINT) + r.offset_ns >= CAST($lo AS HUGEINT)
             AND CAST(c.ts_ns AS HUGEINT) + r.offset_ns < CAST($hi AS HUGEINT)""",
        bounds,
    )
    if negative:
        return [f"{negative} slices of negative duration were left out (Chrome traces cannot show them)"]
    return []


def _origin(con: duckdb.DuckDBPyConnection, window: Window) -> int:
    """The time the export's timestamps count from: its earliest event (0 when that is before 0)."""
    first = con.sql("SELECT min(ts) FROM (SELECT ts FROM _x_sel UNION ALL SELECT ts FROM _x_counters)").fetchall()[0]
    origin = int(first[0]) if first[0] is not None else window.lo_ns
    return max(origin, 0)


def _layout(con: duckdb.DuckDBPyConnection) -> tuple[list[Process], list[Thread]]:
    """Processes (a rank's host, each of its devices) and threads (a source track each), numbered in tables
    `_x_procs` and `_x_tracks`; counters go to the rank's host process, made where it has no host slices."""
    con.execute("""
        CREATE OR REPLACE TABLE _x_procs AS
        WITH p AS (SELECT DISTINCT rank, on_device, device FROM _x_sel
                   UNION SELECT DISTINCT rank, false, '' FROM _x_counters)
        SELECT *, row_number() OVER (ORDER BY rank, on_device, TRY_CAST(device AS BIGINT), device) AS new_pid FROM p""")
    con.execute("""
        CREATE OR REPLACE TABLE _x_tracks AS
        WITH t AS (SELECT trace_id, rank, on_device, device, pid, tid, min(stream) AS stream FROM _x_sel GROUP BY ALL),
        names AS (SELECT trace_id, pid, tid, min(value) AS name FROM metadata
                  WHERE kind = 'thread' AND key = 'thread_name' GROUP BY ALL),
        host_pids AS (SELECT rank, count(DISTINCT pid) AS n FROM t WHERE NOT on_device GROUP BY rank)
        SELECT t.*, n.name, coalesce(h.n, 1) > 1 AS show_pid, p.new_pid,
               row_number() OVER (ORDER BY p.new_pid, t.stream, TRY_CAST(t.pid AS BIGINT), t.pid,
                                           TRY_CAST(t.tid AS BIGINT), t.tid) AS new_tid
        FROM t JOIN _x_procs p USING (rank, on_device, device)
        LEFT JOIN names n USING (trace_id, pid, tid) LEFT JOIN host_pids h USING (rank)""")
    con.execute("""CREATE OR REPLACE VIEW _x_pos AS SELECT x.trace_id, x.slice_id, x.ts, t.new_pid, t.new_tid
                   FROM _x_sel x JOIN _x_tracks t USING (trace_id, device, pid, tid)""")
    processes = [
        Process(int(pid), f"rank {rank} {f'device {device}' if on_device else 'host'}", int(rank))
        for rank, on_device, device, pid in con.sql(
            "SELECT rank, on_device, device, new_pid FROM _x_procs ORDER BY new_pid"
        ).fetchall()
    ]
    threads = [
        Thread(int(pid), int(tid), _thread_name(on_device, source_pid, source_tid, stream, name, show_pid))
        for pid, tid, on_device, source_pid, source_tid, stream, name, show_pid in con.sql(
            "SELECT new_pid, new_tid, on_device, pid, tid, stream, name, show_pid FROM _x_tracks ORDER BY new_tid"
        ).fetchall()
    ]
    return processes, threads


def _thread_name(
    on_device: bool, pid: str | None, tid: str | None, stream: int | None, name: str | None, show_pid: bool
) -> str:
    """A track's name: `stream S` on a device, the recorded thread name (else `thread T`) on the host."""
    if on_device and stream is not None:
        return f"stream {stream}"
    label = name or f"thread {tid}"
    return f"{label} (pid {pid})" if show_pid else label


def run_export(
    targets: list[Path],
    ranks: list[int] | None = None,
    step: int | None = None,
    window: tuple[int, int] | None = None,
    align: str = "clock",
    cache_dir: Path | None = None,
) -> TraceExport:
    """Open TARGETS (stores, trace files, dumps) and choose what to export; close the result when written.

    The warnings start with the data-quality notes (ingest warnings, partial dumps, ...) of the exported ranks."""
    check_choices(step, window, align)
    stores = [resolve_store(Path(t), Path(cache_dir) if cache_dir else None) for t in targets]
    con = connect(stores)
    try:
        export = build_export(con, ranks, step, window, align)
        notes = data_quality(con, stores, trace_rows(con, stores))
        # tasks without a launch record are a caveat of the launch analyses, not of the exported timeline
        export.warnings[:0] = [
            note.message
            for note in notes
            if note.kind != "no_launch" and (note.rank is None or note.rank in export.ranks)
        ]
        return export
    except BaseException:
        con.close()
        raise
