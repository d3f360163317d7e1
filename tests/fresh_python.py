"""Running test code in a fresh interpreter: for what one process can only check once, such as
which modules an import or a parse pulls in."""

from __future__ import annotations

import subprocess
import sys


def fresh_python(code: str) -> str:
    """The stripped stdout of `python -c code` in a new process (CalledProcessError if it fails)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
