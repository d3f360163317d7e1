"""The on-disk store: one Parquet dataset per model table plus `manifest.json`.

Layout (readable as it is by DuckDB, polars, pandas and Spark):

    STORE/manifest.json
    STORE/<table>/part-<trace_id>.parquet   (zstd; one file per ingested trace or rank)

Stores are written into a temporary sibling directory and renamed into place, so a reader
never sees half a store. Re-ingesting unchanged inputs reuses the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

import parsers
from parsers.model import MODEL_VERSION, TABLES
from parsers.parsed import ArrowSource, empty_table, rows_table
from parsers.redact import redact, redact_text
from parsers.stagetime import timed_stage
from traceview import __version__
from traceview.errors import UserError
from traceview.paths import is_inside

MANIFEST = "manifest.json"
_RANK_IN_NAME = re.compile(r"rank[-_]?(\d+)", re.IGNORECASE)

Progress = Callable[[str], None]


@dataclass
class IngestResult:
    """What `ingest` did: where the store is, whether it was reused, and the warnings."""

    store: Path
    reused: bool
    manifest: dict
    warnings: list[str] = field(default_factory=list)


def is_store(path: Path) -> bool:
    """True when `path` is a traceview store directory."""
    return path.is_dir() and (path / MANIFEST).is_file()


def read_manifest(store: Path) -> dict:
    """Load a store's manifest."""
    try:
        return json.loads((store / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{store}: not a readable traceview store ({exc})") from exc


def _stat_key(path: Path) -> dict:
    """Identity of an input for reuse checks; a directory input (a rank dump) sums its files."""
    if path.is_dir():
        stats = [p.stat() for p in path.rglob("*") if p.is_file()]
        size = sum(st.st_size for st in stats)
        mtime = max((st.st_mtime_ns for st in stats), default=0)
        return {"path": str(path.resolve()), "size": size, "mtime_ns": mtime}
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _reusable(store: Path, files: list[tuple[Path, str]]) -> dict | None:
    if not is_store(store):
        return None
    try:
        manifest = json.loads((store / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("model_version") != MODEL_VERSION or manifest.get("traceview_version") != __version__:
        return None
    recorded = [
        {k: item.get(k) for k in ("path", "size", "mtime_ns")} for item in manifest.get("inputs", [])
    ] + [{k: item.get(k) for k in ("path", "size", "mtime_ns")} for item in manifest.get("skipped", [])]
    wanted = [_stat_key(path) for path, _ in files]
    key = lambda d: (d["path"], d["size"], d["mtime_ns"])  # noqa: E731
    return manifest if sorted(map(key, recorded)) == sorted(map(key, wanted)) else None


def _rank_hint(path: Path) -> int | None:
    match = _RANK_IN_NAME.search(path.name)
    return int(match.group(1)) if match else None


def _traces_row(trace_id: str, source: Path, info: dict, warnings: list[str]) -> pa.Table:
    row = {
        "trace_id": trace_id,
        "source_path": str(source),
        "format": info["format"],
        "rank": info["rank"],
        "world_size": info.get("world_size"),
        "host": redact(info.get("host")),
        "device_names": redact(info.get("device_names", [])),
        "tool_versions": redact(info.get("tool_versions", "{}")),
        "base_time_ns": info.get("base_time_ns", 0),
        "event_count": info.get("event_count", 0),
        "slice_count": info.get("slice_count", 0),
        "warnings": warnings,
    }
    return rows_table(TABLES["traces"], [row])


def _collect_inputs(inputs: list[Path]) -> list[tuple[Path, str, bool]]:
    """(file, format, given explicitly) for every input; directories are searched."""
    files: list[tuple[Path, str, bool]] = []
    for path in inputs:
        if is_store(path):
            raise UserError(f"{path}: is already a traceview store; give the trace files instead")
        try:
            found = parsers.trace_files(path)
        except parsers.TraceFormatError as exc:
            raise UserError(str(exc)) from exc
        files += [(file, fmt, path.is_file()) for file, fmt in found]
    seen: set[Path] = set()
    unique = []
    for file, fmt, explicit in files:
        if file.resolve() not in seen:
            seen.add(file.resolve())
            unique.append((file, fmt, explicit))
    return unique


def ingest(
    inputs: list[Path], out: Path, force: bool = False, progress: Progress | None = None
) -> IngestResult:
    """Ingest trace files or dump directories into the store `out`."""
    files = _collect_inputs(inputs)
    for path in inputs:
        if path.is_dir() and is_inside(out, path):
            raise UserError(f"{out}: the store would be inside the input directory {path}; choose another -o")
    if not force and (manifest := _reusable(out, [(f, fmt) for f, fmt, _ in files])):
        return IngestResult(out, True, manifest, manifest_warnings(out, manifest))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    try:
        manifest = _build(files, staging, progress)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return IngestResult(out, False, manifest, manifest_warnings(out, manifest))


def manifest_warnings(store: Path, manifest: dict) -> list[str]:
    """Every warning a store's manifest records, one line each, prefixed with its file."""
    warnings = [f"{item['path']}: {w}" for item in manifest["inputs"] for w in item["warnings"]]
    warnings += [f"{item['path']}: skipped: {item['reason']}" for item in manifest.get("skipped", [])]
    warnings += [f"{store}: {w}" for w in manifest.get("warnings", [])]
    return warnings


def _build(files: list[tuple[Path, str, bool]], staging: Path, progress: Progress | None) -> dict:
    for table in TABLES:
        (staging / table).mkdir()
    scratch_root = staging / ".scratch"
    scratch_root.mkdir()
    entries: list[dict] = []
    skipped: list[dict] = []
    seen_ids: set[str] = set()
    # Each input is hashed on a thread while it is parsed: the hash is mostly file reads, which
    # overlap with the parser's one-thread stretches instead of adding to the wall time.
    with ThreadPoolExecutor(1) as hasher:
        for index, (path, fmt, explicit) in enumerate(files):
            if progress:
                progress(f"[{index + 1}/{len(files)}] {path.name}")
            digest = hasher.submit(content_hash, path)
            scratch = Path(tempfile.mkdtemp(dir=scratch_root))
            trace_id = _trace_id(path, seen_ids)
            try:
                parsed = parsers.parse(path, fmt, scratch, trace_id, rank_hint=_rank_hint(path))
            except parsers.TraceFormatError as exc:
                if explicit:
                    raise UserError(str(exc)) from exc
                skipped.append({**_stat_key(path), "reason": exc.problem})
                continue
            except OSError as exc:
                raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
            try:
                entries.append(_write_parsed(path, fmt, parsed, staging, trace_id, digest))
            finally:
                parsed.close()
                shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(scratch_root, ignore_errors=True)
    if not entries:
        reasons = "; ".join(f"{Path(s['path']).name}: {s['reason']}" for s in skipped[:3])
        raise UserError(f"{files[0][0]}: no readable trace found ({reasons})")
    store_warnings = []
    ranks = [e["rank"] for e in entries]
    shared = sorted({r for r in ranks if ranks.count(r) > 1})
    if shared:
        store_warnings.append(
            f"{len(ranks) - len(set(ranks)) + len(shared)} traces share rank {', '.join(map(str, shared))};"
            " tell them apart by trace_id"
        )
    totals = {table: sum(e["rows"].get(table, 0) for e in entries) for table in TABLES}
    manifest = {
        "traceview_version": __version__,
        "model_version": MODEL_VERSION,
        "created_unix": int(time.time()),
        "inputs": entries,
        "skipped": skipped,
        "warnings": store_warnings,
        "tables": totals,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def content_hash(path: Path) -> str:
    """Content hash of an input (xxh3-128 of its bytes; of every file, in order, for a directory)."""
    digest = xxhash.xxh3_128()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    # One buffer read into again and again: a fresh 32 MB bytes object per read costs a page fault
    # per 4 KB page, which on a VM took longer than the hashing.
    buffer = bytearray(4 << 20)
    view = memoryview(buffer)
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb", buffering=0) as fh:
            while size := fh.readinto(buffer):
                digest.update(view[:size])
    return f"xxh3_128:{digest.hexdigest()}"


def _trace_id(path: Path, seen: set[str]) -> str:
    """A short id, stable for a given input path, unique within the store."""
    trace_id = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    while trace_id in seen:
        trace_id = hashlib.sha256(trace_id.encode()).hexdigest()[:12]
    seen.add(trace_id)
    return trace_id


def _write_parsed(
    path: Path, fmt: str, parsed: parsers.ParsedTrace, staging: Path, trace_id: str, digest: Future[str]
) -> dict:
    info = parsed.info
    warnings = [redact_text(warning) for warning in parsed.warnings]
    timings = info.setdefault("timings", {})
    sources = {
        table: parsed.tables.get(table) or ArrowSource(schema, empty_table(schema))
        for table, schema in TABLES.items()
        if table != "traces"
    }

    def write(table: str) -> int:
        with timed_stage(timings, f"write_{table}"):
            return sources[table].write_parquet(staging / table / f"part-{trace_id}.parquet")

    # A source marked `background` is written on a thread of its own while the others are written here.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = {table: pool.submit(write, table) for table, s in sources.items() if getattr(s, "background", False)}
        rows = {table: write(table) for table in sources if table not in pending}
        traces = _traces_row(trace_id, path, info, warnings)
        pq.write_table(traces, staging / "traces" / f"part-{trace_id}.parquet", compression="zstd")
        rows["traces"] = 1
        rows.update({table: future.result() for table, future in pending.items()})
    rows = {table: rows[table] for table in TABLES}
    return {
        **_stat_key(path),
        "source": str(path),
        "content_hash": digest.result(),
        "format": fmt,
        "parser_version": parsers.PARSER_VERSIONS[fmt],
        "trace_id": trace_id,
        "rank": info["rank"],
        "rows": rows,
        "warnings": warnings,
    }


def _replace(staging: Path, out: Path) -> None:
    if out.exists():
        if not is_store(out) and any(out.iterdir()):
            raise UserError(f"{out}: exists and is not a traceview store; refusing to overwrite it")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)
