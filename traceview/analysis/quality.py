"""The data-quality notes of a report: what ingest warned about and what the analyses could not see.

Collected once, as plain data, for every renderer: the traces' ingest warnings (truncation, partial dumps and
the files a rank lacks, skipped events), inputs the store skipped, ranks that contributed no events (listed
in the header but absent from every table), and device tasks without a launch record (their launch latency
and the cause of the gaps before them are unknown).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from traceview.store import read_manifest

# The kind of an ingest warning, by the first of these words it contains (else "warning").
WARNING_KINDS = (("partial dump", "partial"), ("truncat", "truncated"), ("skip", "skipped"), ("damaged", "truncated"))

_UNLAUNCHED_SQL = """
SELECT d.trace_id, count(*) AS tasks, count(*) FILTER (WHERE l.correlation IS NULL) AS unlaunched
FROM device_tasks d
LEFT JOIN (SELECT DISTINCT trace_id, correlation FROM slices
           WHERE kind IN ('runtime', 'driver') AND correlation IS NOT NULL) l
  ON l.trace_id = d.trace_id AND l.correlation = d.correlation
GROUP BY d.trace_id
ORDER BY d.trace_id
"""


@dataclass(frozen=True)
class QualityNote:
    """One data-quality note: its kind, the line shown, and the trace (rank, source) it is about, if one."""

    kind: str  # partial, truncated, skipped, no_events, no_launch, warning
    message: str
    rank: int | None = None
    source: str = ""
    count: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The note as a JSON object."""
        return asdict(self)


def warning_kind(text: str) -> str:
    """The kind of an ingest warning, from its wording."""
    lowered = text.lower()
    return next((kind for word, kind in WARNING_KINDS if word in lowered), "warning")


def data_quality(con: duckdb.DuckDBPyConnection, stores: list[Path], traces: list[dict]) -> list[QualityNote]:
    """The notes for TRACES (rows of `traces`, with `rank`, `source_path`, `warnings`, `slice_count`) in STORES."""
    notes: list[QualityNote] = []
    for trace in traces:
        rank, source = trace.get("rank"), str(trace.get("source_path") or "")
        for text in trace.get("warnings") or []:
            notes.append(QualityNote(warning_kind(text), f"rank {rank}: {text}", rank, source))
        if not trace.get("slice_count"):
            message = f"rank {rank}: no events were read; the rank is absent from every table"
            notes.append(QualityNote("no_events", message, rank, source, 0))
    notes += _unlaunched(con, traces)
    for store in stores:
        manifest = read_manifest(store)
        notes += [
            QualityNote("skipped", f"{item.get('path')}: skipped: {item.get('reason')}", source=str(item.get("path")))
            for item in manifest.get("skipped", [])
        ]
        notes += [QualityNote(warning_kind(text), f"{store.name}: {text}") for text in manifest.get("warnings", [])]
    return notes


def _unlaunched(con: duckdb.DuckDBPyConnection, traces: list[dict]) -> list[QualityNote]:
    """A note per trace whose device tasks include some without a launch call (matched by correlation)."""
    by_id = {trace["trace_id"]: trace for trace in traces if "trace_id" in trace}
    notes = []
    for trace_id, tasks, unlaunched in con.sql(_UNLAUNCHED_SQL).fetchall():
        if not unlaunched:
            continue
        trace = by_id.get(trace_id, {})
        rank = trace.get("rank")
        message = (
            f"rank {rank}: {unlaunched} of {tasks} device tasks have no launch record"
            " (their launch latency and the cause of the gaps before them are unknown)"
        )
        notes.append(QualityNote("no_launch", message, rank, str(trace.get("source_path") or ""), int(unlaunched)))
    return notes
