"""What a directory entry of an untrusted dump is, without opening it (a FIFO would block a read).

Inside a dump directory, a link is read only when it leads to a regular file inside the same dump:
a dump from elsewhere must not make traceview read (and copy into a store) files outside it.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..filekind import kind_name

DIRECTORY = "a directory, not a file"
OUTSIDE = "leads outside the dump (through a link)"


def file_problem(path: Path | str) -> str | None:
    """None when `path` is a regular file (through links), else why it cannot be read as one."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if os.path.islink(path):
            return "a link to a missing file"
        return exc.strerror.lower() if exc.strerror and exc.errno != errno.ENOENT else "no such file or directory"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return DIRECTORY
    return f"not a regular file ({kind_name(mode)})"


def is_inside(path: Path | str, root: Path) -> bool:
    """True when `path`, with every link resolved, lies in the (resolved) directory `root`."""
    real = Path(os.path.realpath(path))
    return real.is_relative_to(root)


@dataclass
class Screen:
    """The rules for one dump's entries, and the notes (warnings) on what was left out."""

    roots: tuple[Path, ...]
    label_base: Path
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, unit: Path, ignored: list[str] | None = None, link_root: Path | None = None) -> Screen:
        """The screen of dump directory `unit`; links may lead anywhere inside it or inside `link_root`."""
        roots = tuple(dict.fromkeys(Path(os.path.realpath(p)) for p in (unit, link_root) if p is not None))
        return cls(roots=roots, label_base=unit, ignored=ignored if ignored is not None else [])

    def label(self, path: Path) -> str:
        """`path` relative to the dump, for messages."""
        try:
            return path.relative_to(self.label_base).as_posix()
        except ValueError:
            return path.name

    def note(self, path: Path, problem: str) -> None:
        """Record that `path` is not read, and why (once)."""
        line = f"{self.label(path)}: {problem}; not read"
        if line not in self.ignored:
            self.ignored.append(line)

    def contains(self, path: Path | str) -> bool:
        """True when `path`, links resolved, lies inside the dump."""
        return any(is_inside(path, root) for root in self.roots)

    def problem(self, entry: os.DirEntry) -> str | None:
        """None when the entry (in a directory inside the dump) is a regular file, or a link to one
        inside the dump; else why it is not read."""
        problem = entry_problem(entry)
        if problem is None and _is_link(entry) and not self.contains(entry.path):
            return OUTSIDE
        return problem


def entry_problem(entry: os.DirEntry) -> str | None:
    """`file_problem` of a directory entry; no stat call for a plain regular file."""
    try:
        if entry.is_file(follow_symlinks=False):
            return None
    except OSError:
        pass
    return file_problem(entry.path)


def _is_link(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False
