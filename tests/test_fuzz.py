"""Mutation fuzzing: damaged real traces end in a result or one `Error:` line, and touch nothing else.

Each case (see `fuzz_mutations`) mutates a small real trace or dump from the shared corpus or
sample_traces/, then runs `traceview ingest` (or `analyze --json`) on it in-process. Per case: exit code 0
or 2; no traceback or internal error; on 2 exactly one `Error: ` line; the input files byte-identical and
no file added beside them; nothing left in the output, working or temp directories but what was asked
for. A watchdog fails a case that runs past FUZZ_CASE_TIMEOUT seconds (default 15).

FUZZ_CASES (default 300) and FUZZ_SEED (the first case seed, default 0) pick other cases; a failing case
is rebuilt (and rerun) with `python -m tests.fuzz_mutations --case '<its test id>' --out DIR --run`.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fuzz_mutations import (
    CORPUS,
    DEFAULT_CASES,
    Case,
    applicable_mutations,
    available_seeds,
    build_case,
    plan_cases,
    run_case,
    snapshot,
)
from typer.testing import Result

CASE_TIMEOUT_S = float(os.environ.get("FUZZ_CASE_TIMEOUT", "15"))
CASES = plan_cases(int(os.environ.get("FUZZ_CASES", DEFAULT_CASES)), int(os.environ.get("FUZZ_SEED", "0")))
ALLOWED_OUTPUTS = {"ingest": {"store"}, "analyze": {"cache", "report.json"}}


class CaseTimeout(BaseException):
    """Raised in the test by the watchdog; a BaseException so that the CLI's error mapping lets it through."""


@contextmanager
def watchdog(seconds: float, label: str) -> Iterator[None]:
    """Fail the case after `seconds`; if Python code never runs again (a hang in C), dump stacks and exit."""

    def on_alarm(signum: int, frame: object) -> None:
        raise CaseTimeout(f"{label}: still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(seconds * 3, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


def _staging_left(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.name.endswith(".tmp"))


def _describe(case: Case, note: str, result: Result) -> str:
    return (
        f"{case.id} ({note}); reproduce: python -m tests.fuzz_mutations --case '{case.id}' --out DIR --run\n"
        f"exit {result.exit_code}, output:\n{result.output[-3000:]}"
    )


def test_the_corpus_seeds_are_there() -> None:
    """The corpus seeds run where the corpus is; without it only sample_traces/ seeds run (CI=true: a failure)."""
    if not CORPUS.is_dir():
        message = f"corpus not found at {CORPUS}: the fuzz test ran on sample_traces/ seeds only"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert any(not case.seed_name.startswith("sample_traces/") for case in CASES)


def test_the_default_plan_covers_every_mutation_of_every_seed() -> None:
    """DEFAULT_CASES is enough to try each mutation on each seed once."""
    planned = {(case.seed_name, case.mutation) for case in plan_cases(DEFAULT_CASES)}
    assert planned == {(seed, mutation) for seed in available_seeds() for mutation in applicable_mutations(seed)}


def test_a_case_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    """Building a case twice writes the same input (what the reproduction helper relies on), for each mutation."""
    first_of_each = {case.mutation: case for case in reversed(CASES)}
    for case in first_of_each.values():
        once, twice = tmp_path / f"{case.case_seed}-1", tmp_path / f"{case.case_seed}-2"
        build_case(case, once)
        build_case(case, twice)
        assert snapshot(once) == snapshot(twice), case.id


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_mutated_input_ends_cleanly(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 0 or 2 with one `Error:` line; inputs untouched; nothing written but what was asked for."""
    inputs, out, cwd, system_tmp = (tmp_path / name for name in ("in", "out", "cwd", "tmp"))
    for folder in (out, cwd, system_tmp):
        folder.mkdir()
    target, note = build_case(case, inputs)
    before = snapshot(inputs)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    with watchdog(CASE_TIMEOUT_S, case.id):
        result = run_case(case, target, out)

    about = _describe(case, note, result)
    assert result.exit_code in (0, 2), about
    assert "Traceback" not in result.output and "internal error" not in result.output, about
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if not line.startswith("Warning: ")]
        assert len(errors) == 1 and errors[0].startswith("Error: "), about
    assert snapshot(inputs) == before, f"the input changed or got company: {about}"
    assert {p.name for p in out.iterdir()} <= ALLOWED_OUTPUTS[case.command], about
    assert _staging_left(out) == [], about
    assert list(cwd.iterdir()) == [] and list(system_tmp.iterdir()) == [], about
