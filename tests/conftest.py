"""Shared helpers and fixtures: the real-trace corpus, Kineto-layout writers, independent readers."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

import traceview
from traceview.errors import UserError
from traceview.store import IngestResult, ingest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
KINETO_CORPUS = CORPUS / "kineto"
GZIP_MAGIC = b"\x1f\x8b"

# Files under kineto/ that are not Chrome traces, with the one-line problem ingest must report.
NOT_CHROME: dict[str, str] = {
    "hta/execution_trace/benchmark_simple_add_et.json.gz": (
        "expected a Chrome/Kineto JSON trace with traceEvents, found a JSON object with keys"
        " ['finish_ts', 'nodes', 'pid', 'schema', 'start_ts', 'time'] (a Chakra execution trace?)"
    ),
    "hta/memory_analysis/memory_timeline.raw.gz": (
        "expected trace events (JSON objects), found a JSON array of arrays (a PyTorch memory-timeline export?)"
    ),
}


def corpus_files() -> list[str]:
    """Every file under the Kineto corpus, relative to it, sorted."""
    if not KINETO_CORPUS.is_dir():
        return []
    return sorted(p.relative_to(KINETO_CORPUS).as_posix() for p in KINETO_CORPUS.rglob("*") if p.is_file())


def chrome_corpus_files() -> list[str]:
    """The corpus files that are Chrome/Kineto traces."""
    return [rel for rel in corpus_files() if rel not in NOT_CHROME]


def require_corpus() -> None:
    """Fail loudly (not skip) when the shared corpus is missing."""
    assert KINETO_CORPUS.is_dir(), f"corpus not found at {KINETO_CORPUS}"


def read_json_bytes(path: Path) -> bytes:
    """The JSON bytes of a trace file, gunzipped when the magic bytes say gzip."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == GZIP_MAGIC else raw


@functools.cache
def load_trace(path: Path) -> Any:
    """The whole trace parsed with `json`, floats as Decimal (exact decimal text)."""
    return json.loads(read_json_bytes(path), parse_float=Decimal)


def trace_events(doc: Any) -> list[Any]:
    """The events of a parsed trace (object with traceEvents, or a bare array)."""
    return doc["traceEvents"] if isinstance(doc, dict) else doc


def exact_ns(value: int | Decimal) -> int:
    """Microseconds as written (int or decimal text) to integer ns; fails if not a whole ns."""
    scaled = Decimal(value) * 1000
    assert scaled == scaled.to_integral_value(), f"{value} µs is not a whole number of ns"
    return int(scaled)


def x_event_indices(events: Iterable[Any]) -> list[int]:
    """Indices (in the traceEvents array) of the complete (`ph == "X"`) events."""
    return [i for i, ev in enumerate(events) if isinstance(ev, dict) and ev.get("ph") == "X"]


def interval_union_ns(intervals: Iterable[tuple[int, int]]) -> int:
    """Total length of the union of half-open intervals [start, end)."""
    total = 0
    cur_start: int | None = None
    cur_end = 0
    for start, end in sorted(intervals):
        if cur_start is None or start > cur_end:
            if cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_start is not None:
        total += cur_end - cur_start
    return total


# ---------------------------------------------------------------------------------------------
# Writing traces in the exact layout of Kineto's ChromeTraceLogger.


