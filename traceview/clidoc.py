"""The CLI reference (docs/cli.md), generated from the commands' `--help` texts.

Regenerate with `python -m traceview.clidoc > docs/cli.md`; a test fails when the file is stale.
"""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from traceview.cli import app

WIDTH = 100
_ENV: dict[str, str | None] = {
    "COLUMNS": str(WIDTH),
    "TERMINAL_WIDTH": str(WIDTH),
    "NO_COLOR": "1",
    "TERM": "dumb",
    "FORCE_COLOR": None,
    "PY_COLORS": None,
    "GITHUB_ACTIONS": None,
}
# Colour codes, in case the environment forced them on before this module was imported.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def command_paths() -> list[list[str]]:
    """Every command as the words that call it: [], ['ingest'], ..., ['packs', 'list'], ..."""
    paths: list[list[str]] = [[]]
    root = typer.main.get_command(app)
    for name, command in getattr(root, "commands", {}).items():
        paths.append([name])
        paths += [[name, sub] for sub in getattr(command, "commands", {})]
    return paths


def help_text(words: list[str]) -> str:
    """What `traceview WORDS --help` prints at a fixed width, trailing blanks removed."""
    result = CliRunner().invoke(app, [*words, "--help"], env=_ENV)
    if result.exit_code != 0:
        raise RuntimeError(f"traceview {' '.join(words)} --help exited {result.exit_code}")
    lines = [_ANSI.sub("", line).rstrip() for line in result.output.splitlines()]
    return "\n".join(lines).strip("\n")


def render_markdown() -> str:
    """docs/cli.md: one section per command with its help text."""
    parts = [
        "# traceview command line reference",
        "",
        "Generated from the `--help` texts by `python -m traceview.clidoc > docs/cli.md`; do not edit by hand.",
    ]
    for words in command_paths():
        parts += ["", f"## `{' '.join(['traceview', *words])}`", "", "```text", help_text(words), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
