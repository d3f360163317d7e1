"""The on-disk store: one Parquet dataset per model table plus `manifest.json`.

Layout (readable as it is by DuckDB, polars, pandas and Spark):

    STORE/manifest.json
    STORE/<table>/part-<trace_id>.parquet   (zstd; one file per ingested trace or rank)

Stores are written into a temporary sibling directory and renamed into place, so a reader
never sees half a store. Re-ingesting unchanged inputs reuses the store.

Writers of one store take turns: each holds `fcntl.flock` on the sibling `.NAME.lock` while it
checks for reuse, builds and renames, so a second ingest waits (up to `LOCK_WAIT_S`) and then
reuses what the first wrote. Under that lock, what a killed ingest left behind is provably stale:
its staging directory `.NAME.<hex>.tmp` (marked with `.traceview-staging`, or holding our
manifest) is removed, and a store it had moved aside, `.NAME.old-<pid>-<hex>`, is put back when
NAME is missing and removed otherwise. Nothing else is touched, and no path is written through a link.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from traceview import parsers
from traceview._version import __version__
from traceview.errors import UserError
from traceview.parsers.filekind import kind_name, lstat_mode, read_regular
from traceview.parsers.model import MAX_RANK, MODEL_VERSION, TABLES
from traceview.parsers.parsed import ArrowSource, empty_table, rows_table
from traceview.parsers.redact import redact, redact_text
from traceview.parsers.stagetime import timed_stage
from traceview.paths import is_inside

MANIFEST = "manifest.json"
LOCK_WAIT_S = 600.0
"""How long an ingest waits for another one writing the same store (env TRACEVIEW_LOCK_WAIT_S raises it)."""
MANIFEST_MAX_BYTES = 64 << 20
"""A manifest larger than this is not one of ours (real ones are a few KB per input)."""
STAGING_MARK = ".traceview-staging"
_RANK_IN_NAME = re.compile(r"rank[-_]?(\d+)", re.IGNORECASE)

Progress = Callable[[str], None]


@dataclass
class IngestResult:
    """What `ingest` did: where the store is, whether it was reused, and the warnings."""

    store: Path
    reused: bool
    manifest: dict
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """How many units (ranks) could not be ingested; the store holds the others (Ray runner only)."""
        return len(self.manifest.get("failed", []))

    @property
    def failed_by_bug(self) -> int:
        """How many of the failed units stopped on an internal error (a bug in traceview), not on their input."""
        return sum(1 for item in self.manifest.get("failed", []) if item.get("bug"))


def is_store(path: Path) -> bool:
    """True when `path` is a traceview store directory."""
    return path.is_dir() and (path / MANIFEST).is_file()


def read_manifest(store: Path) -> dict:
    """Load a store's manifest."""
    try:
        return json.loads(read_regular(store / MANIFEST, MANIFEST_MAX_BYTES))
    except (OSError, ValueError) as exc:
        raise UserError(f"{store}: not a readable traceview store ({exc})") from exc


def _our_manifest(store: Path) -> dict | None:
    """The manifest of `store` when it is a real directory holding a manifest we wrote, else None."""
    try:
        if not stat.S_ISDIR(os.lstat(store).st_mode) or os.path.islink(store / MANIFEST):
            return None
        manifest = json.loads(read_regular(store / MANIFEST, MANIFEST_MAX_BYTES))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "traceview_version" in manifest else None


def dump_files(directory: Path) -> list[Path]:
    """The regular files under a dump directory, sorted; links are not followed (a link that leads out
    of a dump must not make traceview read, even only to hash, a file elsewhere), nor are FIFOs opened."""
    found = []
    for root, _, names in os.walk(directory, followlinks=False):
        for name in names:
            path = Path(root) / name
            with suppress(OSError):
                if stat.S_ISREG(path.lstat().st_mode):
                    found.append(path)
    return sorted(found)


