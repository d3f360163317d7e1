"""Errors the application reports to the user as one line (exit code 2)."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input: printed as `Error: <message>`, no traceback."""
