"""Hostile query packs: each bad file is a one-line problem naming it, and the other queries still run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import small_kineto_events, write_kineto
from test_packs import write_pack
from typer.testing import CliRunner

from traceview import packs as packs_mod
from traceview import sandbox
from traceview.analysis.analyze import run_analyze
from traceview.cli import app
from traceview.commands.packs import show_pack
from traceview.packs import PackLimits, load_pack, parse_query, set_pack_limits
from traceview.sandbox import drop_shared, format_message, run_pack, run_query, sandboxed_connection
from traceview.store import ingest

GOOD = "SELECT count(*) AS n FROM slices\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real-layout Kineto trace, ingested."""
    tmp = tmp_path_factory.mktemp("hostile")
    trace = write_kineto(tmp / "t.json", small_kineto_events())
    return ingest([trace], tmp / "t.traceview").store


@pytest.fixture
def small_limits() -> PackLimits:
    """Pack limits small enough to reach in a test; the defaults come back afterwards."""
    before = packs_mod.pack_limits()
    yield set_pack_limits(max_file_bytes=4096, max_sql_chars=2000)
    set_pack_limits(**before.__dict__)


def problems_of(pack_dir: Path) -> dict[str, str]:
    """The load problems of a pack's queries, by query name."""
    return {q.name: q.problem for q in load_pack(pack_dir).queries if q.problem}


# -- materialize names -------------------------------------------------------------------------------------------

HOSTILE_NAME = "x; CREATE OR REPLACE VIEW kernels AS SELECT 42 AS hacked; --x"


def test_a_materialize_name_that_is_not_an_identifier_runs_nothing(tmp_path: Path, store: Path) -> None:
    fragment = f"-- materialize: {HOSTILE_NAME}\n{HOSTILE_NAME} AS (\n  SELECT 1 AS n\n)\n"
    pack_dir = write_pack(tmp_path / "p", {"_f.sql": fragment, "q.sql": GOOD})
    pack = load_pack(pack_dir)
    assert pack.shared == []
    assert pack.problems == [f"{pack_dir / '_f.sql'}:1: materialize '{HOSTILE_NAME}': not a name (letters, digits, _)"]
    con = sandboxed_connection(store)
    before = con.sql("SELECT count(*) FROM kernels").fetchall()
    run = run_pack(con, pack, pack.queries)
    drop_shared(con, run.shared)
    assert con.sql("SELECT count(*) FROM kernels").fetchall() == before
    assert run.results[0].error is None


def test_shared_relations_that_read_each_other_fail_alone_and_the_query_still_runs(tmp_path: Path, store: Path) -> None:
    """Two relations whose builds mention each other's tables (here only in comments) recursed forever."""
    pack_dir = write_pack(
        tmp_path / "p",
        {
            "_a.sql": "-- materialize: a\na AS (\n  SELECT 1 AS x -- _shared_b\n)\n",
            "_b.sql": "-- materialize: b\nb AS (\n  SELECT 2 AS y -- _shared_a\n)\n",
            "q.sql": "-- title: q\nWITH\n-- @include _a.sql\n,\n-- @include _b.sql\nSELECT * FROM a, b\n",
        },
    )
    pack = load_pack(pack_dir)
    con = sandboxed_connection(store)
    run = run_pack(con, pack, pack.queries)
    drop_shared(con, run.shared)
    assert sorted(r.error for r in run.shared) == [
        "a: reads itself through ['a', 'b']",
        "b: reads itself through ['a', 'b']",
    ]
    assert run.results[0].error is None
    assert run.results[0].frame is not None and run.results[0].frame.rows() == [(1, 2)]


# -- includes ----------------------------------------------------------------------------------------------------

WITH_FRAGMENT = "-- a WITH and its CTE\nWITH c AS (\n  SELECT 7 AS n\n)\n"


def test_an_include_in_the_header_is_part_of_the_sql(tmp_path: Path, store: Path) -> None:
    pack_dir = write_pack(
        tmp_path / "p",
        {
            "_with.sql": WITH_FRAGMENT,
            "q.sql": "-- title: Included at once\n-- @include _with.sql\nSELECT n FROM c\n",
        },
    )
    query = load_pack(pack_dir).query("q")
    assert query.title == "Included at once"
    result = run_query(sandboxed_connection(store), query)
    assert result.error is None and result.frame.to_dicts() == [{"n": 7}]


