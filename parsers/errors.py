"""Errors parsers raise: one line, naming the file and what was wrong."""

from __future__ import annotations

from pathlib import Path


class TraceFormatError(Exception):
    """The input is not a trace this parser can read; the message is one line for the user."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
