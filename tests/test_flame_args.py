"""Arguments that cannot be right are refused up front: `flame --step N` for a step the traces do not have,
`--peak-bw` that is not a positive number of GB/s. One `Error: ...` line on stderr, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_kineto, x_event
from typer.testing import CliRunner

from traceview.analysis import flame
from traceview.cli import app

runner = CliRunner()


def _trace(path: Path, steps: list[int]) -> Path:
    events = []
    for i, step in enumerate(steps):
        events.append(x_event(f"ProfilerStep#{step}", i * 1000, 900, cat="user_annotation"))
        events.append(x_event("aten::mm", i * 1000 + 10, 100))
    if not steps:
        events.append(x_event("aten::mm", 10, 100))
    return write_kineto(path, events)


def _flame(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["flame", *args, "--cache-dir", str(tmp_path / "cache")])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("steps", "asked", "message"),
    [
        ([1, 2, 3, 4], "9", "the trace has steps 1-4"),
        ([1, 2, 3, 4], "0", "the trace has steps 1-4"),
        ([1, 2, 3, 5, 7, 8], "4", "the trace has steps 1-3, 5, 7-8"),
        ([], "1", "the trace has no steps (no ProfilerStep#N)"),
    ],
)
def test_flame_refuses_a_step_the_trace_does_not_have(
    tmp_path: Path, steps: list[int], asked: str, message: str
) -> None:
    trace = _trace(tmp_path / "t.pt.trace.json", steps)
    code, out, err = _flame(tmp_path, str(trace), "--step", asked)
    assert (code, out, err) == (2, "", f"Error: --step {asked}: {message}\n")


def test_flame_names_the_steps_of_all_the_traces(tmp_path: Path) -> None:
    one = _trace(tmp_path / "a.pt.trace.json", [1, 2])
    two = _trace(tmp_path / "b.pt.trace.json", [3, 4])
    code, out, err = _flame(tmp_path, str(one), str(two), "--step", "5", "--weight", "device")
    assert (code, out, err) == (2, "", "Error: --step 5: the traces have steps 1-4\n")
    code, out, _ = _flame(tmp_path, str(one), str(two), "--step", "3")
    assert code == 0 and out.startswith("wall: 0.900 ms")


def test_many_runs_of_steps_are_elided_in_the_middle() -> None:
    steps = list(range(1, 40, 2))  # 20 runs of one step each
    assert flame._step_ranges(steps) == "1, 3, 5, 7, ..., 39"


@pytest.mark.parametrize("command", ["analyze", "throughput"])
@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("-900", "-900"), ("nan", "nan"), ("inf", "inf")])
def test_peak_bw_must_be_a_positive_number(tmp_path: Path, command: str, value: str, shown: str) -> None:
    trace = _trace(tmp_path / "t.pt.trace.json", [1])
    result = runner.invoke(app, [command, str(trace), "--peak-bw", value, "--cache-dir", str(tmp_path / "cache")])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"Error: --peak-bw {shown}: must be a positive number of GB/s\n"
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_a_positive_peak_bw_is_taken(tmp_path: Path) -> None:
    trace = _trace(tmp_path / "t.pt.trace.json", [1])
    result = runner.invoke(app, ["throughput", str(trace), "--peak-bw", "0.5", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
