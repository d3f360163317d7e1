"""Where stores and the on-the-fly cache live."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

STORE_SUFFIX = ".traceview"


def cache_root(cache_dir: Path | None = None) -> Path:
    """The cache directory: --cache-dir, else $TRACEVIEW_CACHE_DIR, else the user cache folder."""
    if cache_dir is not None:
        return cache_dir
    if env := os.environ.get("TRACEVIEW_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "traceview"


def cache_store_for(inputs: list[Path], cache_dir: Path | None = None) -> Path:
    """The cache store of a set of inputs, keyed by their absolute paths."""
    key = hashlib.sha256("\0".join(sorted(str(p.resolve()) for p in inputs)).encode()).hexdigest()[:16]
    name = inputs[0].name.split(".")[0] or "trace"
    return cache_root(cache_dir) / f"{name}-{key}{STORE_SUFFIX}"


def default_store_for(inputs: list[Path]) -> Path:
    """Default output of `traceview ingest`: `<name>.traceview` in the current directory.

    When the current directory lies inside an input directory, the store goes to the cache
    instead, so that nothing is ever written into a dump.
    """
    cwd = Path.cwd().resolve()
    for path in inputs:
        resolved = path.resolve()
        if resolved.is_dir() and (cwd == resolved or resolved in cwd.parents):
            return cache_store_for(inputs)
    name = inputs[0].resolve().name.split(".")[0] or "trace"
    return cwd / f"{name}{STORE_SUFFIX}"


def is_inside(path: Path, directory: Path) -> bool:
    """True when `path` is `directory` or lies under it."""
    path, directory = path.resolve(), directory.resolve()
    return path == directory or directory in path.parents