def _stat_key(path: Path) -> dict:
    """Identity of an input for reuse checks; a directory input (a rank dump) sums its files."""
    if path.is_dir():
        stats = [p.lstat() for p in dump_files(path)]
        size = sum(st.st_size for st in stats)
        mtime = max((st.st_mtime_ns for st in stats), default=0)
        return {"path": str(path.resolve()), "size": size, "mtime_ns": mtime}
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _reusable(store: Path, files: list[tuple[Path, str]]) -> dict | None:
    manifest = _our_manifest(store)
    if manifest is None:
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
    """The rank a file or directory name gives (`rank3.json`), when it fits the store's int32 rank."""
    match = _RANK_IN_NAME.search(path.name)
    if not match or len(match.group(1)) > 10:
        return None
    rank = int(match.group(1))
    return rank if rank <= MAX_RANK else None


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
    inputs: list[Path],
    out: Path,
    force: bool = False,
    progress: Progress | None = None,
    runner: UnitRunner | None = None,
) -> IngestResult:
    """Ingest trace files or dump directories into the store `out`.

    `runner` ingests the units (default: one after the other, here; `traceview.ray_engine.run_units`: as Ray
    tasks). Without `force`, a unit whose content hash matches its entry in the store being replaced keeps
    that entry's part files instead of being parsed again, so a rerun after failed ranks redoes only those.
    """
    files = _collect_inputs(inputs)
    for path in inputs:
        if path.is_dir() and is_inside(out, path):
            raise UserError(f"{out}: the store would be inside the input directory {path}; choose another -o")
    wanted = [(f, fmt) for f, fmt, _ in files]
    _check_target(out)
    if not force and not _has_leftovers(out) and (manifest := _reusable(out, wanted)):
        return IngestResult(out, True, manifest, manifest_warnings(out, manifest))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out.parent}: cannot create the store's folder ({exc.strerror or exc})") from exc
    with _store_lock(out, progress):
        _recover(out)
        _check_target(out)
        # Another ingest may have written the store while this one waited for the lock.
        if not force and (manifest := _reusable(out, wanted)):
            return IngestResult(out, True, manifest, manifest_warnings(out, manifest))
        staging = _new_staging(out)
        try:
            manifest = _build(files, staging, progress, runner, None if force else _previous_entries(out))
            _replace(staging, out)
        except OSError as exc:  # a full or failing disk, not a bug
            _remove_ours(staging)
            where = f"{exc.filename}: " if exc.filename else ""
            raise UserError(f"{out}: cannot write the store ({where}{exc.strerror or exc})") from exc
        except BaseException:
            _remove_ours(staging)
            raise
    return IngestResult(out, False, manifest, manifest_warnings(out, manifest))


def manifest_warnings(store: Path, manifest: dict) -> list[str]:
    """Every warning a store's manifest records, one line each, prefixed with its file."""
    warnings = [f"{item['path']}: {w}" for item in manifest["inputs"] for w in item["warnings"]]
    warnings += [f"{item['path']}: skipped: {item['reason']}" for item in manifest.get("skipped", [])]
    warnings += [f"{item['path']}: failed: {item['error']}" for item in manifest.get("failed", [])]
    warnings += [f"{store}: {w}" for w in manifest.get("warnings", [])]
    return warnings


@dataclass(frozen=True)
class Unit:
    """One input of an ingest (a trace file or an Ascend dump directory) with the id its part files get.

    `previous` is its entry in the manifest of the store being replaced, `previous_store` that store: when the
    content hash still matches, the entry and its part files are kept instead of parsing again.
    """

    path: Path
    fmt: str
    explicit: bool
    trace_id: str
    previous: dict | None = None
    previous_store: Path | None = None


UnitRunner = Callable[[list[Unit], Path, Progress | None], list[dict]]
"""Ingests units into a staging directory; returns one outcome per unit, in order (see `ingest_unit`)."""


def _previous_entries(out: Path) -> tuple[Path, dict[str, dict]] | None:
    """The store at `out` and its entries by resolved input path, when it is ours and of this version."""
    manifest = _our_manifest(out)
    if manifest is None:
        return None
    if manifest.get("model_version") != MODEL_VERSION or manifest.get("traceview_version") != __version__:
        return None
    entries = manifest.get("inputs")
    if not isinstance(entries, list):
        return None
    return out, {item["path"]: item for item in entries if isinstance(item, dict) and isinstance(item.get("path"), str)}


