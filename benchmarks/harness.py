"""What the benchmark scripts share: logging, CPU and peak-RSS accounting, and the child worker's frame.

Each contender runs in its own process so that its peak RSS is its own; the child writes its
figures as JSON. The scripts import this module from their own folder (`import harness`).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def log(message: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def maxrss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    """Peak resident set size of this process (or of its waited-for children), in bytes."""
    return resource.getrusage(who).ru_maxrss * 1024  # kilobytes on Linux


def cpu_s() -> float:
    """User + system CPU seconds of this process and its waited-for children so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file ('' if it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_worker(name: str, mem_gb: float | None, result_path: Path, body: Callable[[dict], None]) -> int:
    """Child-process frame: limit the address space, run `body(result)`, write the figures as JSON.

    Returns the exit code: 0 when the contender finished, 1 otherwise (the reason is in the JSON).
    """
    result: dict[str, Any] = {"contender": name, "pid": os.getpid()}
    if mem_gb:
        limit = int(mem_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        result["address_space_limit_bytes"] = limit
    started = time.perf_counter()
    try:
        body(result)
        result["status"] = "ok"
    except MemoryError:
        result["status"] = "out of memory"
        result["error"] = "MemoryError"
    except Exception as exc:
        result["status"] = "error"
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
    result["process_s"] = time.perf_counter() - started
    result.setdefault("peak_rss_bytes", maxrss_bytes())
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["status"] == "ok" else 1