def json_text(value: Any) -> str:
    """Compact JSON like Kineto writes it; Decimal keeps its decimal text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def kineto_event(event: dict[str, Any]) -> str:
    """One event as Kineto lays it out: identity line, time line, then an args block."""
    head = [f'"{k}": {json_text(v)}' for k, v in event.items() if k not in ("ts", "dur", "args")]
    times = [f'"{k}": {json_text(event[k])}' for k in ("ts", "dur") if k in event]
    lines = ["  {", "    " + ", ".join(head) + ("," if (times or "args" in event) else "")]
    if times:
        lines.append("    " + ", ".join(times) + ("," if "args" in event else ""))
    if "args" in event:
        args = event["args"]
        lines.append('    "args": {')
        if args:
            lines.append("      " + ", ".join(f"{json.dumps(str(k))}: {json_text(v)}" for k, v in args.items()))
        lines.append("    }")
    lines.append("  }")
    return "\n".join(lines)


def kineto_text(events: list[dict[str, Any]], header: dict[str, Any] | None = None,
                trailer: dict[str, Any] | None = None) -> str:
    """A whole trace file in Kineto's layout: header keys, traceEvents, trailer keys."""
    header = {"schemaVersion": 1} if header is None else header
    trailer = {"traceName": "/tmp/trace.json", "displayTimeUnit": "ms"} if trailer is None else trailer
    text = "\n{\n" + "".join(f'  "{k}": {json_text(v)},\n' for k, v in header.items())
    text += '  "traceEvents": [\n'
    if events:
        text += ",\n".join(kineto_event(ev) for ev in events) + "\n"
    text += "  ]"
    text += "".join(f',\n  "{k}": {json_text(v)}' for k, v in trailer.items())
    return text + "\n}\n"


def write_kineto(path: Path, events: list[dict[str, Any]], header: dict[str, Any] | None = None,
                 trailer: dict[str, Any] | None = None, compress: bool = False) -> Path:
    """Write a Kineto-layout trace to `path` (gzip when `compress`)."""
    data = kineto_text(events, header, trailer).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def x_event(name: str, ts: str | int, dur: str | int, cat: str = "cpu_op", pid: int | str = 100,
            tid: int | str = 100, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """A complete event; `ts`/`dur` given as decimal µs text (e.g. "1712195495519689.047")."""
    return {
        "ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid,
        "ts": Decimal(str(ts)), "dur": Decimal(str(dur)),
        "args": {"External id": 1} if args is None else args,
    }


def small_kineto_events(n: int = 6) -> list[dict[str, Any]]:
    """A small realistic event list: a step, ops, a launch and its kernel, a flow, an instant."""
    base = 1712195495519689
    events: list[dict[str, Any]] = [
        x_event("ProfilerStep#7", f"{base}.047", f"{20 * n}.500", cat="user_annotation"),
    ]
    for i in range(n):
        events.append(x_event(f"aten::op{i}", f"{base + 10 * i + 1}.125", "8.250", args={"External id": i + 2}))
    events.append(x_event("cudaLaunchKernel", f"{base + 3}.001", "2.002", cat="cuda_runtime",
                          args={"External id": 3, "correlation": 77}))
    events.append(x_event("void gemm_kernel<float>(float*)", f"{base + 9}.333", "4.444", cat="kernel",
                          pid=0, tid=7, args={"External id": 3, "device": 0, "stream": 7, "correlation": 77}))
    events.append({"ph": "f", "id": 77, "pid": 0, "tid": 7, "ts": Decimal(f"{base + 9}.333"),
                   "cat": "ac2g", "name": "ac2g", "bp": "e"})
    events.append({"name": "Record Window End", "ph": "i", "s": "g", "pid": "", "tid": "",
                   "ts": Decimal(f"{base + 500}.000")})
    return events


# ---------------------------------------------------------------------------------------------
# Stores.


def store_rows(store: Path, table: str, columns: str = "*", where: str = "") -> list[tuple]:
    """Rows of one store table read straight from its Parquet files (not through traceview)."""
    pattern = str(store / table / "*.parquet").replace("'", "''")
    query = f"SELECT {columns} FROM read_parquet('{pattern}', union_by_name = true) {where}"
    with duckdb.connect() as con:
        return con.sql(query).fetchall()


def ingest_one(path: Path, out: Path, force: bool = False) -> IngestResult:
    """Ingest one file or directory with the library API."""
    return ingest([path], out, force=force)


@dataclass
class CorpusIngest:
    """The outcome of ingesting one corpus file: a result or the user error it raised."""

    path: Path
    result: IngestResult | None
    error: UserError | None

    @property
    def store(self) -> Path:
        """The store directory (fails the test if ingest failed)."""
        assert self.result is not None, f"ingest failed: {self.error}"
        return self.result.store


@pytest.fixture(scope="session")
def corpus_ingests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CorpusIngest]:
    """Every corpus file ingested once, each into its own store."""
    require_corpus()
    root = tmp_path_factory.mktemp("corpus_stores")
    outcomes: dict[str, CorpusIngest] = {}
    for index, rel in enumerate(corpus_files()):
        path = KINETO_CORPUS / rel
        try:
            result = ingest([path], root / f"s{index:03d}.traceview")
            outcomes[rel] = CorpusIngest(path, result, None)
        except UserError as exc:
            outcomes[rel] = CorpusIngest(path, None, exc)
    return outcomes


