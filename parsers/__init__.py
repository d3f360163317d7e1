"""Parsers: one module per input format, each turning a dump into Arrow tables of the model.

This package never imports `traceview`; `parsers.model` is the contract between them.
"""

from __future__ import annotations

from pathlib import Path

from . import ascend, chrome
from .arrownp import small_pages
from .detect import KINETO, trace_files
from .errors import TraceFormatError
from .parsed import ParsedTrace

PARSER_VERSIONS = {KINETO: chrome.PARSER_VERSION, **{fmt: ascend.PARSER_VERSION for fmt in ascend.FORMATS}}


def parse(
    path: Path,
    fmt: str,
    scratch: Path,
    trace_id: str,
    rank_hint: int | None = None,
    threads: int | None = None,
    memory: int | None = None,
) -> ParsedTrace:
    """Parse one file (or Ascend unit directory) of a detected format (`threads`: default, the machine's CPUs;
    `memory`: the Kineto parser's DuckDB memory in bytes, default a share of the file's size)."""
    with small_pages():
        if fmt == KINETO:
            return chrome.parse(path, scratch, trace_id, rank_hint=rank_hint, threads=threads, memory=memory)
        if fmt in ascend.FORMATS:
            return ascend.parse(path, fmt, scratch, trace_id, rank_hint=rank_hint, threads=threads)
    raise TraceFormatError(path, f"no parser for format {fmt!r}")


__all__ = ["PARSER_VERSIONS", "ParsedTrace", "TraceFormatError", "parse", "trace_files"]