def _build(
    files: list[tuple[Path, str, bool]],
    staging: Path,
    progress: Progress | None,
    runner: UnitRunner | None = None,
    previous: tuple[Path, dict[str, dict]] | None = None,
) -> dict:
    for table in TABLES:
        (staging / table).mkdir()
    scratch_root = staging / ".scratch"
    scratch_root.mkdir()
    old_store, old_entries = previous if previous else (None, {})
    seen_ids: set[str] = set()
    units = []
    for path, fmt, explicit in files:
        trace_id = _trace_id(path, seen_ids)
        entry = old_entries.get(str(path.resolve()))
        units.append(Unit(path, fmt, explicit, trace_id, entry, old_store if entry else None))
    outcomes = (runner or run_units_here)(units, staging, progress)
    shutil.rmtree(scratch_root, ignore_errors=True)
    entries = [o["entry"] for o in outcomes if "entry" in o]
    skipped = [o["skipped"] for o in outcomes if "skipped" in o]
    failed = [o["failed"] for o in outcomes if "failed" in o]
    if not entries:
        reasons = [f"{Path(f['path']).name}: {f['error']}" for f in failed]
        reasons += [f"{Path(s['path']).name}: {s['reason']}" for s in skipped]
        raise UserError(f"{files[0][0]}: no readable trace found ({'; '.join(reasons[:3])})")
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
    if failed:  # only a runner that keeps going past a failed unit (Ray) records them
        manifest["failed"] = failed
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def run_units_here(units: list[Unit], staging: Path, progress: Progress | None) -> list[dict]:
    """Ingest the units one after the other in this process; the first error stops the ingest."""
    outcomes = []
    # Each input is hashed on a thread while it is parsed: the hash is mostly file reads, which
    # overlap with the parser's one-thread stretches instead of adding to the wall time.
    with ThreadPoolExecutor(1) as hasher:
        for index, unit in enumerate(units):
            if progress:
                progress(f"[{index + 1}/{len(units)}] {unit.path.name}")
            outcomes.append(ingest_unit(unit, staging, hasher))
    return outcomes


def ingest_unit(
    unit: Unit, staging: Path, hasher: Executor, threads: int | None = None, memory: int | None = None
) -> dict:
    """Parse one unit and write its part files into `staging`; the same code for every runner.

    Returns `{"entry": manifest entry}`, or `{"skipped": ...}` for a file found in a folder that is not a
    readable trace. Raises UserError for a file given explicitly that cannot be read (a runner that keeps going
    turns it into `failed_outcome`). `threads` bounds the parser's threads (default: the machine's CPUs), `memory`
its DuckDB's memory (bytes; default: the parser's share of the trace's size).
    """
    path = unit.path
    digest = hasher.submit(content_hash, path)
    if unit.previous is not None and (kept := _keep_previous(unit, staging, digest.result())):
        return {"entry": kept}
    scratch = Path(tempfile.mkdtemp(dir=staging / ".scratch"))
    try:
        try:
            parsed = parsers.parse(
                path, unit.fmt, scratch, unit.trace_id, rank_hint=_rank_hint(path), threads=threads, memory=memory
            )
        except parsers.TraceFormatError as exc:
            if unit.explicit:
                raise UserError(str(exc)) from exc
            return {"skipped": {**_stat_key(path), "reason": exc.problem}}
        except OSError as exc:
            raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        try:
            return {"entry": _write_parsed(path, unit.fmt, parsed, staging, unit.trace_id, digest)}
        finally:
            parsed.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def failed_outcome(unit: Unit, error: str, bug: bool = False) -> dict:
    """The outcome of a unit that could not be ingested: its one-line error, without the leading path; `bug` when
    the error is an internal one (a bug in traceview) rather than a problem of the unit's input."""
    prefix = f"{unit.path}: "
    problem = error[len(prefix) :] if error.startswith(prefix) else error
    try:
        key = _stat_key(unit.path)
    except OSError:
        key = {"path": str(unit.path.absolute()), "size": None, "mtime_ns": None}
    failed = {**key, "trace_id": unit.trace_id, "rank": _rank_hint(unit.path), "error": problem}
    return {"failed": failed | ({"bug": True} if bug else {})}


