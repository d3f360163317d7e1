"""The version is written once (pyproject.toml) and read from the package metadata; `py.typed` ships."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import traceview
from traceview import _version

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)


def test_version_is_written_only_in_pyproject() -> None:
    version = _pyproject()["project"]["version"]
    assert traceview.__version__ == version
    assert version not in Path(_version.__file__).read_text()


def test_version_comes_from_the_installed_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "version", lambda name: "9.8.7" if name == "traceview" else "")
    assert _version.read_version() == "9.8.7"


def test_a_source_tree_that_is_not_installed_reads_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert _version.read_version() == _pyproject()["project"]["version"]


def test_an_unreadable_pyproject_gives_an_unknown_version(tmp_path: Path) -> None:
    assert _version._pyproject_version(tmp_path / "missing.toml") == "0+unknown"
    (tmp_path / "bad.toml").write_text("[project\n")
    assert _version._pyproject_version(tmp_path / "bad.toml") == "0+unknown"


def test_the_package_is_marked_typed() -> None:
    assert (Path(traceview.__file__).parent / "py.typed").is_file()
