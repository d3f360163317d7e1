"""Detection of input formats by content, not by file name alone."""

from __future__ import annotations

from pathlib import Path

from .ascend import layout as ascend_layout
from .ascend.fsentry import file_problem
from .errors import TraceFormatError
from .inflate import inflate_head

GZIP_MAGIC = b"\x1f\x8b"
KINETO = "kineto"


def _head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read(1 << 16)
    if raw[:2] == GZIP_MAGIC:
        return inflate_head(raw, size)
    return raw[:size]


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def detect_file(path: Path) -> str | None:
    """Return the format name of one file, or None when it is no format we read."""
    head = _head(path).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"{", b"["):
        return KINETO
    return None


def _describe(path: Path) -> str:
    head = _head(path, 64)
    if not head:
        if path.stat().st_size == 0:
            return "an empty file"
        if _is_gzip(path):
            return "an empty or damaged gzip stream"
        return "binary data"
    text = head.lstrip()
    if all(32 <= b < 127 or b in b"\r\n\t" for b in text[:32]):
        first = text.decode("ascii", "replace").splitlines()[0][:24] if text else ""
        return f"text starting with {first!r}"
    return "binary data"


def trace_files(path: Path) -> list[tuple[Path, str]]:
    """The traces under `path` (a file or a directory) with their formats.

    A trace is a file, or for Ascend output a unit directory (a torch_npu rank dump, an msprof
    collection); files inside a unit belong to it and are not listed again.
    Raises TraceFormatError when nothing readable is found.
    """
    problem = file_problem(path)
    if problem is None:
        fmt = ascend_layout.detect_file(path) or detect_file(path)
        if fmt is None:
            expected = "expected a Chrome/Kineto JSON trace (.json or .json.gz)"
            raise TraceFormatError(path, f"{expected}, found {_describe(path)}")
        return [(path, fmt)]
    if problem != ascend_layout.DIRECTORY:
        raise TraceFormatError(path, problem)
    units, loose = ascend_layout.find_units(path)
    found = list(units)
    for child in loose:
        if child.name.startswith(".") or child.name == "manifest.json":
            continue
        ascend = ascend_layout.detect_file(child)
        if ascend is not None:
            found.append((child, ascend))
            continue
        if child.suffix.lower() not in (".json", ".gz"):
            continue
        if detect_file(child) is not None:
            found.append((child, KINETO))
    if not found:
        raise TraceFormatError(
            path,
            "expected a directory with traces (Kineto .json or .json.gz, torch_npu *_ascend_pt dumps,"
            " msprof PROF_* collections, Ascend .db or .csv exports), found none",
        )
    return sorted(found)