def test_nested_includes_stop_at_the_size_limit(tmp_path: Path, small_limits: PackLimits) -> None:
    files = {f"_f{i}.sql": f"-- @include _f{i + 1}.sql\n" * 10 for i in range(3)}
    files["_f3.sql"] = "  SELECT 1 AS n\n"
    files["bomb.sql"] = "WITH x AS (\n-- @include _f0.sql\n)\nSELECT 1\n"
    files["fine.sql"] = GOOD
    pack_dir = write_pack(tmp_path / "p", files)
    problem = problems_of(pack_dir)["bomb"]
    assert problem.startswith(f"{pack_dir / '_f3.sql'}:1: the SQL with its includes is longer than 2000 characters")
    assert load_pack(pack_dir).query("fine").problem is None


def test_includes_nested_too_deeply(tmp_path: Path) -> None:
    files = {f"_f{i}.sql": f"-- @include _f{i + 1}.sql\n" for i in range(7)}
    files["_f7.sql"] = "  SELECT 1\n"
    files["q.sql"] = "WITH x AS (\n-- @include _f0.sql\n)\nSELECT 1\n"
    pack_dir = write_pack(tmp_path / "p", files)
    assert problems_of(pack_dir)["q"] == f"{pack_dir / '_f4.sql'}:1: includes nested deeper than 5 (included by q.sql)"


def test_an_include_cycle_is_one_line(tmp_path: Path) -> None:
    pack_dir = write_pack(
        tmp_path / "p",
        {
            "_a.sql": "-- @include _b.sql\n",
            "_b.sql": "-- @include _a.sql\n",
            "q.sql": "WITH x AS (\n-- @include _a.sql\n)\nSELECT 1\n",
            "fine.sql": GOOD,
        },
    )
    cycle = "include cycle: _a.sql -> _b.sql -> _a.sql (included by q.sql)"
    assert problems_of(pack_dir) == {"q": f"{pack_dir / '_b.sql'}:1: {cycle}"}


# -- files that are not small UTF-8 regular files ----------------------------------------------------------------


def hostile_files(pack_dir: Path) -> dict[str, str]:
    """Writes bad files beside a good query; returns the problem each must give (by query name)."""
    write_pack(pack_dir, {"fine.sql": GOOD})
    os.mkfifo(pack_dir / "fifo.sql")
    (pack_dir / "dir.sql").mkdir()
    (pack_dir / "latin1.sql").write_bytes("SELECT 'caf\u00e9' AS x\n".encode("latin-1"))
    (pack_dir / "utf16.sql").write_bytes("SELECT 1 AS x\n".encode("utf-16"))
    (pack_dir / "utf16le.sql").write_bytes("SELECT 1 AS x\n".encode("utf-16-le"))
    (pack_dir / "huge.sql").write_text("SELECT 1 AS x\n" + "-- padding\n" * 100_000)
    (pack_dir / "escape.sql").symlink_to("/etc/hostname")
    return {
        "fifo": f"{pack_dir / 'fifo.sql'}: not a regular file",
        "dir": f"{pack_dir / 'dir.sql'}: not a regular file",
        "latin1": f"{pack_dir / 'latin1.sql'}: not UTF-8 text (invalid continuation byte at byte 11)",
        "utf16": f"{pack_dir / 'utf16.sql'}: not UTF-8 text (invalid start byte at byte 0)",
        "utf16le": f"{pack_dir / 'utf16le.sql'}: not UTF-8 text (it holds NUL bytes; UTF-16?)",
        "huge": f"{pack_dir / 'huge.sql'}: larger than 1048576 bytes, the limit for a pack file",
        "escape": f"{pack_dir / 'escape.sql'}: a link out of the pack directory",
    }


def test_bad_files_are_problems_and_the_other_queries_still_run(tmp_path: Path, store: Path) -> None:
    expected = hostile_files(tmp_path / "p")
    pack = load_pack(tmp_path / "p")
    assert {q.name: q.problem for q in pack.queries if q.problem} == expected
    run = run_pack(sandboxed_connection(store), pack, pack.queries)
    errors = {r.query.name: r.error for r in run.results}
    assert errors == {**expected, "fine": None}
    assert next(r for r in run.results if r.query.name == "fine").frame.to_dicts() == [{"n": 9}]
    assert "cannot be loaded: " + expected["fifo"] in show_pack(pack)