def _keep_previous(unit: Unit, staging: Path, digest: str) -> dict | None:
    """The unit's previous entry, its part files linked into `staging`, when its content and parser are the same."""
    entry, old = unit.previous, unit.previous_store
    if entry is None or old is None:
        return None
    same = (entry.get("content_hash"), entry.get("trace_id"), entry.get("format"), entry.get("parser_version")) == (
        digest, unit.trace_id, unit.fmt, parsers.PARSER_VERSIONS.get(unit.fmt)
    )
    if not same:
        return None
    name = f"part-{unit.trace_id}.parquet"
    for table in TABLES:
        source = old / table / name
        if not _is_regular(source):
            return None
        target = staging / table / name
        target.unlink(missing_ok=True)  # left by an attempt that was killed
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return {**entry, **_stat_key(unit.path), "source": str(unit.path)}


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def content_hash(path: Path) -> str:
    """Content hash of an input (xxh3-128 of its bytes; of every file, in order, for a directory)."""
    digest = xxhash.xxh3_128()
    files = dump_files(path) if path.is_dir() else [path]
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


def _check_target(out: Path) -> None:
    """Refuse a store path that is not a directory (links included) or is a directory of someone else's."""
    try:
        mode = lstat_mode(out)
    except OSError as exc:
        raise UserError(f"{out}: cannot be used as a store ({exc.strerror or exc})") from exc
    if mode is None:
        return
    if not stat.S_ISDIR(mode):
        kind = kind_name(mode)
        raise UserError(f"{out}: exists and is {kind}, not a traceview store; refusing to write there")
    if _our_manifest(out) is None and any(out.iterdir()):
        raise UserError(f"{out}: exists and is not a traceview store; refusing to overwrite it")


def _lock_wait_s() -> float:
    value = os.environ.get("TRACEVIEW_LOCK_WAIT_S")
    if not value:
        return LOCK_WAIT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise UserError(f"TRACEVIEW_LOCK_WAIT_S: not a number of seconds from 0 ({value!r})")
    return seconds


@contextmanager
def _store_lock(out: Path, progress: Progress | None = None) -> Iterator[None]:
    """Hold an exclusive `flock` on `.NAME.lock` beside the store; the holder removes the file on release.

    The kernel drops the lock when its holder dies, so a lock that can be taken is never held by a
    live writer. A waiter that wins the lock on a file that was removed meanwhile tries again.
    """
    lock_path = _lock_path(out)
    wait_s = _lock_wait_s()
    deadline = time.monotonic() + wait_s
    while True:
        fd = _open_lock_file(lock_path)
        try:
            _flock_before(fd, deadline, out, wait_s, progress)
            if _is_same_file(fd, lock_path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        with suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)


def _lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


def _open_lock_file(lock_path: Path) -> int:
    flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(lock_path, flags, 0o644)
    except OSError as exc:
        reason = "is a symbolic link" if os.path.islink(lock_path) else (exc.strerror or str(exc))
        raise UserError(f"{lock_path}: cannot be used as the store's lock file ({reason})") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{lock_path}: cannot be used as the store's lock file (not a regular file)")
    return fd


