"""The traceview version, in a module of its own so that any layer can read it without importing the public API.

It comes from the installed distribution's metadata; a source checkout that is not installed reads it from
pyproject.toml, the one place the version is written.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "traceview"
UNKNOWN_VERSION = "0+unknown"
_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def read_version() -> str:
    """The version of the installed distribution, else the one in the source tree's pyproject.toml."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return _pyproject_version(_PYPROJECT)


def _pyproject_version(pyproject: Path) -> str:
    try:
        with open(pyproject, "rb") as file:
            version = tomllib.load(file).get("project", {}).get("version")
    except (OSError, tomllib.TOMLDecodeError):
        return UNKNOWN_VERSION
    return version if isinstance(version, str) else UNKNOWN_VERSION


__version__ = read_version()
