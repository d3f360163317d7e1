"""Where things are in Ascend profiler output: discovery of dumps and of their files.

A *unit* is what becomes one trace in the store: a torch_npu rank directory (`*_ascend_pt`),
an msprof collection (`PROF_*`), or a single database, timeline or kernel CSV. Units are
recognised by their content (marker files and directories), not by the directory name.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ASCEND_PT = "ascend_pt"
MSPROF = "msprof"
ASCEND_DB = "ascend_db"
ASCEND_TIMELINE = "ascend_timeline"
ASCEND_CSV = "ascend_csv"
FORMATS = (ASCEND_PT, MSPROF, ASCEND_DB, ASCEND_TIMELINE, ASCEND_CSV)

OUTPUT_DIR = "ASCEND_PROFILER_OUTPUT"
MSPROF_OUTPUT_DIR = "mindstudio_profiler_output"
SQLITE_MAGIC = b"SQLite format 3\x00"

_DB_NAME = re.compile(r"^(ascend_pytorch_profiler|ascend_mindspore_profiler)(_\d+)?\.db$|^msprof_\d+\.db$")
_TIMELINE_NAME = re.compile(r"^trace_view\.json$|^msprof(_slice_\d+)?(_\d+)*\.json$")
_KERNEL_CSV_NAME = re.compile(r"^kernel_details\.csv$|^op_summary(_slice_\d+)?(_\d+)*\.csv$")
# Content of a timeline under another name: Ascend track names, or `ts` written as a string.
_ASCEND_HINT = re.compile(rb'"(Ascend Hardware|CANN|Overlap Analysis|HostToDevice)"|"ts"\s*:\s*"\d')
_PROFILER_INFO = re.compile(r"^profiler_info(_\d+)?\.json$")
# ts14 (CANN >= 8.0) or the legacy `{device}_{model}_{ts}` suffixes; `_slice_N` for parts.
_MSPROF_FILE = re.compile(r"^(?P<kind>[a-z_]+?)(?:_slice_(?P<slice>\d+))?(?P<suffix>(?:_\d+)+)\.(?P<ext>csv|json)$")
TEXT_EXPORT_FILES = (
    "trace_view.json",
    "kernel_details.csv",
    "step_trace_time.csv",
    "memory_record.csv",
    "operator_memory.csv",
    "npu_module_mem.csv",
    "op_statistic.csv",
    "api_statistic.csv",
    "operator_details.csv",
)


@dataclass
class Sources:
    """The files of one unit that traceview reads, by role."""

    root: Path
    kind: str
    db: Path | None = None
    analysis_db: Path | None = None
    timelines: list[Path] = field(default_factory=list)
    kernels: list[Path] = field(default_factory=list)
    files: dict[str, list[Path]] = field(default_factory=dict)
    profiler_info: Path | None = None
    profiler_metadata: Path | None = None
    msprof_meta: list[Path] = field(default_factory=list)

    def one(self, role: str) -> Path | None:
        """The (first) file of a role, e.g. `step_trace_time`."""
        paths = self.files.get(role) or []
        return paths[0] if paths else None

    def all_paths(self) -> list[Path]:
        """Every file this unit reads, for hashing."""
        paths = [self.db, self.analysis_db, self.profiler_info, self.profiler_metadata]
        paths += self.timelines + self.kernels + self.msprof_meta
        paths += [p for group in self.files.values() for p in group]
        return sorted({p for p in paths if p is not None})


def is_db_name(name: str) -> bool:
    """True for the database names the Ascend tools write."""
    return bool(_DB_NAME.match(name))


def is_timeline_name(name: str) -> bool:
    """True for `trace_view.json` and msprof timeline names (not msprof_tx / step_trace)."""
    return bool(_TIMELINE_NAME.match(name))


def is_kernel_csv_name(name: str) -> bool:
    """True for `kernel_details.csv` and `op_summary_*.csv` (sliced parts included)."""
    return bool(_KERNEL_CSV_NAME.match(name))


def _head(path: Path, size: int = 64) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def detect_file(path: Path) -> str | None:
    """The Ascend format of a single file given by name, or None when it is not an Ascend name.

    A known name with foreign content is still claimed here; its parser then says what is wrong.
    A `{`-object named like a timeline is left to the Chrome/Kineto parser.
    """
    name = path.name
    if is_db_name(name):
        return ASCEND_DB
    if is_kernel_csv_name(name):
        return ASCEND_CSV
    if is_timeline_name(name):
        head = _head(path, 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        return None if head[:1] == b"{" else ASCEND_TIMELINE
    if name.lower().endswith(".json"):
        head = _head(path, 1 << 16).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head[:1] == b"[" and _ASCEND_HINT.search(head):
            return ASCEND_TIMELINE
    return None


def _listdir(path: Path, plain_names: bool = False) -> tuple[list[str], list[str]]:
    try:
        entries = list(os.scandir(path))
    except OSError:
        return [], []
    dirs = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
    files = sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
    if plain_names:  # for recognising a dump stored gzipped: `kernel_details.csv.gz` counts as its plain name
        files = sorted(f[:-3] if f.endswith(".gz") else f for f in files)
    return dirs, files


def has_gzipped_files(unit: Path) -> bool:
    """True when a dump directory holds gzipped files (a compressed copy of a dump)."""
    return unit.is_dir() and any(p.name.endswith(".gz") for p in unit.rglob("*.gz"))


def gunzipped_mirror(unit: Path, scratch: Path) -> Path:
    """A copy of the dump directory in scratch with every `.gz` file decompressed under its plain name.

    Other files are linked, not copied; the dump itself is never written to.
    """
    mirror = scratch / "gunzipped" / unit.name
    for source in sorted(unit.rglob("*")):
        if not source.is_file():
            continue
        relative = source.relative_to(unit)
        target = mirror / (str(relative)[:-3] if source.name.endswith(".gz") else relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.name.endswith(".gz"):
            with gzip.open(source, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 8 << 20)
        else:
            os.symlink(source.resolve(), target)
    return mirror


def _has_known_output(path: Path) -> bool:
    _, files = _listdir(path, plain_names=True)
    return any(f in TEXT_EXPORT_FILES or is_db_name(f) for f in files)


def unit_kind(path: Path) -> str | None:
    """ASCEND_PT or MSPROF when directory `path` is itself a unit, else None."""
    dirs, files = _listdir(path, plain_names=True)
    if OUTPUT_DIR in dirs and (_has_known_output(path / OUTPUT_DIR) or any(_PROFILER_INFO.match(f) for f in files)):
        return ASCEND_PT
    if any(_PROFILER_INFO.match(f) for f in files) and (OUTPUT_DIR in dirs or "FRAMEWORK" in dirs):
        return ASCEND_PT
    if MSPROF_OUTPUT_DIR in dirs:
        return MSPROF
    if path.name.startswith("PROF_") and (
        any(re.match(r"^device_\d+$", d) for d in dirs) or any(re.match(r"^msprof_\d+\.db$", f) for f in files)
    ):
        return MSPROF
    has_info = any(f == "info.json" or f.startswith("info.json.") for f in files)
    if has_info and any(f == "sample.json" or f.startswith(("start_info", "end_info")) for f in files):
        return MSPROF
    known = [f for f in files if f in TEXT_EXPORT_FILES or is_db_name(f)]
    if len(known) >= 2 and any(is_db_name(f) or f in ("trace_view.json", "kernel_details.csv") for f in known):
        return ASCEND_PT
    return None


def find_units(root: Path) -> tuple[list[tuple[Path, str]], list[Path]]:
    """Ascend units under directory `root`: (units, loose files to look at one by one).

    Directories inside a unit belong to it (a PROF_* inside an *_ascend_pt is the same data),
    so the walk does not descend into them.
    """
    units: list[tuple[Path, str]] = []
    loose: list[Path] = []
    stack = [root]
    while stack:
        current = stack.pop()
        kind = unit_kind(current)
        if kind is not None:
            units.append((current, kind))
            continue
        dirs, files = _listdir(current)
        loose += [current / f for f in files]
        stack += [current / d for d in reversed(dirs)]
    return sorted(units), sorted(loose)


def newest(paths: list[Path]) -> list[Path]:
    """msprof keeps several exports side by side; keep the newest timestamp's files (all slices)."""
    if len(paths) <= 1:
        return paths
    groups: dict[str, list[Path]] = {}
    for path in paths:
        match = _MSPROF_FILE.match(path.name)
        stamp = match.group("suffix").rsplit("_", 1)[-1] if match else ""
        groups.setdefault(stamp, []).append(path)
    latest = max(groups, key=lambda s: (len(s), s))
    return sorted(groups[latest], key=_slice_key)


