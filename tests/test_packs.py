"""Query packs: header parsing, bound parameters, the read-only sandbox, packs list/show/check."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from conftest import small_kineto_events, write_kineto
from typer.testing import CliRunner

from traceview.cli import app
from traceview.commands.packs import check_pack, empty_store
from traceview.packs import PackError, builtin_packs, load_pack, parse_query, with_shared
from traceview.sandbox import (
    drop_shared,
    format_message,
    materialize_shared,
    run_pack,
    run_query,
    sandboxed_connection,
)
from traceview.store import ingest

CORE_QUERIES = {
    "hotspots",
    "launch_gaps",
    "busy_breakdown",
    "bandwidth",
    "kv_cache",
    "phases",
    "spikes",
    "fusion_candidates",
    "aicpu_fallback",
    "format_conversion",
    "dynamic_shape",
}


def write_pack(directory: Path, files: dict[str, str], toml: str | None = None) -> Path:
    """A pack directory holding `files` (name -> text)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip())
    if toml is not None:
        (directory / "pack.toml").write_text(toml)
    return directory


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real-layout Kineto trace, ingested."""
    tmp = tmp_path_factory.mktemp("packs")
    trace = write_kineto(tmp / "t.json", small_kineto_events())
    return ingest([trace], tmp / "t.traceview").store


def test_header_params_findings_and_bare_files(tmp_path: Path) -> None:
    pack = write_pack(
        tmp_path / "p",
        {
            "top_ops.sql": """
            -- title: Top ops
            -- description: Longest ops.
            -- param: top INTEGER 3 How many
            -- param: prefix VARCHAR aten Name prefix
            -- finding: dur_ns > 8000 => warning: {name} took {dur_ns} ns
            SELECT name, dur_ns FROM ops WHERE name LIKE $prefix || '%' ORDER BY dur_ns DESC LIMIT $top;
        """,
            "bare.sql": "SELECT count(*) AS n FROM slices\n",
        },
        toml='name = "mine"\nversion = "1.2"\ndescription = "Team queries"\n',
    )
    loaded = load_pack(pack)
    assert (loaded.name, loaded.version, loaded.description) == ("mine", "1.2", "Team queries")
    top = loaded.query("top_ops")
    assert top.title == "Top ops" and top.description == "Longest ops."
    assert [(p.name, p.type, p.default) for p in top.params] == [("top", "INTEGER", 3), ("prefix", "VARCHAR", "aten")]
    assert [(r.condition, r.severity, r.message) for r in top.findings] == [
        ("dur_ns > 8000", "warning", "{name} took {dur_ns} ns")
    ]
    assert top.sql.endswith("LIMIT $top")
    bare = loaded.query("bare")
    assert (bare.title, bare.params, bare.findings) == ("bare", [], [])
    assert top.bind({"top": "1"}) == {"top": 1, "prefix": "aten"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("-- param: top NUMBER 3", "param top has unknown type NUMBER"),
        ("-- param: top INTEGER three", "param top default 'three' is not INTEGER"),
        ("-- param: top", "param needs 'NAME TYPE DEFAULT [description]'"),
        ("-- finding: n > 1 => fatal: boom", "finding severity 'fatal' is not one of info, warning, critical"),
        ("-- finding: n > 1", "finding needs 'CONDITION => SEVERITY: MESSAGE'"),
    ],
)
def test_bad_headers_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.sql"
    path.write_text(f"-- title: q\n{line}\nSELECT 1\n")
    with pytest.raises(PackError) as error:
        parse_query(path)
    assert str(error.value).startswith(f"{path}:2: {message}")


def test_parameters_are_bound_not_pasted(tmp_path: Path, store: Path) -> None:
    pack = write_pack(
        tmp_path / "p",
        {
            "q.sql": """
        -- param: name VARCHAR x A name
        SELECT count(*) AS n, $name AS echoed FROM ops WHERE name = $name
    """
        },
    )
    query = load_pack(pack).query("q")
    con = sandboxed_connection(store)
    hostile = "x' OR '1'='1"
    result = run_query(con, query, {"name": hostile})
    assert result.error is None
    assert result.frame.to_dicts() == [{"n": 0, "echoed": hostile}]


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "calls read_csv(): pack queries may call only"),
        ("SELECT * FROM read_text('/etc/hostname')", "calls read_text(): pack queries may call only"),
        ("COPY (SELECT 1) TO '/tmp/traceview-escape.csv'", "only SELECT queries may run, found COPY"),
        ("ATTACH '/tmp/traceview-escape.db'", "only SELECT queries may run, found ATTACH"),
        ("INSTALL httpfs", "only SELECT queries may run"),
        ("LOAD json", "only SELECT queries may run"),
        ("SET threads = 1", "only SELECT queries may run"),
        ("CREATE TABLE t AS SELECT 1", "only SELECT queries may run"),
        ("SELECT 1; SELECT 2", "expected one statement, found 2"),
        (
            "SELECT current_setting('enable_external_access') AS v; SET enable_external_access = true",
            "expected one statement, found 2",
        ),
    ],
)
def test_sandbox_refuses_anything_but_reading_the_store(tmp_path: Path, store: Path, sql: str, fragment: str) -> None:
    path = tmp_path / "evil.sql"
    path.write_text(sql + "\n")
    result = run_query(sandboxed_connection(store), parse_query(path))
    assert result.frame is None
    assert result.error is not None and result.error.startswith(f"{path}: ")
    assert fragment in result.error
    assert not Path("/tmp/traceview-escape.csv").exists() and not Path("/tmp/traceview-escape.db").exists()


def test_a_failing_query_does_not_stop_the_others_and_slow_ones_time_out(tmp_path: Path, store: Path) -> None:
    pack = write_pack(
        tmp_path / "p",
        {
            "a_broken.sql": "SELECT no_such_column FROM slices\n",
            "b_slow.sql": "SELECT count(*) FROM range(100000000) a, range(100000000) b\n",
            "c_fine.sql": "SELECT count(*) AS n FROM slices\n",
        },
    )
    con = sandboxed_connection(store)
    results = {q.name: run_query(con, q, limit_s=1.0) for q in load_pack(pack).queries}
    assert "no_such_column" in results["a_broken"].error
    assert results["b_slow"].error.endswith("ran past its time limit of 1 s")
    assert results["b_slow"].seconds < 10
    assert results["c_fine"].error is None and results["c_fine"].frame.to_dicts() == [{"n": 9}]


def test_findings_format_only_plain_fields() -> None:
    row = {"name": "k", "share": 0.4567, "n": 3}
    assert format_message("{name}: {share:.1%} of {n}, {missing}", row) == "k: 45.7% of 3, {missing}"
    assert format_message("{name.__class__}", row) == "{name.__class__}"
    assert format_message("by {op} in {gap:.0f} ns", {"op": None, "gap": None}) == "by n/a in n/a ns"
    # a bracketed part with fields is left out when one of them is null; brackets without fields stay
    optional = "rank {rank}[ stream {stream}]: [x] {n}[ (in {op}, {n})]"
    row = {"rank": 0, "stream": None, "n": 2, "op": "aten::mm"}
    assert format_message(optional, row) == "rank 0: [x] 2 (in aten::mm, 2)"
    assert format_message(optional, {**row, "stream": 7, "op": None}) == "rank 0 stream 7: [x] 2"


def test_builtin_pack_has_every_analysis_and_checks_clean() -> None:
    (core,) = [p for p in builtin_packs() if p.name == "core"]
    assert CORE_QUERIES <= {q.name for q in core.queries}
    assert check_pack(core.path) == []


def test_packs_check_reports_file_and_line(tmp_path: Path) -> None:
    pack = write_pack(
        tmp_path / "p",
        {
            "ok.sql": "SELECT count(*) AS n FROM kernels\n",
            "bad.sql": "-- title: Bad\nSELECT name,\n       nonexistent_column\nFROM slices\n",
            "rule.sql": "-- finding: nope > 1 => info: x\nSELECT 1 AS n\n",
        },
    )
    problems = check_pack(pack)
    assert len(problems) == 2
    assert problems[0].startswith(f'{pack / "bad.sql"}:3: Binder Error: Referenced column "nonexistent_column"')
    assert problems[1].startswith(f"{pack / 'rule.sql'}:1: finding condition: Binder Error")


def test_packs_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["packs", "list"])
    assert listed.exit_code == 0 and listed.stdout.startswith("core ")
    shown = runner.invoke(app, ["packs", "show", "core"])
    assert shown.exit_code == 0
    assert "hotspots: Hotspots" in shown.stdout and "param top INTEGER = 25" in shown.stdout
    good = write_pack(tmp_path / "good", {"q.sql": "SELECT 1 AS one\n"})
    assert runner.invoke(app, ["packs", "check", str(good)]).stdout == f"{good}: ok\n"
    bad = write_pack(tmp_path / "bad", {"q.sql": "SELECT * FROM nowhere\n"})
    result = runner.invoke(app, ["packs", "check", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{bad / 'q.sql'}:1: Catalog Error: Table with name nowhere does not exist")
    missing = runner.invoke(app, ["packs", "show", "nope"])
    assert missing.exit_code == 2 and missing.stderr == "Error: nope: no such pack (built-in packs: core)\n"


def test_empty_store_has_every_table(tmp_path: Path) -> None:
    from traceview.parsers.model import TABLES

    store = empty_store(tmp_path / "empty")
    con = sandboxed_connection(store)
    for table in TABLES:
        assert con.sql(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]


SHARED_FRAGMENT = """\
-- Kernels and their total, computed once per pack run.
-- materialize: kernel_rows, kernel_total
kernel_rows AS (
  SELECT name, dur_ns FROM kernels
),
kernel_total AS (
  SELECT sum(dur_ns) AS total FROM kernel_rows
)
"""


def test_shared_relations_are_built_once_and_give_the_same_rows(tmp_path: Path, store: Path) -> None:
    pack = load_pack(
        write_pack(
            tmp_path / "pack",
            {
                "_kernels.sql": SHARED_FRAGMENT,
                "share.sql": "WITH\n-- @include _kernels.sql\nSELECT name, dur_ns / total AS share"
                " FROM kernel_rows, kernel_total ORDER BY name",
                "total.sql": "WITH\n-- @include _kernels.sql\nSELECT total FROM kernel_total",
            },
        )
    )
    assert [(r.name, r.table) for r in pack.shared] == [
        ("kernel_rows", "_shared_kernel_rows"),
        ("kernel_total", "_shared_kernel_total"),
    ]
    # the second relation is built from the first one's table; the first stops at its own definition
    assert 'FROM "_shared_kernel_rows"' in pack.shared[1].build_sql
    assert "kernel_total AS" not in pack.shared[0].build_sql
    con = sandboxed_connection(store)
    alone = [run_query(con, q) for q in pack.queries]
    built = materialize_shared(con, pack)
    assert [(b.relation.name, b.rows, b.error) for b in built] == [("kernel_rows", 1, None), ("kernel_total", 1, None)]
    relations = [b.relation for b in built]
    assert 'SELECT * FROM "_shared_kernel_total"' in with_shared(pack.query("total").sql, relations)
    shared = [run_query(con, q, shared=relations) for q in pack.queries]
    for a, b in zip(alone, shared, strict=True):
        assert a.error is None and b.error is None
        assert a.frame.equals(b.frame)
    drop_shared(con, built)
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_shared_%'").fetchall() == [(0,)]


def test_a_failing_shared_relation_leaves_the_queries_as_written(tmp_path: Path, store: Path) -> None:
    broken = SHARED_FRAGMENT.replace("FROM kernels", "FROM no_such_table")
    pack = load_pack(
        write_pack(
            tmp_path / "pack",
            {"_kernels.sql": broken, "total.sql": "WITH\n-- @include _kernels.sql\nSELECT total FROM kernel_total"},
        )
    )
    con = sandboxed_connection(store)
    built = materialize_shared(con, pack)
    assert len(built) == 1 and built[0].rows is None and "no_such_table" in built[0].error
    result = run_query(con, pack.query("total"), shared=[b.relation for b in built if b.error is None])
    assert result.frame is None and "no_such_table" in result.error and "total.sql" in result.error


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("-- materialize: missing\nkernel_rows AS (\n  SELECT 1\n)\n", "_f.sql:1: materialize missing: no CTE"),
        ("-- materialize: rows\nrows AS (\n  SELECT $top\n)\n", "_f.sql:1: materialize rows: uses a $parameter"),
    ],
)
def test_bad_materialize_headers_name_file_and_line(tmp_path: Path, fragment: str, message: str) -> None:
    directory = write_pack(tmp_path / "pack", {"_f.sql": fragment, "q.sql": "SELECT 1"})
    pack = load_pack(directory)
    assert len(pack.problems) == 1 and message in pack.problems[0]
    assert pack.shared == [] and pack.query("q").problem is None


def test_core_pack_gives_the_same_rows_with_its_shared_relations(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[1] / "sample_traces" / "longctx_h200" / "longctx_h200.pt.trace.json.gz"
    target = ingest([sample], tmp_path / "store").store
    (pack,) = [p for p in builtin_packs() if p.name == "core"]
    assert {r.name for r in pack.shared} >= {"launches", "step_tasks", "step_model"}
    con = sandboxed_connection(target)
    alone = {q.name: run_query(con, q) for q in pack.queries}
    built = materialize_shared(con, pack)
    assert all(b.error is None for b in built)
    for query in pack.queries:
        shared = run_query(con, query, shared=[b.relation for b in built])
        assert shared.error is None and alone[query.name].error is None, query.name
        assert shared.frame.equals(alone[query.name].frame), query.name


def test_packs_check_reports_a_failing_shared_relation(tmp_path: Path) -> None:
    broken = SHARED_FRAGMENT.replace("FROM kernels", "FROM no_such_table")
    directory = write_pack(
        tmp_path / "pack",
        {"_kernels.sql": broken, "total.sql": "WITH\n-- @include _kernels.sql\nSELECT total FROM kernel_total"},
    )
    problems = check_pack(directory)
    assert problems[0].startswith(f"{directory / '_kernels.sql'}: materialize kernel_rows: Catalog Error")
    assert "no_such_table" in problems[0] and len(problems) == 2  # and the query itself, located


def test_shared_relations_build_side_by_side_and_skip_only_what_needs_a_failed_one(tmp_path: Path, store: Path) -> None:
    # A relation's SQL holds the CTEs before it in its fragment: it needs the shared ones among them.
    broken = """\
