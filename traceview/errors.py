"""The application's one error type, and the exit codes the CLI maps errors to (traceview.cli)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE = 1  # a gate tripped: `diff --fail-on`
EXIT_USER_ERROR = 2  # bad input or usage: a UserError or TraceFormatError, a usage error, `packs check` problems
EXIT_BUG = 3  # an internal error: a bug in traceview


class UserError(Exception):
    """A problem with the user's input: printed as `Error: <message>`, no traceback, exit code 2."""
