"""The CLI's contract: one JSON writer, exit codes (0 ok, 1 gate, 2 bad input, 3 bug), output paths ('-' = stdout)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import small_kineto_events, write_kineto
from typer.testing import CliRunner

from traceview import jsonify
from traceview.cli import app
from traceview.errors import UserError

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_traces" / "runtime_v1" / "runtime_v1.pt.trace.json.gz"
SAMPLE_V2 = ROOT / "sample_traces" / "runtime_v2" / "runtime_v2.pt.trace.json.gz"
BUG = (
    "Error: internal error (RuntimeError: boom); this is a bug in traceview, rerun with --debug"
    " (or TRACEVIEW_DEBUG=1) to see the traceback\n"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One cache of the two samples' stores for the whole module."""
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    return write_kineto(tmp_path / "small.json", small_kineto_events(3))


def invoke(*args: object, **kwargs: object):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------------------
# The JSON writer.


def test_query_json_writes_nan_as_null(cache: str) -> None:
    result = invoke("query", SAMPLE, "select 0.0/0.0 as x", "--format", "json", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert result.stdout == '[{"x":null}]\n'


def test_query_json_numbers_stay_exact(cache: str) -> None:
    sql = (
        "select ('1'::hugeint << 100) as h, 18446744073709551615::ubigint as u64,"
        " 12345678901234567890123456789.123456789::decimal(38,9) as big, 1.10::decimal(10,2) as d,"
        " 2.00::decimal(5,2) as i, 'inf'::double as inf, '-inf'::double as ninf, [1.5, 'nan'::double] as l,"
        " {'a': 0.0/0.0} as s, date '2024-01-02' as day, timestamp '2024-01-02 03:04:05.123456' as ts"
    )
    result = invoke("query", SAMPLE, sql, "-f", "json", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        '[{"h":1267650600228229401496703205376,"u64":18446744073709551615,'
        '"big":12345678901234567890123456789.123456789,"d":1.1,"i":2,"inf":null,"ninf":null,"l":[1.5,null],'
        '"s":{"a":null},"day":"2024-01-02","ts":"2024-01-02T03:04:05.123456"}]\n'
    )
    big = json.loads(result.stdout, parse_float=Decimal)[0]["big"]
    assert big == Decimal("12345678901234567890123456789.123456789")


def test_query_csv_nested_cells_use_the_writer(cache: str) -> None:
    result = invoke("query", SAMPLE, "select [0.0/0.0, 1.0] as l", "-f", "csv", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert result.stdout == 'l\n"[null,1.0]"\n'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (float("nan"), "null"),
        ([float("inf"), -float("inf")], "[null,null]"),
        (np.float64("nan"), "null"),
        (np.array([1.0, np.nan]), "[1.0,null]"),
        (Decimal("NaN"), "null"),
        (Decimal("-Infinity"), "null"),
        (Decimal("1.00"), "1"),
        (Decimal("0.10"), "0.1"),
        (Decimal("1.50E-9"), "1.50E-9"),
        (Decimal("1" * 40), "1" * 40),
        (2**200, str(2**200)),
        ([-(2**63) - 1, 2**64], f"[{-(2**63) - 1},{2**64}]"),
        ({1: "a"}, '{"1":"a"}'),
        (pl.Series([2**70], dtype=pl.Int128), f"[{2**70}]"),
    ],
)
def test_writer_values(value: object, text: str) -> None:
    assert jsonify.dumps(value) == text


def test_writer_keeps_a_lone_surrogate_as_an_escape() -> None:
    name = "run_\udcff.json"  # a file name that is not UTF-8, as os.fsdecode gives it
    text = jsonify.dumps({"path": name, "big": 2**65})
    assert json.loads(text) == {"path": name, "big": 2**65}


def test_writer_refuses_nesting_past_its_limit() -> None:
    value: list = []
    for _ in range(jsonify.MAX_DEPTH):
        value = [value]
    with pytest.raises(UserError, match=r"^the data is nested more than 254 levels deep; JSON output refuses it$"):
        jsonify.dumps(value)
    assert jsonify.dumps(value[0]).startswith("[[")


def test_writer_indented_output_ends_in_a_newline() -> None:
    assert jsonify.dumps({"a": [1]}, indent=True) == '{\n  "a": [\n    1\n  ]\n}\n'


# ---------------------------------------------------------------------------------------------
# Exit codes.


