"""Ascend NPU profiler output (torch_npu, msprof; text and SQLite exports) into the model.

One *unit* (a rank directory, an msprof collection, or a single file; see `layout`) becomes
one trace. A unit with a database is read from it (exact ns integers, interned strings); a
text-only unit from its timeline and CSVs. Missing files are reported as warnings.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb

from ..errors import TraceFormatError
from ..parsed import ParsedTrace
from . import communication, layout, msprof_csv, sqlite_export, text_export
from .dump_info import dump_info, finish_info
from .layout import ASCEND_CSV, ASCEND_DB, ASCEND_PT, ASCEND_TIMELINE, FORMATS, MSPROF
from .staging import Staging

PARSER_VERSION = "4"

__all__ = ["ASCEND_CSV", "ASCEND_DB", "ASCEND_PT", "ASCEND_TIMELINE", "FORMATS", "MSPROF", "PARSER_VERSION", "parse"]

_EXPECTED_TEXT = ("trace_view.json", "kernel_details.csv", "step_trace_time.csv")


def parse(
    path: Path, fmt: str, scratch: Path, trace_id: str, rank_hint: int | None = None, threads: int | None = None
) -> ParsedTrace:
    """Parse one Ascend unit (directory or file) of format `fmt`."""
    ignored: list[str] = []
    mirror = None
    try:
        if layout.has_gzipped_files(path):
            mirror = layout.gunzipped_mirror(path, scratch, ignored)
        return _parse(mirror.root if mirror else path, fmt, scratch, trace_id, rank_hint, threads, path, ignored)
    except TraceFormatError as exc:
        raise _naming_the_file(exc, path, mirror) from exc


def _naming_the_file(exc: TraceFormatError, unit: Path, mirror: layout.Mirror | None) -> TraceFormatError:
    """The error about a file in a dump directory, said of the dump with the file's relative name
    (the dump's own file, not its scratch copy)."""
    failed = mirror.origins.get(exc.path, Path(exc.path)) if mirror is not None else Path(exc.path)
    if not unit.is_dir() or failed == unit:
        return exc
    try:
        relative = failed.relative_to(unit).as_posix()
    except ValueError:
        return exc
    return TraceFormatError(unit, f"{relative}: {exc.problem}")


def _parse(
    path: Path,
    fmt: str,
    scratch: Path,
    trace_id: str,
    rank_hint: int | None,
    threads: int | None,
    original: Path,
    ignored: list[str],
) -> ParsedTrace:
    sources = layout.collect(path, fmt, link_root=original)
    st = Staging(scratch, sum(p.stat().st_size for p in sources.all_paths()), threads)
    st.warnings += dict.fromkeys(ignored + sources.ignored)
    try:
        info, meta_rows = dump_info(sources, rank_hint, st.warnings)
        st.add_metadata(meta_rows)
        if sources.db is not None:
            sqlite_export.load_database(st, sources.db, info)
            if sources.timelines or sources.kernels:
                st.warnings.append("both a database and text files are present: read the database, ignored the text")
            if paths := sources.files.get("step_trace_time"):
                msprof_csv.step_trace_time(st, paths)
            else:
                _steps(st, sources)
        elif sources.timelines or sources.kernels:
            text_export.parse_text(st, sources)
            _steps(st, sources)
        elif sources.files or sources.analysis_db:
            _steps(st, sources)
            text_export.parse_side_files(st, sources)
            st.warnings.append("partial dump: no timeline, kernel table or database; only summary files were read")
        elif sources.msprof_meta or sources.profiler_info:
            st.warnings.append("no profiling data in this collection (only its metadata files)")
        else:
            raise TraceFormatError(path, "expected Ascend profiler output, found no file traceview reads")
        communication.load(st, sources)
        _missing(st, sources)
        return st.finish(finish_info(info, fmt), trace_id)
    except duckdb.Error as exc:
        st.con.close()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TraceFormatError(path, f"could not be read as Ascend profiler output ({first[:200]})") from exc
    except sqlite3.Error as exc:
        st.con.close()
        raise TraceFormatError(path, f"could not be read as an Ascend profiler database ({exc})") from exc
    except BaseException:
        st.con.close()
        raise


def _steps(st: Staging, sources: layout.Sources) -> None:
    if sources.one("step_trace_time") is None and sources.analysis_db is not None:
        sqlite_export.load_analysis(st, sources.analysis_db)


def _missing(st: Staging, sources: layout.Sources) -> None:
    if sources.kind != "torch_npu" or sources.db is not None:
        return
    have = {p.name for p in sources.all_paths()}
    missing = [name for name in _EXPECTED_TEXT if name not in have]
    if missing:
        st.warnings.append(f"partial dump: {', '.join(missing)} not found")
