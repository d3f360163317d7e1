"""Atomic file output: write to a temporary sibling, then rename. Nothing is created but the file itself."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from traceview.errors import UserError
from traceview.parsers.filekind import kind_name, lstat_mode


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old file or the whole new one (see `atomic_output`)."""
    with atomic_output(path) as fh:
        fh.write(text.encode("utf-8"))


@contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file whose bytes replace `path` when the block ends, and are thrown away if it raises.

    Only a regular file is replaced: a link, a directory, a FIFO, a socket or a device at `path`
    is refused, since the rename would swap it for a file instead of writing where it points.
    The directory must exist: a mistyped path is an error, not a new directory tree.
    """
    check_output_path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_path(path: Path) -> None:
    """Refuse (UserError) an output path whose directory does not exist or whose file may not be replaced."""
    parent = path.parent
    try:
        is_dir = stat.S_ISDIR(os.stat(parent).st_mode)
    except FileNotFoundError:
        raise UserError(f"{path}: cannot be written: the directory {parent} does not exist") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    if not is_dir:
        raise UserError(f"{path}: cannot be written: {parent} is not a directory")
    _check_replaceable(path)


def _check_replaceable(path: Path) -> None:
    try:
        mode = lstat_mode(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    if mode is None:
        return
    if not stat.S_ISREG(mode):
        kind = kind_name(mode)
        raise UserError(f"{path}: exists and is {kind}; refusing to replace it with the output file")