def test_internal_error_exits_3_with_one_line(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("traceview.commands.query.open_target", boom)
    result = invoke("query", small, "select 1", "--cache-dir", tmp_path / "c")
    assert result.exit_code == 3
    assert result.stderr == BUG
    assert result.stdout == ""


@pytest.mark.parametrize(("option", "env"), [(["--debug"], {}), ([], {"TRACEVIEW_DEBUG": "1"})])
def test_debug_shows_the_traceback(
    option: list[str], env: dict[str, str], small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("traceview.commands.query.open_target", boom)
    result = invoke(*option, "query", small, "select 1", "--cache-dir", tmp_path / "c", env=env)
    assert result.exit_code == 3
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.endswith("RuntimeError: boom\n")


def test_bad_input_exits_2(tmp_path: Path) -> None:
    result = invoke("query", tmp_path / "missing.json", "select 1")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {tmp_path / 'missing.json'}")
    assert len(result.stderr.splitlines()) == 1


def test_usage_error_exits_2() -> None:
    result = invoke("query", "--no-such-option")
    assert result.exit_code == 2


def test_packs_check_problems_exit_2(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.toml").write_text('name = "p"\nversion = "1"\ndescription = "x"\n')
    (pack / "q.sql").write_text("SELECT * FROM nowhere\n")
    result = invoke("packs", "check", pack)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{pack / 'q.sql'}:1: Catalog Error: Table with name nowhere does not exist")


def test_a_tripped_gate_exits_1(cache: str, tmp_path: Path) -> None:
    result = invoke("diff", SAMPLE, SAMPLE_V2, "--fail-on", "step_time>-100%", "--cache-dir", cache)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1].startswith("Gate failed: step_time>-100%: ")


# ---------------------------------------------------------------------------------------------
# Output paths.


def test_analyze_json_dash_prints_only_the_report_json(cache: str, tmp_path: Path) -> None:
    to_file = invoke("analyze", SAMPLE, "--json", tmp_path / "r.json", "--cache-dir", cache)
    assert to_file.exit_code == 0, to_file.output
    result = invoke("analyze", SAMPLE, "--json", "-", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((tmp_path / "r.json").read_text())
    assert result.stdout == (tmp_path / "r.json").read_text()
    assert "JSON report" not in result.stderr


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["analyze", SAMPLE], "--html"),
        (["throughput", SAMPLE], "--json"),
        (["throughput", SAMPLE], "--html"),
        (["flame", SAMPLE], "--html"),
        (["flame", SAMPLE], "--folded"),
        (["diff", SAMPLE, SAMPLE_V2], "--json"),
        (["diff", SAMPLE, SAMPLE_V2], "--html"),
        (["query", SAMPLE, "select 1 as one"], "-o"),
    ],
)
def test_dash_is_stdout_for_every_output(
    command: list[object], option: str, cache: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(*command, option, "-", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert entries(tmp_path) == []  # no file named '-'
    if option == "--html":
        assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.rstrip().endswith("</html>")
    elif option == "--json":
        assert isinstance(json.loads(result.stdout), dict)
    elif option == "--folded":
        assert result.stdout and all(line.rsplit(" ", 1)[1].isdigit() for line in result.stdout.splitlines())
    else:
        assert "one" in result.stdout


@pytest.mark.parametrize("command", [["analyze"], ["throughput"], ["flame"], ["diff", SAMPLE]])
def test_output_into_a_missing_directory_exits_2_and_creates_nothing(
    command: list[object], cache: str, tmp_path: Path
) -> None:
    out = tmp_path / "no" / "such" / "r.html"
    result = invoke(*command, SAMPLE, "--html", out, "--cache-dir", cache)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {out}: cannot be written: the directory {out.parent} does not exist\n"
    assert result.stdout == ""  # refused before any work
    assert entries(tmp_path) == []


def test_output_under_a_file_exits_2(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "small.json" / "r.csv"
    result = invoke("query", small, "select 1", "-o", out, "--cache-dir", tmp_path / "c")
    assert result.exit_code == 2
    assert result.stderr == f"Error: {out}: cannot be written: {small} is not a directory\n"


def test_only_one_output_on_stdout(small: Path, tmp_path: Path) -> None:
    result = invoke("flame", small, "--folded", "-", "--html", "-", "--cache-dir", tmp_path / "c")
    assert result.exit_code == 2
    assert result.stderr == "Error: only one output can be '-' (stdout)\n"


def test_a_store_is_not_written_to_stdout(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("ingest", small, "-o", "-")
    assert result.exit_code == 2
    assert result.stderr == "Error: -o -: a store is a directory and cannot be written to stdout\n"
    assert entries(tmp_path) == ["small.json"]