def test_analyze_reports_bad_files_and_runs_the_rest(tmp_path: Path, store: Path) -> None:
    expected = hostile_files(tmp_path / "p")
    (tmp_path / "p" / "pack.toml").write_text("name = [1, 2]\n")
    report = run_analyze([store], [tmp_path / "p"])
    assert f"{tmp_path / 'p' / 'pack.toml'}: name must be a string, not list" in report.errors
    assert set(expected.values()) <= set(report.errors)
    assert report.result("fine").error is None and report.result("hotspots").error is None


def test_packs_check_lists_each_bad_file(tmp_path: Path) -> None:
    expected = hostile_files(tmp_path / "p")
    result = CliRunner().invoke(app, ["packs", "check", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert sorted(result.stderr.splitlines()) == sorted(expected.values())


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ("name = \n", "not TOML: Invalid value (at line 1, column 8)"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "not TOML: "),
        ("version = 1.5\nname = {a = 1}\n", "name must be a string, not dict"),
        ("description = true\n", "description must be a string, not bool"),
        (f'description = "{"x" * 2000}"\n', "description longer than 1000 characters"),
        ("x = 1\n" + "#" * (1 << 20), "larger than 1048576 bytes, the limit for a pack file"),
        (b"name = '\xff'\n", "not UTF-8 text (invalid start byte at byte 8)"),
    ],
)
def test_a_bad_pack_toml_is_a_problem_and_the_queries_still_load(tmp_path: Path, toml: str | bytes, problem: str):
    pack_dir = write_pack(tmp_path / "p", {"q.sql": GOOD})
    toml_path = pack_dir / "pack.toml"
    toml_path.write_bytes(toml if isinstance(toml, bytes) else toml.encode())
    pack = load_pack(pack_dir)
    assert len(pack.problems) == 1 and pack.problems[0].startswith(f"{toml_path}: {problem}")
    assert pack.name == "p" and pack.query("q").problem is None