def _flock_before(fd: int, deadline: float, out: Path, wait_s: float, progress: Progress | None) -> None:
    pause = 0.02
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if progress and pause == 0.02:  # the first miss
                progress(f"waiting for another ingest writing {out.name}")
            if time.monotonic() >= deadline:
                raise UserError(
                    f"{out}: another traceview ingest is writing this store; gave up after {wait_s:g} s"
                    " (set TRACEVIEW_LOCK_WAIT_S to wait longer)"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def _is_same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def _staging_name(out: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(out.name)}\.[0-9a-f]{{8}}\.tmp")


def _old_name(out: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(out.name)}\.old-\d+-[0-9a-f]{{8}}")


def _fresh_dir(parent: Path, prefix: str, suffix: str) -> Path:
    """A new, empty directory `prefix<8 hex>suffix` in `parent`, created by this call (never an existing one)."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise UserError(f"{parent}: cannot write the store here ({exc.strerror or exc})") from exc


def _new_staging(out: Path) -> Path:
    """The staging directory of a new store, marked as ours and named for `out`."""
    staging = _fresh_dir(out.parent, f".{out.name}.", ".tmp")
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    (staging / STAGING_MARK).write_text(json.dumps({"store": out.name, "pid": os.getpid()}) + "\n")
    return staging


def _marked_for(staging: Path, out: Path) -> bool:
    try:
        if os.path.islink(staging / STAGING_MARK):
            return False
        mark = json.loads(read_regular(staging / STAGING_MARK, 4096))
    except (OSError, ValueError):
        return False
    return isinstance(mark, dict) and mark.get("store") == out.name


def _has_leftovers(out: Path) -> bool:
    """True when a lock file or a name an ingest of `out` could have left lies beside it (cheap: names only)."""
    try:
        names = os.listdir(out.parent)
    except OSError:
        return False
    staging_name, old_name = _staging_name(out), _old_name(out)
    lock_name = _lock_path(out).name
    return any(n == lock_name or staging_name.fullmatch(n) or old_name.fullmatch(n) for n in names)


def _recover(out: Path) -> None:
    """Under the store's lock: clear what killed ingests of `out` left behind, or put back the store they moved."""
    try:
        names = os.listdir(out.parent)
    except OSError:
        return
    staging_name, old_name = _staging_name(out), _old_name(out)
    olds = []
    for name in names:
        path = out.parent / name
        if not _is_real_dir(path):
            continue
        if staging_name.fullmatch(name):
            if _marked_for(path, out) or _our_manifest(path) is not None or _is_empty_dir(path):
                _remove_ours(path)
        elif old_name.fullmatch(name):
            if _our_manifest(path) is not None:
                olds.append(path)
            elif _is_empty_dir(path):
                _remove_ours(path)
    olds.sort(key=lambda p: os.lstat(p).st_mtime_ns)
    if olds and not os.path.lexists(out):
        with suppress(OSError):
            os.replace(olds.pop(), out)
    for old in olds:
        _discard(old, out)


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _is_empty_dir(path: Path) -> bool:
    try:
        return not os.listdir(path)
    except OSError:
        return False


def _remove_ours(path: Path) -> None:
    """Remove a staging directory, keeping what proves it ours (mark, manifest) until last.

    A kill halfway through thus leaves a directory that is still recognised and removed next time.
    """
    proofs = (STAGING_MARK, MANIFEST)
    with suppress(FileNotFoundError):
        for entry in os.scandir(path):
            if entry.name in proofs:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with suppress(OSError):
                    os.unlink(entry.path)
        for name in proofs:
            with suppress(OSError):
                os.unlink(path / name)
        with suppress(OSError):
            os.rmdir(path)


def _discard(old: Path, out: Path) -> None:
    """Remove a replaced store: renamed to a staging name first, so a half-removed one is never put back."""
    with suppress(OSError, UserError):
        trash = _fresh_dir(out.parent, f".{out.name}.", ".tmp")
        os.replace(old, trash)
        _remove_ours(trash)


def _replace(staging: Path, out: Path) -> None:
    """Rename the finished `staging` to `out`, moving an older store aside and removing it after."""
    _check_target(out)
    (staging / STAGING_MARK).unlink()  # the manifest, written before, now proves the directory ours
    if not os.path.lexists(out) or _is_empty_dir(out):
        os.replace(staging, out)
        return
    old = _fresh_dir(out.parent, f".{out.name}.old-{os.getpid()}-", "")
    os.replace(out, old)
    os.replace(staging, out)
    _discard(old, out)