def _slice_key(path: Path) -> tuple[int, str]:
    match = _MSPROF_FILE.match(path.name)
    return (int(match.group("slice")) if match and match.group("slice") else -1, path.name)


def _msprof_role(name: str) -> str | None:
    match = _MSPROF_FILE.match(name)
    if not match:
        return None
    kind, ext = match.group("kind"), match.group("ext")
    if ext == "json":
        return "timeline" if kind == "msprof" else None
    return kind


def collect(unit: Path, kind: str) -> Sources:
    """The files of a unit (directory or single file), by role."""
    if unit.is_file():
        return _collect_file(unit)
    if kind == MSPROF:
        return _collect_msprof(unit)
    return _collect_torch_npu(unit)


def _collect_file(path: Path) -> Sources:
    sources = Sources(root=path.parent, kind="file")
    name = path.name
    if is_db_name(name):
        sources.db = path
        sibling = path.parent / "analysis.db"
        if sibling.is_file():
            sources.analysis_db = sibling
    elif is_kernel_csv_name(name):
        sources.kernels = [path]
    else:
        sources.timelines = [path]
    return sources


def _collect_torch_npu(unit: Path) -> Sources:
    sources = Sources(root=unit, kind="torch_npu")
    out = unit / OUTPUT_DIR if (unit / OUTPUT_DIR).is_dir() else unit
    # Given ASCEND_PROFILER_OUTPUT itself, the rank's profiler_info_N.json is one level up.
    bases = [unit.parent, unit] if unit.name == OUTPUT_DIR else [unit, out]
    for base in dict.fromkeys(bases):
        _, files = _listdir(base)
        for name in files:
            path = base / name
            if _PROFILER_INFO.match(name):
                sources.profiler_info = sources.profiler_info or path
            elif name == "profiler_metadata.json":
                sources.profiler_metadata = path
    _, files = _listdir(out)
    for name in files:
        path = out / name
        if is_db_name(name):
            sources.db = path
        elif name == "analysis.db":
            sources.analysis_db = path
        elif name == "trace_view.json":
            sources.timelines = [path]
        elif name == "kernel_details.csv":
            sources.kernels = [path]
        elif name.endswith((".csv", ".json")):
            sources.files.setdefault(name.rsplit(".", 1)[0], []).append(path)
    return sources


