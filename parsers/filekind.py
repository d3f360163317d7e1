"""Names for the kinds of directory entry, as messages say them ("a FIFO", "a symbolic link")."""

from __future__ import annotations

import stat

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