# -- parameters ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("-- param: top INTEGER 99999999999", "param top default '99999999999' is not INTEGER (99999999999 is out"),
        ("-- param: top BIGINT 1" + "0" * 30, f"param top default '1{'0' * 30}' is not BIGINT (1{'0' * 30} is out of"),
        ("-- param: top INTEGER " + "9" * 5000, "param top default '" + "9" * 5000 + "' is not INTEGER (Exceeds"),
    ],
)
def test_hostile_param_defaults_are_problems(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.sql"
    path.write_text(f"{line}\nSELECT $top AS top\n")
    pack = load_pack(tmp_path)
    assert pack.query("q").problem.startswith(f"{path}:1: {message}")


def test_hostile_param_values_and_undeclared_params_are_query_errors(tmp_path: Path, store: Path) -> None:
    pack = load_pack(
        write_pack(
            tmp_path / "p",
            {
                "a.sql": "-- param: top BIGINT 5\nSELECT $top AS top\n",
                "b.sql": "SELECT $nobody AS x\n",
            },
        )
    )
    con = sandboxed_connection(store)
    huge = run_query(con, pack.query("a"), {"top": "9" * 40})
    assert huge.frame is None and huge.error == f"{tmp_path / 'p' / 'a.sql'}: {'9' * 40} is out of the range of BIGINT"
    undeclared = run_query(con, pack.query("b"))
    assert undeclared.error == f"{tmp_path / 'p' / 'b.sql'}: uses $nobody but declares no such param"


# -- what the SQL may do --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM duckdb_settings()", "calls duckdb_settings(): not available to pack queries"),
        ("SELECT current_setting('temp_directory') AS t", "calls current_setting(): not available to pack queries"),
        ("SELECT getenv('HOME') AS h", "calls getenv(): not available"),
        ("SELECT * FROM glob('{store}/*')", "calls glob(): pack queries may call only"),
        ("SELECT * FROM read_parquet('{store}/slices/*.parquet')", "calls read_parquet(): pack queries may call only"),
        ("SELECT * FROM read_blob('{store}/manifest.json')", "calls read_blob(): pack queries may call only"),
        ("SELECT * FROM parquet_metadata('{store}/slices/x.parquet')", "calls parquet_metadata(): pack queries"),
        ("SELECT * FROM sniff_csv('{store}/manifest.json')", "calls sniff_csv(): pack queries may call only"),
        ("SELECT * FROM query('SELECT * FROM duckdb_settings()')", "calls query(): pack queries may call only"),
        ("SELECT sql FROM duckdb_views", "reads duckdb_views: pack queries read only the trace model's tables"),
        ("SELECT * FROM information_schema.views", "reads views: pack queries read only the trace model's"),
        ("SELECT * FROM system.main.duckdb_settings", "reads duckdb_settings: pack queries read only"),
        ("SELECT * FROM sqlite_master", "reads sqlite_master: pack queries read only"),
        ("SHOW allowed_directories", "SHOW, DESCRIBE and SUMMARIZE are not available to pack queries"),
        ("SELECT * FROM (SHOW temp_directory)", "SHOW, DESCRIBE and SUMMARIZE are not available"),
        ("DESCRIBE slices", "SHOW, DESCRIBE and SUMMARIZE are not available"),
        ("SUMMARIZE slices", "SHOW, DESCRIBE and SUMMARIZE are not available"),
        ("SELECT * FROM '{store}/manifest.json'", "/manifest.json': pack queries read only the trace model's"),
        ('SELECT * FROM "{store}/slices/x.parquet"', "/slices/x.parquet': pack queries read only"),
        ("SELECT pg_get_viewdef('slices') AS v", "calls pg_get_viewdef(): not available"),
        ("SELECT n FROM (SELECT 1 AS n) WHERE n IN (SELECT 1 FROM duckdb_databases())", "calls duckdb_databases()"),
        ("SELECT 1 AS n; DROP VIEW slices", "expected one statement, found 2"),
        ("PRAGMA database_list", "only SELECT queries may run, found PRAGMA"),
        ("CALL pragma_version()", "only SELECT queries may run, found CALL"),
        ("EXPORT DATABASE '/tmp/traceview-export'", "only SELECT queries may run, found EXPORT"),
        ("COPY slices TO '/tmp/traceview-copy.csv'", "only SELECT queries may run, found COPY"),
        ("SELECT * FROM (PIVOT slices ON kind USING count(*))", "only SELECT queries may run, found MULTI"),
        ("SELECT " + "(" * 3000 + "1" + ")" * 3000 + " AS deep", "Parser Error"),
    ],
)
def test_pack_sql_sees_only_the_model(tmp_path: Path, store: Path, sql: str, message: str) -> None:
    path = tmp_path / "evil.sql"
    path.write_text(sql.replace("{store}", str(store)) + "\n")
    result = run_query(sandboxed_connection(store), parse_query(path))
    assert result.frame is None and result.error.startswith(f"{path}: ")
    assert message in result.error
    assert not Path("/tmp/traceview-export").exists() and not Path("/tmp/traceview-copy.csv").exists()


