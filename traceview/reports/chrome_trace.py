"""The Chrome trace writer of `traceview export`: JSON that Perfetto UI and chrome://tracing open.

Streamed, one event a line: process and thread names first, then slices (`X`), flows (`s`, `f` bound to the
enclosing slice) and counters (`C`). `ts` and `dur` are µs with exactly three decimals, written from int ns by
integer arithmetic, so no ns is lost; `baseTimeNanoseconds` at the top holds the absolute time they count from
(the Kineto convention: traceview reads `ts` back as base + ts exactly). The export's own facts (ranks, window,
alignment offsets) are under the top-level key `traceviewExport`.

Trace text is untrusted: every string goes through the one JSON writer (traceview.jsonify), then `<`, `>`, `&`,
DEL, C1 controls, U+2028/9 and the bidi controls are written as `\\uXXXX` escapes (lossless: JSON readers get the
same text back), so that a name cannot end a script element or reorder what a terminal or viewer shows.

A file is written atomically (traceview.atomic); a name ending in `.gz` is gzip-compressed (level
`GZIP_LEVEL`, no name or time in the header, so the same export gives the same bytes).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from traceview._version import __version__
from traceview.analysis.export import TraceExport
from traceview.atomic import atomic_output
from traceview.jsonify import dumps
from traceview.reports.safe import json_terminal_safe, script_safe_json_text

GZIP_LEVEL = 3  # 0.16 s and 2.1 MB for 18 MB of JSON (level 6: 0.28 s, 1.8 MB)
NAME_CACHE = 65_536  # distinct names and categories whose JSON text is kept
# What safe.script_safe_json_text and safe.json_terminal_safe escape, found in one pass.
_UNSAFE = re.compile("[<>&\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_EVENTS_PER_WRITE = 2_000  # events joined into one write


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class Written:
    """What was written: events by phase."""

    slices: int
    flows: int
    counters: int


def micros_text(ns: int) -> str:
    """int ns as µs with exactly three decimals (`1234567` -> `1234.567`), by integer arithmetic (no float)."""
    if ns < 0:
        return "-" + micros_text(-ns)
    return f"{ns // 1000}.{ns % 1000:03d}"


def micros(ns: int) -> orjson.Fragment:
    """`micros_text` as a JSON number for the JSON writer."""
    return orjson.Fragment(micros_text(ns).encode())


def safe_json(value: Any) -> str:
    """`value` as compact JSON whose strings hold nothing a viewer, terminal or script element would act on."""
    return _safe(dumps(value))


def _safe(text: str) -> str:
    """JSON text with the characters of the module docstring escaped (searched first: most text has none)."""
    if _UNSAFE.search(text) is None:
        return text
    return json_terminal_safe(script_safe_json_text(text))


@lru_cache(maxsize=NAME_CACHE)
def _string(text: str) -> str:
    """A JSON string, made safe; names repeat (the same kernels every step), so they are written once each."""
    return safe_json(text)


def write_chrome_trace(export: TraceExport, out: Path | IO[bytes]) -> Written:
    """Write `export` to the file `out` (atomically, gzip for `.gz`) or to the binary stream `out`."""
    if not isinstance(out, Path):
        return _write(export, out)
    with atomic_output(out) as fh, _compressed(fh, out.name.endswith(".gz")) as sink:
        return _write(export, sink)


@contextmanager
def _compressed(fh: IO[bytes], gz: bool) -> Iterator[_Sink]:
    if not gz:
        yield fh
        return
    with gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=GZIP_LEVEL, mtime=0) as sink:
        yield sink


def _write(export: TraceExport, sink: _Sink) -> Written:
    head = {
        "traceviewExport": _facts(export),
        "displayTimeUnit": "ns",
        "baseTimeNanoseconds": export.origin_ns,
    }
    sink.write(safe_json(head)[:-1].encode() + b',\n"traceEvents":[\n')
    counts = [0, 0, 0]
    first = True
    for chunk in _chunks(_events(export, counts)):
        sink.write((b"" if first else b",\n") + chunk)
        first = False
    sink.write(b"\n]}\n")
    return Written(*counts)


def _facts(export: TraceExport) -> dict[str, Any]:
    return {
        "tool": f"traceview {__version__}",
        "ranks": export.ranks,
        "align": export.align,
        "offsets_ns": {str(rank): offset for rank, offset in export.offsets_ns.items()},
        "window": {"label": export.window.label, "start_ns": export.window.lo_ns, "end_ns": export.window.hi_ns},
        "processes": {str(p.pid): p.name for p in export.processes},
    }


def _chunks(events: Iterable[str]) -> Iterator[bytes]:
    """Events (JSON text) joined a line each, a few thousand per chunk, made safe."""
    batch: list[str] = []
    for event in events:
        batch.append(event)
        if len(batch) >= _EVENTS_PER_WRITE:
            yield _safe_lines(batch)
            batch = []
    if batch:
        yield _safe_lines(batch)


def _safe_lines(batch: list[str]) -> bytes:
    # every piece is made safe where it is written; this pass only guards that
    return _safe(",\n".join(batch)).encode()


def _events(export: TraceExport, counts: list[int]) -> Iterator[str]:
    """Every event as JSON text; counts[0..2] count slices, flows and counter samples."""
    for index, process in enumerate(export.processes):
        yield _metadata("process_name", process.pid, 0, {"name": process.name})
        yield _metadata("process_sort_index", process.pid, 0, {"sort_index": index})
    for thread in export.threads:
        yield _metadata("thread_name", thread.pid, thread.tid, {"name": thread.name})
        yield _metadata("thread_sort_index", thread.pid, thread.tid, {"sort_index": thread.tid})
    for pid, tid, ts, dur, name, cat, args in export.slices():
        # text built here, not by the JSON writer: this loop runs once per slice
        line = (
            f'{{"ph":"X","name":{_string(name or "")},"pid":{pid},"tid":{tid},'
            f'"ts":{micros_text(ts)},"dur":{micros_text(dur)}'
        )
        if cat is not None:
            line += f',"cat":{_string(cat)}'
        if (raw := _args(args)) is not None:
            line += f',"args":{raw}'
        counts[0] += 1
        yield line + "}"
    for number, (kind, src_pid, src_tid, src_ts, dst_pid, dst_tid, dst_ts) in enumerate(export.flows(), start=1):
        label = _string(kind or "flow")
        head = f'"id":{number},"cat":{label},"name":{label}'
        yield f'{{"ph":"s",{head},"pid":{src_pid},"tid":{src_tid},"ts":{micros_text(src_ts)}}}'
        yield f'{{"ph":"f","bp":"e",{head},"pid":{dst_pid},"tid":{dst_tid},"ts":{micros_text(dst_ts)}}}'
        counts[1] += 1
    yield from _counter_events(export, counts)


def _metadata(name: str, pid: int, tid: int, args: dict[str, Any]) -> str:
    return dumps({"ph": "M", "name": name, "pid": pid, "tid": tid, "args": args})


def _counter_events(export: TraceExport, counts: list[int]) -> Iterator[str]:
    """One `C` event per (process, time, counter), its series as args."""
    key: tuple[int, int, str] | None = None
    series: dict[str, Any] = {}
    for pid, ts, name, serie, value in export.counters():
        if key is not None and key != (pid, ts, name or ""):
            yield _counter(key, series)
            series = {}
        key = (pid, ts, name or "")
        series[serie or ""] = value
        counts[2] += 1
    if key is not None:
        yield _counter(key, series)


def _counter(key: tuple[int, int, str], series: dict[str, Any]) -> str:
    pid, ts, name = key
    return dumps({"ph": "C", "name": name, "pid": pid, "tid": 0, "ts": micros(ts), "args": series})


def _args(text: str | None) -> str | None:
    """The stored args as JSON text, made safe; None where empty or not a JSON object (a damaged store)."""
    if not text or text == "{}":
        return None
    try:
        value = orjson.loads(text)  # checked, not trusted: a store comes from anywhere
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not value:
        return None
    return _safe(text)