def _collect_msprof(unit: Path) -> Sources:
    sources = Sources(root=unit, kind="msprof")
    dirs, files = _listdir(unit)
    dbs = [unit / f for f in files if re.match(r"^msprof_\d+\.db$", f)]
    sources.db = newest(dbs)[-1] if dbs else None
    sources.msprof_meta = [unit / f for f in files if f == "info.json" or f.startswith(("info.json.", "sample.json"))]
    places = [unit / MSPROF_OUTPUT_DIR] if MSPROF_OUTPUT_DIR in dirs else []
    if not places:  # pre-CANN-8.0: per-device summary/ and timeline/ folders
        for device in (d for d in dirs if re.match(r"^device_\d+$", d)):
            places += [unit / device / "summary", unit / device / "timeline"]
            _, device_files = _listdir(unit / device)
            sources.msprof_meta += [unit / device / f for f in device_files if f.startswith("info.json")]
    by_role: dict[str, list[Path]] = {}
    for place in places:
        _, names = _listdir(place)
        for name in names:
            role = _msprof_role(name)
            if role:
                by_role.setdefault(role, []).append(place / name)
    legacy = len(places) > 1
    for role, paths in by_role.items():
        chosen = sorted(paths, key=_slice_key) if legacy else newest(paths)
        if role == "timeline":
            sources.timelines = chosen
        elif role == "op_summary":
            sources.kernels = chosen
        else:
            sources.files[role] = chosen
    return sources