-- materialize: broken, after_broken
broken AS (
  SELECT count(*) AS n FROM no_such_table
),
after_broken AS (
  SELECT n + 1 AS n FROM broken
)
"""
    counts = """\
-- materialize: ops_count, kernel_count
ops_count AS (
  SELECT count(*) AS n FROM ops
),
kernel_count AS (
  SELECT count(*) AS n FROM kernels
)
"""
    pack = load_pack(
        write_pack(
            tmp_path / "pack",
            {
                "_a.sql": broken,
                "_b.sql": counts,
                "q.sql": "WITH\n-- @include _b.sql\nSELECT o.n AS ops, k.n AS kernels FROM ops_count o, kernel_count k",
            },
        )
    )
    con = sandboxed_connection(store)
    built = materialize_shared(con, pack)
    assert [(b.relation.name, b.rows, b.error is None) for b in built] == [
        ("broken", None, False),
        ("ops_count", 1, True),
        ("kernel_count", 1, True),
    ]
    shared = run_query(con, pack.query("q"), shared=[b.relation for b in built if b.error is None])
    alone = run_query(con, pack.query("q"))
    assert alone.error is None and shared.frame.equals(alone.frame)


def test_run_pack_runs_queries_beside_the_relations_with_the_results_of_a_plain_run(
    tmp_path: Path, store: Path
) -> None:
    broken = "-- materialize: broken\nbroken AS (\n  SELECT count(*) AS n FROM no_such_table\n)\n"
    pack = load_pack(
        write_pack(
            tmp_path / "pack",
            {
                "_a.sql": broken,
                "_kernels.sql": SHARED_FRAGMENT,
                "a_total.sql": "WITH\n-- @include _kernels.sql\nSELECT total FROM kernel_total",
                "b_broken.sql": "WITH\n-- @include _a.sql\nSELECT n FROM broken",
                "c_plain.sql": "SELECT count(*) AS n FROM slices",
                "d_share.sql": "WITH\n-- @include _kernels.sql\nSELECT name, dur_ns / total AS share"
                " FROM kernel_rows, kernel_total ORDER BY name",
            },
        )
    )
    con = sandboxed_connection(store)
    alone = [run_query(con, q) for q in pack.queries]
    for at_once in (1, 2, 3, 5):
        run = run_pack(con, pack, pack.queries, at_once=at_once)
        assert [(b.relation.name, b.error is None) for b in run.shared] == [
            ("broken", False),
            ("kernel_rows", True),
            ("kernel_total", True),
        ]
        assert [r.query.name for r in run.results] == ["a_total", "b_broken", "c_plain", "d_share"]
        for a, b in zip(alone, run.results, strict=True):
            assert a.error == b.error, b.query.name
            assert (a.frame is None and b.frame is None) or a.frame.equals(b.frame), b.query.name
        assert "no_such_table" in run.results[1].error and "b_broken.sql" in run.results[1].error
        drop_shared(con, run.shared)


def test_a_unit_spec_writes_the_value_in_its_human_scale() -> None:
    row = {"gap_ns": 98_769_491, "peak": 1_234_567_890, "bw": 3.1e11, "small": 512, "none": None}
    message = "{gap_ns:ns} idle, {peak:bytes} peak, {bw:B/s}, {small:ns}, {none:ns}"
    assert format_message(message, row) == "98.8 ms idle, 1.23 GB peak, 310 GB/s, 512 ns, n/a"


def test_no_core_finding_prints_raw_ns_or_an_exponent() -> None:
    """Durations, sizes and rates in finding messages go through a unit spec (issue 20: never `1.129e+06`)."""
    for query in next(p for p in builtin_packs() if p.name == "core").queries:
        for rule in query.findings:
            assert not re.search(r"\} ns\b|:\.\d+e\}|\} bytes\b(?! per)", rule.message), (query.name, rule.message)
