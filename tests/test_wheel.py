"""The built wheel: one top-level import package, `traceview`, with its parsers, packs and the demo's sample.

The wheel is built from this checkout (hatchling, no build isolation: no network) and unpacked into a fresh
folder; the demo then runs from there in a Python that cannot see the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (built,) = out.glob("traceview-*.whl")
    return built


def test_the_wheel_has_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"traceview"}
    for needed in (
        "traceview/parsers/chrome.py",
        "traceview/parsers/ascend/__init__.py",
        "traceview/queries/core/_family_rules.sql",
        "traceview/demo_sample/longctx_h200.pt.trace.json.gz",
        "traceview/py.typed",
    ):
        assert needed in names
    assert not [name for name in names if "__pycache__" in name]


def test_the_demo_runs_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    out = tmp_path / "demo out"
    # -I: no user site, no PYTHONPATH, no current folder on sys.path; -c puts the unpacked wheel first,
    # so the checkout's traceview (installed editable in this venv) cannot be the one imported.
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import runpy, traceview;"
        f"assert traceview.__file__.startswith({str(site)!r}), traceview.__file__;"
        f"import traceview.parsers; assert traceview.parsers.__file__.startswith({str(site)!r});"
        f"sys.argv = ['demo', {str(out)!r}]; runpy.run_module('traceview.demo', run_name='__main__')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEVIEW_")}
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "report.json").stat().st_size > 1_000
    assert "Reports:" in proc.stdout