@pytest.fixture()
def open_store() -> Iterator[Any]:
    """Open stores with `traceview.open` and close them at teardown."""
    sessions: list[Any] = []

    def opener(target: Path, cache_dir: Path | None = None) -> Any:
        session = traceview.open(target, cache_dir=cache_dir)
        sessions.append(session)
        return session

    yield opener
    for session in sessions:
        session.close()


def gunzip_prefix(data: bytes) -> bytes:
    """What a gzip stream cut short decompresses to (the bytes before the cut)."""
    return zlib.decompressobj(wbits=31).decompress(data)


# --- a checkout without ../shared -----------------------------------------------------------------------------
# Without the corpus, a test that fails because of it (its error or traceback names the corpus) is reported
# as skipped, and the run ends with one line saying so; with CI=true a missing corpus stops the run.

_CORPUS_SKIPS: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI") == "true" and not CORPUS.is_dir():
        raise pytest.UsageError(f"CI=true, but the shared corpus is missing at {CORPUS}: corpus tests cannot run")
    # Elsewhere the Ray tests skip without the extra (tests/test_ray.py); CI installs it (Makefile), so they run.
    if os.environ.get("CI") == "true" and importlib.util.find_spec("ray") is None:
        raise pytest.UsageError("CI=true, but ray is not installed: the Ray tests cannot run (pip install '.[ray]')")


def _needs_corpus(report: pytest.TestReport) -> bool:
    """The failure's report (the error and the source lines of its traceback) mentions the corpus."""
    return "corpus" in str(report.longrepr).lower()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and not CORPUS.is_dir() and _needs_corpus(report):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: needs the shared corpus at {CORPUS}")
        _CORPUS_SKIPS.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CORPUS.is_dir():
        terminalreporter.write_line(
            f"shared corpus not found at {CORPUS}: {len(_CORPUS_SKIPS)} tests that need it were skipped"
            " (parametrised corpus cases were not collected)"
        )


def raw_number(text: str) -> str:
    """A number for `ascend_comm_dump`'s JSON written as this decimal text, as the profiler writes it."""
    return f"@DEC{text}DEC@"


def ascend_comm_dump(root: Path, file_name: str, content: dict, metadata: dict | None) -> Path:
    """A torch_npu rank-1 dump (`rank_1_ascend_pt`) holding one communication JSON file (`communication.json` or
    `communication_matrix.json`) and, when given, `profiler_metadata.json`; `raw_number` values are written as
    their decimal text (float noise kept), not re-encoded."""
    rank = root / "rank_1_ascend_pt"
    out = rank / "ASCEND_PROFILER_OUTPUT"
    out.mkdir(parents=True)
    (rank / "profiler_info_1.json").write_text(json.dumps({"rank_id": 1}))
    if metadata is not None:
        (rank / "profiler_metadata.json").write_text(json.dumps(metadata))
    (out / file_name).write_text(json.dumps(content).replace('"@DEC', "").replace('DEC@"', ""))
    (out / "step_trace_time.csv").write_text("Step,Computing\n3,1\n")
    return rank
