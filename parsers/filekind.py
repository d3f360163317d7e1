"""Kinds of directory entry: their names in messages ("a FIFO", "a symbolic link"), and reading a
regular file of an untrusted tree without blocking on a FIFO."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_NAMES = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def kind_name(mode: int) -> str:
    """What an entry of `mode` (from stat or lstat) is, in words."""
    return _NAMES.get(stat.S_IFMT(mode), "a special file")


class NotRegularFile(ValueError):
    """The path is a FIFO, a device, a directory or another entry that is not a regular file."""


class FileTooLarge(ValueError):
    """The regular file holds more bytes than the caller allows."""


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them.

    The open never blocks (a FIFO would) and the kind is checked on the opened descriptor, so nothing can
    swap the entry between check and read. Raises NotRegularFile, FileTooLarge, or OSError.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{path.name} is not a regular file ({kind_name(mode)})")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise FileTooLarge(f"{path.name} is larger than {max_bytes} bytes")
    return data


def lstat_mode(path: Path) -> int | None:
    """The mode of the entry at `path` itself (a link is not followed), or None when there is none."""
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None
