"""Where things are in Ascend profiler output: discovery of dumps and of their files.

A *unit* is what becomes one trace in the store: a torch_npu rank directory (`*_ascend_pt`),
an msprof collection (`PROF_*`), or a single database, timeline or kernel CSV. Units are
recognised by their content (marker files and directories), not by the directory name.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..inflate import InflateLimitError, bomb_message, gunzip_to
from ..limits import inflate_cap
from .fsentry import DIRECTORY, OUTSIDE, Screen, entry_problem

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
    # what the dump holds but traceview does not read (odd entries, links leading outside), as warnings
    ignored: list[str] = field(default_factory=list)

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


def _listdir(path: Path, plain_names: bool = False, screen: Screen | None = None) -> tuple[list[str], list[str]]:
    """(directories, files) in `path`, sorted, hidden names left out. Links to directories are not
    followed; only regular files are listed (a FIFO is never opened). With a `screen`, links leading
    outside the dump are left out too, and what is left out is noted."""
    if screen is not None and not screen.contains(path):
        screen.note(path, OUTSIDE)
        return [], []
    try:
        entries = list(os.scandir(path))
    except OSError:
        return [], []
    dirs: list[str] = []
    files: list[str] = []
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if _is_real_dir(entry):
            dirs.append(entry.name)
            if screen is not None and is_read_name(entry.name):
                screen.note(Path(entry.path), "a directory, not a file")
            continue
        problem = screen.problem(entry) if screen is not None else entry_problem(entry)
        if problem is None:
            files.append(entry.name)
        elif screen is not None and (is_read_name(entry.name) or problem != DIRECTORY):
            screen.note(Path(entry.path), problem)
    if plain_names:  # for recognising a dump stored gzipped: `kernel_details.csv.gz` counts as its plain name
        files = sorted(f[:-3] if f.endswith(".gz") else f for f in files)
    return dirs, files


def _is_real_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def is_read_name(name: str) -> bool:
    """True for the file names traceview reads in a dump (gzipped or not)."""
    name = name[:-3] if name.endswith(".gz") else name
    return (
        name in TEXT_EXPORT_FILES
        or name in ("analysis.db", "profiler_metadata.json", "info.json", "sample.json")
        or is_db_name(name)
        or is_kernel_csv_name(name)
        or is_timeline_name(name)
        or bool(_PROFILER_INFO.match(name))
        or _msprof_role(name) is not None
    )


def has_gzipped_files(unit: Path) -> bool:
    """True when a dump directory holds gzipped files (a compressed copy of a dump)."""
    return unit.is_dir() and any(p.name.endswith(".gz") for p in unit.rglob("*.gz"))


@dataclass
class Mirror:
    """A dump with its `.gz` files decompressed, in traceview's own scratch directory."""

    root: Path
    # mirror path -> the dump's file it stands for (for messages)
    origins: dict[str, Path] = field(default_factory=dict)


def gunzipped_mirror(unit: Path, scratch: Path, ignored: list[str]) -> Mirror:
    """A copy of the dump directory in a fresh directory under `scratch` with every `.gz` file
    decompressed under its plain name; other files are linked, not copied.

    Nothing is ever written into the dump or through a link: new files only, created exclusively.
    When both `x` and `x.gz` exist, `x` is read (and noted in `ignored`). The inflated total is
    capped like one gzip stream of all the compressed bytes (see `parsers.limits`).
    """
    screen = Screen.of(unit, ignored)
    name = Path(os.path.realpath(unit)).name or "dump"
    mirror = Mirror(Path(tempfile.mkdtemp(prefix="gunzipped-", dir=scratch)) / name)
    mirror.root.mkdir()
    plan = _mirror_plan(unit, mirror.root, screen)
    compressed = sum(source.stat().st_size for source, _, gz in plan if gz)
    inflated = 0
    for source, target, gz in plan:
        mirror.origins[str(target)] = source
        if not gz:
            os.symlink(os.path.realpath(source), target)
            continue
        inflated += gunzip_to(source, target)
        if inflated > inflate_cap(compressed):
            raise InflateLimitError(unit, bomb_message(compressed))
    return mirror


def _mirror_plan(unit: Path, mirror: Path, screen: Screen) -> list[tuple[Path, Path, bool]]:
    """(source, target, is gzipped) for every file of the mirror; creates its directories."""
    plan: list[tuple[Path, Path, bool]] = []
    stack = [(unit, mirror)]
    while stack:
        source_dir, target_dir = stack.pop()
        dirs, files = _listdir(source_dir, screen=screen)
        for name in dirs:
            (target_dir / name).mkdir()
            stack.append((source_dir / name, target_dir / name))
        readable = set(files) | set(dirs)
        for name in files:
            gz = name.endswith(".gz")
            plain = name[:-3] if gz else name
            if gz and plain in readable:
                both = f"{screen.label(source_dir / plain)} and {screen.label(source_dir / name)}"
                screen.ignored.append(f"both {both}: read {plain}")
                continue
            plan.append((source_dir / name, target_dir / plain, gz))
    return plan


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


def collect(unit: Path, kind: str, link_root: Path | None = None) -> Sources:
    """The files of a unit (directory or single file), by role.

    In a directory, links are read only where they lead to a regular file inside `link_root`
    (default: the unit); what is left out is listed in `Sources.ignored`.
    """
    if unit.is_file():
        return _collect_file(unit)
    if kind == MSPROF:
        return _collect_msprof(unit, link_root)
    return _collect_torch_npu(unit, link_root)


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


def _collect_torch_npu(unit: Path, link_root: Path | None) -> Sources:
    sources = Sources(root=unit, kind="torch_npu")
    screen = Screen.of(unit, sources.ignored, link_root)
    out = unit / OUTPUT_DIR if (unit / OUTPUT_DIR).is_dir() else unit
    # Given ASCEND_PROFILER_OUTPUT itself, the rank's profiler_info_N.json is one level up.
    bases = [unit.parent, unit] if unit.name == OUTPUT_DIR else [unit, out]
    for base in dict.fromkeys(bases):
        base_screen = Screen.of(base, sources.ignored, link_root) if base == unit.parent else screen
        _, files = _listdir(base, screen=base_screen)
        for name in files:
            path = base / name
            if _PROFILER_INFO.match(name):
                sources.profiler_info = sources.profiler_info or path
            elif name == "profiler_metadata.json":
                sources.profiler_metadata = path
    _, files = _listdir(out, screen=screen)
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


def _collect_msprof(unit: Path, link_root: Path | None) -> Sources:
    sources = Sources(root=unit, kind="msprof")
    screen = Screen.of(unit, sources.ignored, link_root)
    dirs, files = _listdir(unit, screen=screen)
    dbs = [unit / f for f in files if re.match(r"^msprof_\d+\.db$", f)]
    sources.db = newest(dbs)[-1] if dbs else None
    sources.msprof_meta = [unit / f for f in files if f == "info.json" or f.startswith(("info.json.", "sample.json"))]
    places = [unit / MSPROF_OUTPUT_DIR] if MSPROF_OUTPUT_DIR in dirs else []
    if not places:  # pre-CANN-8.0: per-device summary/ and timeline/ folders
        for device in (d for d in dirs if re.match(r"^device_\d+$", d)):
            places += [unit / device / "summary", unit / device / "timeline"]
            _, device_files = _listdir(unit / device, screen=screen)
            sources.msprof_meta += [unit / device / f for f in device_files if f.startswith("info.json")]
    by_role: dict[str, list[Path]] = {}
    for place in places:
        _, names = _listdir(place, screen=screen)
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