def test_a_query_too_deep_to_check_is_refused_not_crashed(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "deep.sql"
    path.write_text("SELECT " + "abs(" * 600 + "1" + ")" * 600 + " AS deep\n")
    result = run_query(sandboxed_connection(store), parse_query(path))
    assert result.error == f"{path}: nested too deeply to check (a few hundred levels at most)"


def test_a_finding_condition_cannot_read_the_settings(tmp_path: Path, store: Path) -> None:
    pack_dir = write_pack(
        tmp_path / "p",
        {
            "q.sql": "-- finding: n IN (SELECT 9 FROM duckdb_settings()) => info: {n}\nSELECT 1 AS n",
        },
    )
    result = run_query(sandboxed_connection(store), load_pack(pack_dir).query("q"))
    hidden = "calls duckdb_settings(): not available to pack queries (it shows settings or the catalog)"
    assert result.error == f"{pack_dir / 'q.sql'}:1: finding condition: {hidden}"


def test_a_recursive_cte_that_never_ends_times_out(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "forever.sql"
    path.write_text("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) AS n FROM r\n")
    result = run_query(sandboxed_connection(store), parse_query(path), limit_s=1.0)
    assert result.timed_out or "Out of Memory" in result.error


def test_control_characters_in_a_title_do_not_crash(tmp_path: Path) -> None:
    pack_dir = write_pack(tmp_path / "p", {"q.sql": "-- title: a\x1b[2J\x07b\x00c\nSELECT 1 AS n\n"})
    assert problems_of(pack_dir) == {"q": f"{pack_dir / 'q.sql'}: not UTF-8 text (it holds NUL bytes; UTF-16?)"}
    (pack_dir / "q.sql").write_text("-- title: a\x1b[2J\x07b\x7fc\nSELECT 1 AS n\n")
    assert "q: a\x1b[2J\x07b\x7fc" in show_pack(load_pack(pack_dir))


# -- resource limits -------------------------------------------------------------------------------------------


def test_the_sandbox_limits_memory_and_spills_to_a_private_directory(store: Path, monkeypatch) -> None:
    con = sandboxed_connection(store)
    (limit,) = con.sql("SELECT current_setting('memory_limit')").fetchall()[0]
    expected = sandbox.memory_limit_bytes()
    assert expected == int(sandbox._memory_bytes() * sandbox.DEFAULT_MEMORY_SHARE)
    assert abs(_duckdb_size(limit) - expected) <= expected / 100
    (spill,) = con.sql("SELECT current_setting('temp_directory')").fetchall()[0]
    spill_dir = Path(spill).parent
    assert spill_dir.name.startswith("traceview-spill-") and spill_dir.is_dir()
    assert spill_dir.stat().st_mode & 0o077 == 0
    con.close()
    del con
    assert not spill_dir.exists()  # removed with its connection
    monkeypatch.setenv(sandbox.ENV_MEMORY_LIMIT, "300MiB")
    assert sandbox.memory_limit_bytes() == 300 << 20
    small = sandboxed_connection(store)
    assert small.sql("SELECT current_setting('memory_limit')").fetchall() == [("300.0 MiB",)]
    monkeypatch.setenv(sandbox.ENV_MEMORY_LIMIT, "10%")
    assert sandbox.memory_limit_bytes() == int(sandbox._memory_bytes() * 0.1)


def _duckdb_size(text: str) -> int:
    number, unit = text.split()
    return int(float(number) * 1024 ** ("B KiB MiB GiB TiB".split().index(unit)))


def test_a_query_past_the_memory_limit_fails_alone(tmp_path: Path, store: Path, monkeypatch) -> None:
    monkeypatch.setenv(sandbox.ENV_MEMORY_LIMIT, "40MB")
    pack = load_pack(
        write_pack(
            tmp_path / "p",
            {
                "a_hog.sql": "SELECT list(range) AS l FROM range(100000000)\n",
                "b_fine.sql": GOOD,
            },
        )
    )
    run = run_pack(sandboxed_connection(store), pack, pack.queries)
    assert "Out of Memory Error" in run.results[0].error
    assert run.results[1].error is None


def test_finding_messages_are_bounded() -> None:
    assert format_message("{n:>1500000000}", {"n": 1}) == "1"
    assert format_message("{x:.999999999f}", {"x": 0.5}) == "0.5"
    assert format_message("{n:>100}", {"n": 1}) == " " * 99 + "1"
    long = format_message("{s}{s}", {"s": "y" * 5000})
    assert len(long) == sandbox.MAX_MESSAGE_CHARS and long.endswith("…")


def test_a_finding_message_template_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text("-- finding: n > 0 => info: " + "[{n}" * 1000 + "\nSELECT 1 AS n\n")
    assert problems_of(tmp_path) == {"q": f"{path}:1: finding message longer than 1000 characters"}


def test_a_result_past_the_memory_limit_fails_alone(tmp_path: Path, store: Path, monkeypatch) -> None:
    monkeypatch.setenv(sandbox.ENV_MEMORY_LIMIT, "8MB")
    rows = "SELECT range AS r FROM range(2000000)\n"
    pack = load_pack(write_pack(tmp_path / "p", {"a_rows.sql": rows, "b.sql": GOOD}))
    run = run_pack(sandboxed_connection(store), pack, pack.queries)
    too_large = "its result is larger than 8000000 bytes, the memory limit for pack queries"
    assert run.results[0].error == f"{tmp_path / 'p' / 'a_rows.sql'}: {too_large}"
    assert run.results[1].error is None


def test_includes_of_empty_fragments_count_towards_the_size_limit(tmp_path: Path, small_limits: PackLimits) -> None:
    files = {f"_f{i}.sql": f"-- @include _f{i + 1}.sql\n" * 40 for i in range(4)}
    files["_f4.sql"] = ""
    files["bomb.sql"] = "SELECT 1 AS n\n-- @include _f0.sql\n"
    pack_dir = write_pack(tmp_path / "p", files)
    assert "the SQL with its includes is longer than 2000 characters" in problems_of(pack_dir)["bomb"]
