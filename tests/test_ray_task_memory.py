"""The memory settings of a Ray ingest task (traceview.ray_engine); no Ray needed, the task's body runs here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from traceview import ray_engine
from traceview.store import Unit


@pytest.fixture
def default_pool() -> Iterator[None]:
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


@pytest.mark.parametrize("large", [True, False], ids=["large", "small"])
def test_an_ingest_task_picks_arrows_pool_by_size_and_releases_it(
    default_pool: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, large: bool
) -> None:
    """malloc's pool from SYSTEM_POOL_MIN_BYTES of input on, pyarrow's own below, whichever pool the worker's
    previous unit left; memory released after every unit."""
    seen: list[str] = []
    released: list[bool] = []

    def parse(unit: Unit, staging: Path, hasher: object, threads: int | None, memory: int | None) -> dict:
        seen.append(pa.default_memory_pool().backend_name)
        return {"entry": {}}

    monkeypatch.setattr(ray_engine, "ingest_unit", parse)
    monkeypatch.setattr(ray_engine, "task_cpus", lambda: 1)
    monkeypatch.setattr(ray_engine, "parser_memory_bytes", lambda: None)
    monkeypatch.setattr(ray_engine, "release_task_memory", lambda: released.append(True))
    pyarrows = ray_engine._PYARROW_POOL.backend_name
    assert pyarrows != "system"
    size = ray_engine.SYSTEM_POOL_MIN_BYTES - (0 if large else 1)
    unit = Unit(tmp_path / "rank0.json", "kineto", True, "t0")
    for previous in (ray_engine._PYARROW_POOL, pa.system_memory_pool()):
        pa.set_memory_pool(previous)
        outcomes = ray_engine._ingest_batch([unit], [size], str(tmp_path), ray_engine._ingest_task)
        assert outcomes == [{"entry": {}}]
    expected = "system" if large else pyarrows
    assert (seen, released) == ([expected, expected], [True, True])


def test_a_failed_task_releases_its_memory_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    released: list[bool] = []

    def parse(*args: object, **kwargs: object) -> dict:
        raise RuntimeError("boom")

    monkeypatch.setattr(ray_engine, "ingest_unit", parse)
    monkeypatch.setattr(ray_engine, "task_cpus", lambda: 1)
    monkeypatch.setattr(ray_engine, "parser_memory_bytes", lambda: None)
    monkeypatch.setattr(ray_engine, "use_task_memory_pool", lambda size: None)
    monkeypatch.setattr(ray_engine, "release_task_memory", lambda: released.append(True))
    unit = Unit(tmp_path / "rank0.json", "kineto", True, "t0")
    (outcome,) = ray_engine._ingest_batch([unit], [0], str(tmp_path), ray_engine._ingest_task)
    assert outcome["failed"]["error"] == "internal error (RuntimeError: boom)" and released == [True]


def test_release_task_memory_runs_outside_ray() -> None:
    ray_engine.release_task_memory()  # malloc_trim through Arrow's system pool; a no-op where there is none
