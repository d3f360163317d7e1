"""Stores and traces whose paths hold glob characters are read as named, never as patterns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import small_kineto_events, write_kineto
from typer.testing import CliRunner

from traceview.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("name", "decoy_name"),
    [
        ("run[1].traceview", "run1.traceview"),
        ("a*b.traceview", "axyb.traceview"),
        ("what?.traceview", "whatZ.traceview"),
        ("x[!y].traceview", "xz.traceview"),
    ],
)
def test_store_named_like_a_glob(tmp_path: Path, name: str, decoy_name: str) -> None:
    trace = write_kineto(tmp_path / "t.json", small_kineto_events())
    # a sibling the pattern would also match, with different rows
    decoy = write_kineto(tmp_path / "decoy.json", small_kineto_events(12))
    assert runner.invoke(app, ["ingest", str(trace), "-o", str(tmp_path / name)]).exit_code == 0
    assert runner.invoke(app, ["ingest", str(decoy), "-o", str(tmp_path / decoy_name)]).exit_code == 0
    assert runner.invoke(app, ["ingest", str(trace), "-o", str(tmp_path / "plain.traceview")]).exit_code == 0
    counts = []
    for store in (name, decoy_name, "plain.traceview"):
        result = runner.invoke(app, ["query", str(tmp_path / store), "select count(*) as n from slices", "-f", "csv"])
        assert result.exit_code == 0, result.output
        counts.append(result.output)
    assert counts[0] == counts[2] != counts[1]


def test_raw_trace_named_like_a_glob(tmp_path: Path) -> None:
    trace = write_kineto(tmp_path / "rank[0].json", small_kineto_events())
    cache = tmp_path / "cache"
    result = runner.invoke(
        app, ["query", str(trace), "select count(*) as n from traces", "-f", "csv", "--cache-dir", str(cache)]
    )
    assert result.exit_code == 0, result.output
    assert result.output == "n\n1\n"


def test_rank_in_a_file_name_past_int32_is_no_rank(tmp_path: Path) -> None:
    trace = write_kineto(tmp_path / "rank99999999999999999999.json", small_kineto_events())
    out = tmp_path / "s.traceview"
    result = runner.invoke(app, ["ingest", str(trace), "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["query", str(out), "select rank from traces", "-f", "csv"])
    assert result.output == "rank\n0\n"


def test_types_polars_cannot_take_are_shown_as_text(tmp_path: Path) -> None:
    trace = write_kineto(tmp_path / "t.json", small_kineto_events())
    sql = (
        "select interval 1 day as x, 340282366920938463463374607431768211455::uhugeint as u,"
        " sum(dur_ns) as s from slices"
    )
    result = runner.invoke(app, ["query", str(trace), sql, "-f", "json", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    assert row["x"] == "1 day" and row["u"] == "340282366920938463463374607431768211455"
    assert isinstance(row["s"], int)  # a HUGEINT sum stays a number
