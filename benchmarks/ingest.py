#!/usr/bin/env python3
"""Ingest benchmark: traceview vs HTA vs a msgspec "floor" on a >= 1 GB Kineto trace.

One run of this script:

1. builds a large Kineto trace (``--size-gb``, default 1.0, in units of 10^9 bytes) by repeating
   a real corpus trace with shifted timestamps, under ``benchmarks/output/`` (git-ignored), and
   reuses it on later runs when it is still there with the recorded size. Two generations:

   * ``a``: modern relative µs plus ``baseTimeNanoseconds``
     (``kineto/hta/nccl_parser_config/nccl_data.json.gz``, ts like 4458676522690.655);
   * ``b``: absolute µs with ns decimals
     (``kineto/hta/ns_resolution_trace/rank-0...pt.trace.json.gz``, ts like 1712195495519689.047).

   The copy keeps the source's layout byte for byte: the top-level keys around ``traceEvents``,
   the pretty-printed events as Kineto writes them, and the metadata (``ph: M``) events and the
   closing span/instant events once at the end of the array. Repetition k shifts every ``ts`` by
   k * period (an integer number of µs, so the decimal text of the fraction is untouched and no
   precision is lost) and every flow ``id``, ``correlation`` and ``External id`` by k * stride,
   so that ids stay unique and links stay intact. The first shifted repetition is checked event by
   event against the source with exact decimals before the file is used.

2. measures, on the same file and with the page cache warm, each contender in its own child
   process (peak RSS is that process's ``ru_maxrss``):

   * ``floor``: read the bytes and decode them with a minimal typed msgspec decoder (a Struct with
     ph, cat, name, pid, tid, ts, dur; the top level declares only ``traceEvents``);
   * ``traceview``: ``traceview.store.ingest([file], out, force=True)``, with a per-stage breakdown
     (the parser's own timings plus the Parquet writing of each table);
   * ``hta``: ``hta.trace_analysis.TraceAnalysis(trace_dir=...)`` on a directory holding only the
     file, under a time limit (``--hta-timeout``) and an address-space limit (``--hta-mem-gb``).

   The floor runs ``--floor-runs`` times (default 3) and traceview ``--traceview-runs`` times
   (default 1); the fastest run counts. Each run also reports its CPU seconds and the 1-minute load
   average at its start: on a busy 2-core machine, CPU s well below wall s means the run waited.

3. prints a table (wall s, CPU s, MB/s, peak RSS MB, RSS / JSON size), the three target ratios, and a
   correctness check: the X events in the store's ``slices`` equal the X events the floor decoded,
   and the store's ``sum(ts_ns)``, ``min``/``max(ts_ns)`` and ``sum(dur_ns)`` equal the exact values
   computed from the decimal text while generating.

``--truncated`` adds a run of traceview on the same trace cut at 60% (a crashed job's dump): its
throughput should be at least half of that of the complete trace (the cut is recovered in one pass).

``--json FILE`` writes every figure as JSON; ``--profile`` adds a run of traceview's ingest under
cProfile that also times each SQL statement of the Kineto parser (stats in ``benchmarks/output``).
The stage timing wraps functions of ``parsers`` and ``traceview`` at run time and skips any that
no longer exist, so the benchmark keeps working while those modules change.

Usage::

    python benchmarks/ingest.py                        # generation a, 1 GB
    python benchmarks/ingest.py --generation both --json benchmarks/output/ingest.json
    python benchmarks/ingest.py --size-gb 0.05 --only floor,traceview   # a quick smoke run
    python benchmarks/ingest.py --only traceview --profile              # where traceview's time goes
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import harness  # benchmarks/harness.py, beside this script
import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "output"
CORPUS = REPO.parent / "shared" / "corpus" / "kineto" / "hta"
GENERATOR_VERSION = 1
GB = 10**9
MB = 10**6
GAP_US = 1000  # idle time between two repetitions
CONTENDERS = ("floor", "traceview", "hta")
TARGETS = {
    "hta_over_traceview_time": 15.0,  # HTA time / traceview time >= 15
    "traceview_over_floor_speed": 0.25,  # traceview MB/s / floor MB/s >= 25%
    "traceview_rss_over_json": 1.5,  # traceview peak RSS / JSON bytes <= 1.5
}

# Keys whose integer part is shifted per repetition: `ts` by the period (µs), ids by the stride.
# The lookbehind keeps an escaped key inside a string value from matching; a value that is
# negative or written with an exponent does not match and is caught by the verification.
_SHIFTED = re.compile(r'(?<!\\)"(ts|id|correlation|External id)"\s*:\s*(\d+)(?=[.,\s}\]])')
_TIME_KEY = "ts"
# The head of a SQL statement, to label its time in the profile (`--profile`).
_STATEMENT = re.compile(r"(CREATE TABLE \w+|UPDATE \w+|INSERT INTO \w+|SELECT count\(\*\) FROM \w+[^)]{0,40})")
_ID_KEYS = ("id", "correlation", "External id")


@dataclass(frozen=True)
class Generation:
    """A Kineto timestamp convention and the corpus trace it is built from."""

    key: str
    title: str
    source: Path


GENERATIONS = {
    "a": Generation(
        "a",
        "relative µs + baseTimeNanoseconds",
        CORPUS / "nccl_parser_config" / "nccl_data.json.gz",
    ),
    "b": Generation(
        "b",
        "absolute µs with ns decimals",
        CORPUS / "ns_resolution_trace" / "rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz",
    ),
}


# --------------------------------------------------------------------------------------------
# Building the large trace
# --------------------------------------------------------------------------------------------


@dataclass
class Expected:
    """Exact figures of the generated file, computed from the decimal text (ns, Python ints)."""

    events: int
    x_events: int
    sum_ts_ns: int
    min_ts_ns: int
    max_ts_ns: int
    sum_dur_ns: int


@dataclass
class TraceMeta:
    """What was generated; stored beside the trace so that a later run can reuse it."""

    generator_version: int
    generation: str
    source: str
    source_sha256: str
    size_gb: float
    repetitions: int
    period_us: int
    id_stride: int
    base_time_ns: int
    bytes: int
    expected: Expected


@dataclass
class _Template:
    """The shiftable part of the source: literal text around the integer parts to shift."""

    literals: list[str]
    base: np.ndarray  # int64 values of the slots in the source
    step: np.ndarray  # int64 shift per repetition of each slot (period or stride)

    def render(self, k: int) -> str:
        values = (self.base + self.step * k).astype(str).tolist()
        parts: list[str] = [""] * (2 * len(values) + 1)
        parts[0::2] = self.literals
        parts[1::2] = values
        return "".join(parts)


@dataclass
class _Source:
    """A corpus trace cut into prefix | head events | tail events | suffix (text)."""

    prefix: str
    head: str
    separator: str
    tail: str
    suffix: str
    head_events: list[dict]
    tail_events: list[dict]
    base_time_ns: int


def _ns(value: Any) -> int:
    """Exact ns of a µs value parsed as Decimal (or int), rounded half up as SQL round() does."""
    return int((Decimal(value) * 1000).to_integral_value(ROUND_HALF_UP))


def _split_source(text: str) -> _Source:
    """Locate the events of `traceEvents` in the text, keeping every byte around them."""
    doc = json.loads(text, parse_float=Decimal)
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        raise ValueError("expected a Kineto trace in object form with a traceEvents array")
    key = text.find('"traceEvents"')
    colon = key + len('"traceEvents"')
    while text[colon].isspace():
        colon += 1
    if key < 0 or text[colon] != ":":
        raise ValueError("cannot locate the traceEvents key")
    pos = text.index("[", colon) + 1
    decoder = json.JSONDecoder(parse_float=Decimal)
    spans: list[tuple[int, int]] = []
    events: list[dict] = []
    while True:
        while text[pos].isspace():
            pos += 1
        if text[pos] == "]":
            break
        if spans:
            if text[pos] != ",":
                raise ValueError(f"unexpected {text[pos]!r} between events at offset {pos}")
            pos += 1
            while text[pos].isspace():
                pos += 1
        event, end = decoder.raw_decode(text, pos)
        spans.append((pos, end))
        events.append(event)
        pos = end
    if events != doc["traceEvents"]:
        raise ValueError("the events found in the text differ from the parsed traceEvents")
    if len(spans) < 2:
        raise ValueError("too few events to repeat")
    first_meta = next((i for i, e in enumerate(events) if e.get("ph") == "M"), len(events))
    if first_meta == 0:
        raise ValueError("no activity events before the metadata events")
    head_end = spans[first_meta - 1][1]
    tail = text[spans[first_meta][0] : spans[-1][1]] if first_meta < len(events) else ""
    return _Source(
        prefix=text[: spans[0][0]],
        head=text[spans[0][0] : head_end],
        separator=text[spans[0][1] : spans[1][0]],
        tail=tail,
        suffix=text[spans[-1][1] :],
        head_events=events[:first_meta],
        tail_events=events[first_meta:],
        base_time_ns=int(doc.get("baseTimeNanoseconds") or 0),
    )


def _template(head: str, period_us: int, id_stride: int) -> _Template:
    literals: list[str] = []
    values: list[int] = []
    steps: list[int] = []
    last = 0
    for match in _SHIFTED.finditer(head):
        literals.append(head[last : match.start(2)])
        values.append(int(match.group(2)))
        steps.append(period_us if match.group(1) == _TIME_KEY else id_stride)
        last = match.end(2)
    literals.append(head[last:])
    return _Template(literals, np.array(values, dtype=np.int64), np.array(steps, dtype=np.int64))


def _max_id(events: list[dict]) -> int:
    best = 0

    def walk(value: Any) -> None:
        nonlocal best
        if isinstance(value, dict):
            for key, item in value.items():
                if key in _ID_KEYS and isinstance(item, int) and not isinstance(item, bool):
                    best = max(best, item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(events)
    return best


def _check_shifted(original: Any, shifted: Any, period_us: int, id_stride: int, key: str = "") -> None:
    """Raise unless `shifted` is `original` with exactly the intended keys moved."""
    if isinstance(original, dict) and isinstance(shifted, dict):
        if list(original) != list(shifted):
            raise AssertionError(f"keys differ: {list(original)} vs {list(shifted)}")
        for k in original:
            _check_shifted(original[k], shifted[k], period_us, id_stride, k)
        return
    if isinstance(original, list) and isinstance(shifted, list) and len(original) == len(shifted):
        for a, b in zip(original, shifted, strict=True):
            _check_shifted(a, b, period_us, id_stride)
        return
    numeric = isinstance(original, (int, Decimal)) and not isinstance(original, bool)
    if numeric and key == _TIME_KEY:
        want = original + period_us
    elif numeric and key in _ID_KEYS and isinstance(original, int):
        want = original + id_stride
    else:
        want = original
    if shifted != want or type(shifted) is not type(want) or str(shifted) != str(want):
        raise AssertionError(f"{key!r}: {original!r} became {shifted!r}, expected {want!r}")


def _x_stats(events: list[dict]) -> tuple[int, int, int, int, int]:
    """(count, sum ts ns, min ts ns, max ts ns, sum dur ns) of the X events, from exact decimals."""
    ts = [_ns(e["ts"]) for e in events if e.get("ph") == "X" and "ts" in e]
    dur = [_ns(e.get("dur", 0)) for e in events if e.get("ph") == "X" and "ts" in e]
    if not ts:
        return 0, 0, 0, 0, 0
    return len(ts), sum(ts), min(ts), max(ts), sum(dur)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def trace_paths(gen: Generation, size_gb: float) -> tuple[Path, Path]:
    """(trace file, meta file). The trace sits alone in its directory, as HTA wants."""
    label = f"gen-{gen.key}-{size_gb:g}gb"
    return OUTPUT / label / "rank-0.bench.pt.trace.json", OUTPUT / f"{label}.meta.json"


def _load_meta(path: Path) -> TraceMeta | None:
    try:
        raw = json.loads(path.read_text())
        raw["expected"] = Expected(**raw["expected"])
        return TraceMeta(**raw)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def ensure_trace(gen: Generation, size_gb: float, log: Callable[[str], None]) -> tuple[Path, TraceMeta]:
    """Return the generated trace for `gen`, building it unless a matching one is present."""
    trace, meta_path = trace_paths(gen, size_gb)
    source_sha = _sha256(gen.source)
    meta = _load_meta(meta_path)
    if (
        meta is not None
        and meta.generator_version == GENERATOR_VERSION
        and meta.source_sha256 == source_sha
        and meta.size_gb == size_gb
        and trace.is_file()
        and trace.stat().st_size == meta.bytes
        and [p.name for p in trace.parent.iterdir()] == [trace.name]
    ):
        log(f"reusing {trace.relative_to(REPO)} ({meta.bytes / GB:.3f} GB, {meta.repetitions} repetitions)")
        return trace, meta

    started = time.perf_counter()
    text = gzip.decompress(gen.source.read_bytes()).decode("utf-8")
    src = _split_source(text)
    starts = [Decimal(e["ts"]) for e in src.head_events if "ts" in e]
    ends = [Decimal(e["ts"]) + Decimal(e.get("dur", 0)) for e in src.head_events if "ts" in e]
    period_us = math.ceil(max(ends) - min(starts)) + GAP_US
    max_id = _max_id(src.head_events + src.tail_events)
    id_stride = 10 ** len(str(max_id + 1))
    tpl = _template(src.head, period_us, id_stride)

    # Verify one shifted repetition against the source, exactly, before writing anything.
    shifted = json.loads("[" + tpl.render(1) + "]", parse_float=Decimal)
    if len(shifted) != len(src.head_events):
        raise AssertionError("the shifted repetition has a different number of events")
    _check_shifted(src.head_events, shifted, period_us, id_stride)
    if tpl.render(0) != src.head:
        raise AssertionError("repetition 0 does not reproduce the source text")

    fixed = len((src.prefix + src.suffix).encode()) + (len((src.separator + src.tail).encode()) if src.tail else 0)
    per_rep = len(src.head.encode()) + len(src.separator.encode())
    target = int(size_gb * GB)
    reps = max(1, math.ceil((target - fixed + len(src.separator.encode())) / per_rep))

    trace.parent.mkdir(parents=True, exist_ok=True)
    for stale in trace.parent.iterdir():
        stale.unlink()
    partial = trace.parent.parent / f".{trace.parent.name}.partial"
    log(f"writing {trace.relative_to(REPO)}: {reps} repetitions of {gen.source.name} (period {period_us} µs)")
    with open(partial, "wb") as out:
        out.write(src.prefix.encode())
        for k in range(reps):
            if k:
                out.write(src.separator.encode())
            out.write(tpl.render(k).encode())
        if src.tail:
            out.write((src.separator + src.tail).encode())
        out.write(src.suffix.encode())
    size = partial.stat().st_size
    if size < target:
        raise AssertionError(f"generated {size} bytes, fewer than the {target} asked for")
    os.replace(partial, trace)

    hx, hsum, hmin, hmax, hdur = _x_stats(src.head_events)
    tx, tsum, tmin, tmax, tdur = _x_stats(src.tail_events)
    period_ns = period_us * 1000
    base = src.base_time_ns
    x_total = reps * hx + tx
    expected = Expected(
        events=reps * len(src.head_events) + len(src.tail_events),
        x_events=x_total,
        sum_ts_ns=reps * hsum + hx * period_ns * (reps * (reps - 1) // 2) + tsum + base * x_total,
        min_ts_ns=base + min([hmin] + ([tmin] if tx else [])),
        max_ts_ns=base + max([hmax + (reps - 1) * period_ns] + ([tmax] if tx else [])),
        sum_dur_ns=reps * hdur + tdur,
    )
    meta = TraceMeta(
        generator_version=GENERATOR_VERSION,
        generation=gen.key,
        source=str(gen.source.relative_to(REPO.parent)),
        source_sha256=source_sha,
        size_gb=size_gb,
        repetitions=reps,
        period_us=period_us,
        id_stride=id_stride,
        base_time_ns=base,
        bytes=size,
        expected=expected,
    )
    meta_path.write_text(json.dumps(asdict(meta), indent=2) + "\n")
    log(f"wrote {size / GB:.3f} GB, {expected.events:,} events in {time.perf_counter() - started:.1f} s")
    return trace, meta


def warm_cache(path: Path) -> float:
    """Read the file once so that every contender starts with it in the page cache; return MB/s."""
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(64 << 20)
        view = memoryview(buf)
        while fh.readinto(view):
            pass
    return path.stat().st_size / MB / (time.perf_counter() - started)


# --------------------------------------------------------------------------------------------
# Contenders (each runs in a child process: `ingest.py --worker NAME ...`)
# --------------------------------------------------------------------------------------------


def _floor_decoder() -> Callable[[bytes], Any]:
    """The minimal typed msgspec decoder: 7 fields per event, only the events array at the top.

    Built with `defstruct` so that the field types are objects, not the strings that
    `from __future__ import annotations` would make of class annotations in a function.
    """
    import msgspec

    event = msgspec.defstruct(
        "Event",
        [
            ("ph", str, ""),
            ("cat", str | None, None),
            ("name", str | None, None),
            ("pid", int | str | None, None),
            ("tid", int | str | None, None),
            ("ts", float | None, None),
            ("dur", float | None, None),
        ],
    )
    trace = msgspec.defstruct("Trace", [("traceEvents", list[event])])  # type: ignore[valid-type]
    return msgspec.json.Decoder(trace).decode


def run_floor(trace: Path, result: dict) -> None:
    decode = _floor_decoder()
    result["rss_after_import_bytes"] = harness.maxrss_bytes(resource.RUSAGE_SELF)
    cpu = harness.cpu_s()
    started = time.perf_counter()
    data = trace.read_bytes()
    read_done = time.perf_counter()
    decoded = decode(data)
    done = time.perf_counter()
    result["cpu_s"] = harness.cpu_s() - cpu
    result["peak_rss_bytes"] = harness.maxrss_bytes(resource.RUSAGE_SELF)
    result.update(
        wall_s=done - started,
        read_s=read_done - started,
        decode_s=done - read_done,
        events=len(decoded.traceEvents),
        x_events=sum(1 for e in decoded.traceEvents if e.ph == "X"),
    )


class _StageClock:
    """Wall time spent inside wrapped functions, by label (for traceview's stage breakdown)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.parser_timings: dict[str, float] = {}
        self.wrapped: list[str] = []

    def wrap(self, owner: Any, attr: str, label: Callable[[tuple, dict], str] | str) -> None:
        original = getattr(owner, attr, None)
        if original is None:
            return
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            name = label if isinstance(label, str) else label(args, kwargs)
            started = time.perf_counter()
            try:
                value = original(*args, **kwargs)
            finally:
                clock.seconds[name] = clock.seconds.get(name, 0.0) + time.perf_counter() - started
            timings = getattr(value, "info", {}).get("timings") if hasattr(value, "info") else None
            if isinstance(timings, dict):
                for key, seconds in timings.items():
                    clock.parser_timings[key] = clock.parser_timings.get(key, 0.0) + float(seconds)
            return value

        setattr(owner, attr, timed)
        self.wrapped.append(f"{getattr(owner, '__name__', owner)}.{attr}")


def _table_label(args: tuple, kwargs: dict) -> str:
    path = kwargs.get("path", args[1] if len(args) > 1 else None)
    return f"write {Path(path).parent.name}" if path is not None else "write ?"


def _sql_label(args: tuple, kwargs: dict) -> str:
    query = str(kwargs.get("query", args[1] if len(args) > 1 else ""))
    match = _STATEMENT.search(query)
    head = " ".join(match.group().split()) if match else " ".join(query.split())[:60]
    return f"sql: {head}"


def _instrument(clock: _StageClock, statements: bool = False) -> None:
    """Time traceview's stages without touching its code: wrap what exists, skip what does not.

    With `statements`, also time each SQL statement the Kineto parser's builder runs.
    """
    import traceview.parsers.parsed
    import traceview.store
    from traceview import parsers

    if statements:
        import traceview.parsers.chrome

        builder = getattr(parsers.chrome, "_Builder", None)
        if builder is not None:
            clock.wrap(builder, "sql", _sql_label)
            clock.wrap(builder, "count", _sql_label)

    clock.wrap(parsers, "parse", "parse")
    for cls in ("DuckDBSource", "ArrowSource", "RowGroupSource"):
        owner = getattr(parsers.parsed, cls, None)
        if owner is not None:
            clock.wrap(owner, "write_parquet", _table_label)
    if not any(w.endswith("write_parquet") for w in clock.wrapped):  # older store layout
        clock.wrap(traceview.store, "_write_table", lambda a, k: f"write {Path(a[2]).parent.name}")


def _stage_breakdown(clock: _StageClock, total: float) -> dict[str, float]:
    stages: dict[str, float] = {}
    parse = clock.seconds.get("parse", 0.0)
    for key, seconds in clock.parser_timings.items():
        stages[f"parse: {key}"] = seconds
    if parse:
        stages["parse: other (counts, vendor, top level)"] = parse - sum(clock.parser_timings.values())
    writes = {k: v for k, v in clock.seconds.items() if k.startswith("write ")}
    statements = {k: v for k, v in clock.seconds.items() if k.startswith("sql: ")}
    stages.update(sorted(statements.items(), key=lambda kv: -kv[1]))
    stages.update(sorted(writes.items(), key=lambda kv: -kv[1]))
    stages["ingest: other (detect, manifest, rename)"] = total - parse - sum(writes.values())
    return stages


def run_traceview(trace: Path, store: Path, result: dict, profile: Path | None) -> None:
    import duckdb

    from traceview.store import ingest

    clock = _StageClock()
    _instrument(clock, statements=profile is not None)
    result["rss_after_import_bytes"] = harness.maxrss_bytes(resource.RUSAGE_SELF)
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu = harness.cpu_s()
    started = time.perf_counter()
    outcome = ingest([trace], store, force=True)
    wall = time.perf_counter() - started
    result["cpu_s"] = harness.cpu_s() - cpu
    if profiler is not None:
        profiler.disable()
    result["peak_rss_bytes"] = harness.maxrss_bytes(resource.RUSAGE_SELF)
    result["children_peak_rss_bytes"] = harness.maxrss_bytes(resource.RUSAGE_CHILDREN)
    result["wall_s"] = wall
    result["stages_s"] = _stage_breakdown(clock, wall)
    result["instrumented"] = clock.wrapped
    result["warnings"] = list(outcome.warnings)
    glob = str(store / "slices" / "*.parquet").replace("'", "''")
    row = duckdb.sql(
        f"SELECT count(*), sum(ts_ns::HUGEINT), min(ts_ns), max(ts_ns), sum(dur_ns::HUGEINT)"
        f" FROM read_parquet('{glob}')"
    ).fetchall()[0]
    result["store_slices"] = {
        "x_events": int(row[0]),
        "sum_ts_ns": int(row[1] or 0),
        "min_ts_ns": int(row[2] or 0),
        "max_ts_ns": int(row[3] or 0),
        "sum_dur_ns": int(row[4] or 0),
    }
    result["store_bytes"] = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    if profiler is not None and profile is not None:
        import io
        import pstats

        profiler.dump_stats(str(profile))
        for order in ("tottime", "cumulative"):
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(20)
            result[f"profile_top_{order}"] = text.getvalue()


def run_hta(trace: Path, result: dict) -> None:
    from hta.trace_analysis import TraceAnalysis

    result["rss_after_import_bytes"] = harness.maxrss_bytes(resource.RUSAGE_SELF)
    cpu = harness.cpu_s()
    started = time.perf_counter()
    analysis = TraceAnalysis(trace_dir=str(trace.parent))
    wall = time.perf_counter() - started
    result["cpu_s"] = harness.cpu_s() - cpu
    result["peak_rss_bytes"] = harness.maxrss_bytes(resource.RUSAGE_SELF)
    result["children_peak_rss_bytes"] = harness.maxrss_bytes(resource.RUSAGE_CHILDREN)
    result["wall_s"] = wall
    result["rows"] = {str(rank): len(df) for rank, df in analysis.t.traces.items()}


def worker_main(args: argparse.Namespace) -> int:
    """Child-process entry: run one contender, write its figures to `args.result` as JSON."""
    trace = Path(args.trace)

    def body(result: dict) -> None:
        if args.worker == "floor":
            run_floor(trace, result)
        elif args.worker == "traceview":
            run_traceview(trace, Path(args.store), result, Path(args.profile) if args.profile else None)
        elif args.worker == "hta":
            run_hta(trace, result)
        else:
            raise ValueError(f"unknown contender {args.worker}")

    return harness.run_worker(args.worker, args.mem_gb, Path(args.result), body)


# --------------------------------------------------------------------------------------------
# The parent: run the contenders, report
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One contender's figures on one file."""

    contender: str
    status: str
    wall_s: float | None = None
    cpu_s: float | None = None
    mb_per_s: float | None = None
    peak_rss_mb: float | None = None
    rss_over_json: float | None = None
    details: dict = field(default_factory=dict)


def run_contender(
    name: str, trace: Path, store: Path, timeout_s: float, mem_gb: float, log_dir: Path, profile: Path | None = None
) -> Run:
    """Run one contender in a fresh child process (its own session, killed as a group on timeout)."""
    tag = name if profile is None else f"{name}-profile"
    result_path = log_dir / f"{trace.parent.name}-{tag}.result.json"
    log_path = log_dir / f"{trace.parent.name}-{tag}.log"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--trace", str(trace)]
    cmd += ["--store", str(store), "--result", str(result_path), "--mem-gb", str(mem_gb)]
    if profile is not None:
        cmd += ["--profile-out", str(profile)]
    load_before = os.getloadavg()
    started = time.perf_counter()
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and any pool it forked
            proc.wait()
            details = {"log": str(log_path), "loadavg_before": load_before}
            return Run(name, f"did not finish in {timeout_s:.0f} s", details=details)
    elapsed = time.perf_counter() - started
    size = trace.stat().st_size
    if not result_path.is_file():
        why = f"killed by signal {-code}" if code < 0 else f"exited {code}"
        if code == -signal.SIGKILL:
            why += " (out of memory?)"
        details = {"log": str(log_path), "tail": harness.tail(log_path), "loadavg_before": load_before}
        return Run(name, why, details=details)
    details = json.loads(result_path.read_text())
    details["child_elapsed_s"] = elapsed
    details["loadavg_before"] = load_before
    details["loadavg_after"] = os.getloadavg()
    details["log"] = str(log_path)
    run = Run(name, details.get("status", "?"), details=details)
    if run.status != "ok":
        details["tail"] = harness.tail(log_path)
        return run
    run.wall_s = details["wall_s"]
    run.cpu_s = details.get("cpu_s")
    run.mb_per_s = size / MB / details["wall_s"]
    run.peak_rss_mb = details["peak_rss_bytes"] / MB
    run.rss_over_json = details["peak_rss_bytes"] / size
    return run


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        width = re.match(r"\d*", spec)
        return "-".rjust(int(width.group()) if width and width.group() else 1)
    return format(value, spec)


def evaluate(runs: dict[str, Run], meta: TraceMeta, hta_timeout: float) -> dict:
    """The target ratios and the correctness checks."""
    tv, floor, hta = runs.get("traceview"), runs.get("floor"), runs.get("hta")
    tv_ok = tv is not None and tv.wall_s is not None
    ratios: dict[str, dict] = {}
    if tv_ok and hta is not None:
        assert tv is not None and tv.wall_s is not None
        if hta.wall_s is not None:
            ratios["hta_over_traceview_time"] = {"value": hta.wall_s / tv.wall_s, "bound": "exact"}
        elif hta.status.startswith("did not finish"):
            ratios["hta_over_traceview_time"] = {"value": hta_timeout / tv.wall_s, "bound": "lower"}
        else:
            ratios["hta_over_traceview_time"] = {"value": None, "bound": f"HTA failed: {hta.status}"}
    if tv_ok and floor is not None and floor.mb_per_s is not None:
        assert tv is not None and tv.mb_per_s is not None
        ratios["traceview_over_floor_speed"] = {"value": tv.mb_per_s / floor.mb_per_s, "bound": "exact"}
    if tv_ok:
        assert tv is not None
        ratios["traceview_rss_over_json"] = {"value": tv.rss_over_json, "bound": "exact"}
    for key, ratio in ratios.items():
        value, target = ratio["value"], TARGETS[key]
        ratio["target"] = target
        if value is None:
            ratio["met"] = False
        elif key == "traceview_rss_over_json":
            ratio["met"] = value <= target
        else:
            ratio["met"] = value >= target
    checks: dict[str, Any] = {}
    exp = asdict(meta.expected)
    if floor is not None and floor.status == "ok":
        checks["floor_x_events"] = floor.details["x_events"]
        checks["floor_matches_generator"] = floor.details["x_events"] == exp["x_events"]
    if tv_ok and tv is not None:
        stored = tv.details["store_slices"]
        checks["store_x_events"] = stored["x_events"]
        if "floor_x_events" in checks:
            checks["store_count_matches_floor"] = stored["x_events"] == checks["floor_x_events"]
        for key in ("sum_ts_ns", "min_ts_ns", "max_ts_ns", "sum_dur_ns"):
            checks[f"store_{key}_exact"] = stored[key] == exp[key]
            if stored[key] != exp[key]:
                checks[f"store_{key}_off_by"] = stored[key] - exp[key]
    return {"ratios": ratios, "checks": checks}


def report(gen: Generation, trace: Path, meta: TraceMeta, runs: dict[str, Run], verdict: dict) -> str:
    size = trace.stat().st_size
    lines = [
        "",
        f"Generation {gen.key} ({gen.title}): {trace.relative_to(REPO)}",
        f"  {size / GB:.3f} GB of JSON, {meta.expected.events:,} events ({meta.expected.x_events:,} X),"
        f" {meta.repetitions} repetitions of {gen.source.name}",
        "",
        f"  {'contender':<18} {'wall s':>9} {'CPU s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'RSS/JSON':>9}  status",
    ]
    labels = {"floor": "msgspec floor", "traceview": "traceview ingest", "hta": "HTA TraceAnalysis"}
    for name, run in runs.items():
        lines.append(
            f"  {labels.get(name, name):<18} {_fmt(run.wall_s, '9.2f')} {_fmt(run.cpu_s, '8.2f')}"
            f" {_fmt(run.mb_per_s, '8.1f')}"
            f" {_fmt(run.peak_rss_mb, '12.0f')} {_fmt(run.rss_over_json, '9.2f')}  {run.status}"
        )
    walls = {n: r.details.get("walls_s") for n, r in runs.items() if len(r.details.get("walls_s") or []) > 1}
    if walls:
        lines.append(
            "  best of: " + "; ".join(f"{n} {', '.join(_fmt(w, '.2f') for w in ws)} s" for n, ws in walls.items())
        )
    loads = ", ".join(
        f"{n} {r.details['loadavg_before'][0]:.1f}" for n, r in runs.items() if "loadavg_before" in r.details
    )
    lines.append(f"  1-min load average at each start ({os.cpu_count()} CPUs): {loads}")
    lines.append("")
    names = {
        "hta_over_traceview_time": ("HTA time / traceview time", ">="),
        "traceview_over_floor_speed": ("traceview MB/s / floor MB/s", ">="),
        "traceview_rss_over_json": ("traceview peak RSS / JSON size", "<="),
    }
    for key, ratio in verdict["ratios"].items():
        title, op = names[key]
        value = ratio["value"]
        shown = "n/a" if value is None else (f"{value:.1%}" if key == "traceview_over_floor_speed" else f"{value:.2f}x")
        if ratio["bound"] == "lower":
            shown = ">= " + shown
        target = f"{ratio['target']:.0%}" if key == "traceview_over_floor_speed" else f"{ratio['target']}x"
        lines.append(f"  {title:<32} {shown:>10}   target {op} {target}: {'MET' if ratio['met'] else 'MISSED'}")
    lines.append("")
    for key, value in verdict["checks"].items():
        lines.append(f"  check {key}: {value}")
    tv = runs.get("traceview")
    if tv is not None and tv.status == "ok":
        lines.append("")
        lines.append(f"  traceview stages (s; of {tv.wall_s:.2f} s):")
        for stage, seconds in tv.details["stages_s"].items():
            share = seconds / tv.wall_s if tv.wall_s else 0.0
            lines.append(f"    {stage:<44} {seconds:8.2f}  {share:6.1%}")
        extra = tv.details.get("rss_after_import_bytes", 0) / MB
        lines.append(
            f"  traceview RSS after imports: {extra:.0f} MB; store on disk: {tv.details['store_bytes'] / MB:.0f} MB"
        )
    for run in runs.values():
        if run.status != "ok" and run.details.get("error"):
            lines.append(f"  {run.contender} failed: {run.details['error']}")
        if run.status != "ok" and run.details.get("tail"):
            lines.append(f"  {run.contender} log tail ({run.details.get('log')}):")
            lines += ["    " + line for line in run.details["tail"].splitlines()]
    return "\n".join(lines)


def _git_state() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {"head": git("rev-parse", "HEAD"), "dirty": git("status", "--porcelain", "--", "parsers", "traceview")}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in ("traceview", "duckdb", "pyarrow", "msgspec", "traceinsight", "HolisticTraceAnalysis", "pandas"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return found


def _mem_total_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / 2**30
    except OSError:
        pass
    return 16.0


def bench_generation(gen: Generation, args: argparse.Namespace, contenders: list[str]) -> dict:
    trace, meta = ensure_trace(gen, args.size_gb, harness.log)
    store = OUTPUT / f"store-{gen.key}-{args.size_gb:g}gb"
    log_dir = OUTPUT / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Run] = {}
    warm: dict[str, float] = {}
    for name in contenders:
        warm[name] = warm_cache(trace)
        timeout = args.hta_timeout if name == "hta" else args.timeout
        mem_gb = args.hta_mem_gb if name == "hta" else 0.0
        repeats = {"floor": args.floor_runs, "traceview": args.traceview_runs}.get(name, 1)
        tries: list[Run] = []
        for attempt in range(max(1, repeats)):
            if attempt:
                warm_cache(trace)
            harness.log(
                f"gen {gen.key}: {name} run {attempt + 1}/{repeats} (page cache warm: {warm[name]:.0f} MB/s re-read)"
            )
            run = run_contender(name, trace, store, timeout, mem_gb, log_dir)
            harness.log(
                f"gen {gen.key}: {name}: {run.status}, wall {_fmt(run.wall_s, '.2f')} s,"
                f" CPU {_fmt(run.cpu_s, '.2f')} s, peak RSS {_fmt(run.peak_rss_mb, '.0f')} MB,"
                f" load {run.details.get('loadavg_before', ('?',))[0]}"
            )
            tries.append(run)
            if run.status != "ok":
                break
        finished = [r for r in tries if r.wall_s is not None]
        best = min(finished, key=lambda r: r.wall_s or 0.0) if finished else tries[-1]
        best.details["walls_s"] = [r.wall_s for r in tries]
        best.details["peak_rss_mb_all"] = [r.peak_rss_mb for r in tries]
        runs[name] = best
    profile: dict = {}
    if args.profile:
        warm_cache(trace)
        prof_path = OUTPUT / f"traceview-{gen.key}-{args.size_gb:g}gb.prof"
        harness.log(f"gen {gen.key}: traceview under cProfile -> {prof_path.relative_to(REPO)}")
        prof_run = run_contender("traceview", trace, store, args.timeout, 0.0, log_dir, profile=prof_path)
        profile = {
            "status": prof_run.status,
            "wall_s": prof_run.wall_s,
            "pstats": str(prof_path),
            "top_tottime": prof_run.details.get("profile_top_tottime", ""),
            "stages_s": prof_run.details.get("stages_s", {}),
            "top_cumulative": prof_run.details.get("profile_top_cumulative", ""),
        }
    verdict = evaluate(runs, meta, args.hta_timeout)
    print(report(gen, trace, meta, runs, verdict), flush=True)
    truncated = _bench_truncated(trace, runs.get("traceview"), args, log_dir) if args.truncated else {}
    if profile.get("stages_s"):
        print(f"\n  traceview under the profiler ({_fmt(profile['wall_s'], '.2f')} s), stages and SQL statements:")
        for stage, seconds in profile["stages_s"].items():
            print(f"    {stage:<60} {seconds:8.2f}")
    if profile.get("top_tottime"):
        print(f"\n  cProfile of traceview ingest ({_fmt(profile['wall_s'], '.2f')} s under the profiler), by tottime:")
        print("\n".join("    " + line for line in profile["top_tottime"].splitlines()[:40]), flush=True)
    return {
        "generation": gen.key,
        "title": gen.title,
        "trace": str(trace),
        "json_bytes": trace.stat().st_size,
        "meta": asdict(meta),
        "warm_read_mb_per_s": warm,
        "runs": {name: asdict(run) for name, run in runs.items()},
        **verdict,
        "profile": profile,
        "truncated": truncated,
    }


TRUNCATE_AT = 0.6
TRUNCATED_TARGET = 0.5  # of the complete trace's throughput


def _bench_truncated(trace: Path, complete: Run | None, args: argparse.Namespace, log_dir: Path) -> dict:
    """traceview on the trace cut at TRUNCATE_AT of its bytes (written once beside it); its MB/s
    against the complete trace's."""
    cut = trace.parent / "truncated" / trace.name
    size = int(trace.stat().st_size * TRUNCATE_AT)
    if not cut.is_file() or cut.stat().st_size != size:
        cut.parent.mkdir(exist_ok=True)
        with open(trace, "rb") as src, open(cut, "wb") as out:
            os.copy_file_range(src.fileno(), out.fileno(), size, 0)
    warm_cache(cut)
    store = OUTPUT / f"store-truncated-{trace.parent.name}"
    run = run_contender("traceview", cut, store, args.timeout, 0.0, log_dir)
    ratio = run.mb_per_s / complete.mb_per_s if run.mb_per_s and complete and complete.mb_per_s else None
    print(
        f"\n  traceview on the trace cut at {TRUNCATE_AT:.0%} ({size / MB:.0f} MB): {run.status},"
        f" wall {_fmt(run.wall_s, '.2f')} s, {_fmt(run.mb_per_s, '.0f')} MB/s,"
        f" peak RSS {_fmt(run.peak_rss_mb, '.0f')} MB;"
        f" {_fmt(ratio, '.2f')} of the complete trace's MB/s (target >= {TRUNCATED_TARGET})",
        flush=True,
    )
    warnings = run.details.get("warnings", [])
    return {
        "run": asdict(run),
        "throughput_ratio": ratio,
        "met": ratio is not None and ratio >= TRUNCATED_TARGET,
        "warnings": warnings,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size-gb", type=float, default=1.0, help="size of the generated JSON, in 10^9 bytes")
    parser.add_argument("--generation", choices=("a", "b", "both"), default="a")
    parser.add_argument(
        "--only", default=",".join(CONTENDERS), help="comma-separated subset of " + ",".join(CONTENDERS)
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--profile", action="store_true", help="also run traceview under cProfile")
    parser.add_argument("--truncated", action="store_true", help="also run traceview on the trace cut at 60%%")
    parser.add_argument("--floor-runs", type=int, default=3, help="runs of the floor; the fastest counts")
    parser.add_argument("--traceview-runs", type=int, default=1, help="runs of traceview; the fastest counts")
    parser.add_argument("--timeout", type=float, default=1200.0, help="time limit of floor and traceview (s)")
    parser.add_argument("--hta-timeout", type=float, default=1200.0, help="time limit of HTA's load (s)")
    parser.add_argument(
        "--hta-mem-gb",
        type=float,
        default=round(_mem_total_gb() * 0.85, 1),
        help="address-space limit of the HTA process (GiB; default 85%% of RAM), so that it fails alone",
    )
    # Internal: the child-process side.
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--trace", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--mem-gb", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", dest="profile_out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.profile = args.profile_out
    return args


def _iter_generations(choice: str) -> Iterator[Generation]:
    for key in ("a", "b") if choice == "both" else (choice,):
        yield GENERATIONS[key]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    contenders = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(contenders) - set(CONTENDERS))
    if unknown:
        raise SystemExit(f"unknown contender(s): {', '.join(unknown)}")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "mem_total_gib": round(_mem_total_gb(), 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": os.getloadavg(),
        },
        "versions": _versions(),
        "git": _git_state(),
        "targets": TARGETS,
        "generations": {},
    }
    for gen in _iter_generations(args.generation):
        figures["generations"][gen.key] = bench_generation(gen, args, contenders)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    missed = [
        f"{key}={ratio['value']}"
        for result in figures["generations"].values()
        for key, ratio in result["ratios"].items()
        if not ratio["met"]
    ]
    if missed:
        print(f"\ntargets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
