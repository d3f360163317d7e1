"""traceview's Ascend communication tables against msprof-analyze's cluster analysis (benchmarks/cross_check_msprof.py).

The peer check runs msprof-analyze (the `bench` extra) on copies of the corpus dumps; without it, it is skipped.
The tests of the bandwidth and of the comparison itself need no peer.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from traceview.engine import connect
from traceview.parsers.collectives import hccl_group_hash
from traceview.store import ingest


def _load_check() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cross_check_msprof.py"
    spec = importlib.util.spec_from_file_location("cross_check_msprof", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


check = _load_check()
MSPROF_ANALYZE = check.find_msprof_analyze()
needs_msprof = pytest.mark.skipif(
    MSPROF_ANALYZE is None,
    reason="peer check: needs msprof-analyze (the bench extra, pip install -e .[bench]) on PATH or $MSPROF_ANALYZE",
)


def _matrix_dump(root: Path, links: dict) -> Path:
    rank = root / "rank_1_ascend_pt"
    out = rank / "ASCEND_PROFILER_OUTPUT"
    out.mkdir(parents=True)
    (rank / "profiler_info_1.json").write_text(json.dumps({"rank_id": 1}))
    meta = {"parallel_group_info": {"group_name_0": {"group_name": "dp", "group_rank": 1, "global_ranks": [0, 1]}}}
    (rank / "profiler_metadata.json").write_text(json.dumps(meta))
    matrix = {"step13": {"collective": {f"allreduce-total@{hccl_group_hash('group_name_0')}": links}}}
    (out / "communication_matrix.json").write_text(json.dumps(matrix))
    (out / "step_trace_time.csv").write_text("Step,Computing\n13,1\n")
    return rank


def test_link_bandwidth_is_bytes_over_transit_time(tmp_path: Path) -> None:
    """The recorded bandwidth has 4 decimals: 0.0036 for 24 B in 6.58 µs (0.003647 GB/s), 1.3% off."""
    links = {
        "1-0": {"Transport Type": "HCCS", "Transit Size(MB)": 2.4e-05, "Transit Time(ms)": 0.00658,
                "Bandwidth(GB/s)": 0.0036},
        "1-1": {"Transport Type": "LOCAL", "Transit Size(MB)": 0, "Transit Time(ms)": 0, "Bandwidth(GB/s)": 0},
    }  # fmt: skip
    store = ingest([_matrix_dump(tmp_path, links)], tmp_path / "s").store
    with connect(store) as con:
        rows = con.sql("SELECT dst_rank, bytes, transit_ns, bandwidth_gbps FROM comm_links ORDER BY 1").fetchall()
    assert rows == [(0, 24, 6580, 24 / 6580), (1, 0, 0, 0.0)]


def test_comparison_flags_differences_past_the_tolerance() -> None:
    ours = {("k",): {"bandwidth_gbps": 10.0, "bytes": 1000, "transit_ns": 100}}
    close = {("k",): {"bandwidth_gbps": 10.05, "bytes": 1001, "transit_ns": 100}}
    far = {("k",): {"bandwidth_gbps": 10.2, "bytes": 1000, "transit_ns": 100}, ("x",): close[("k",)]}
    ok, off = check.Outcome("ok", mode="db"), check.Outcome("off", mode="db")
    check.compare(ok, ours, close, check.LINK_FIELDS, 0.01, links=True)
    check.compare(off, ours, far, check.LINK_FIELDS, 0.01, links=True)
    assert (ok.ok, ok.links, round(ok.link_max_diff, 4)) == (True, 1, 0.005)
    assert off.mismatches == ["('k',) bandwidth_gbps: traceview 10.0, msprof-analyze 10.2 (1.96%)"]
    assert off.only_msprof == ["link ('x',)"] and not off.ok


def test_text_output_bandwidth_counts_its_rounding() -> None:
    """msprof-analyze's text output writes 4 decimals: 0.0036 equals 0.003647 there, not in its db output."""
    ours = {("k",): {"bandwidth_gbps": 24 / 6580, "bytes": 24, "transit_ns": 6580}}
    theirs = {("k",): {"bandwidth_gbps": 0.0036, "bytes": 24, "transit_ns": 6580}}
    text, db = check.Outcome("t", mode="text"), check.Outcome("d", mode="db")
    check.compare(text, ours, theirs, check.LINK_FIELDS, 0.01, links=True)
    check.compare(db, ours, theirs, check.LINK_FIELDS, 0.01, links=True)
    assert text.ok and not db.ok


@needs_msprof
@pytest.mark.parametrize("dump", check.DUMPS, ids=lambda d: d.name)
def test_msprof_analyze_agrees_on_corpus_dump(dump, tmp_path: Path) -> None:
    outcome = check.check_dump(MSPROF_ANALYZE, dump, tmp_path)
    assert outcome.mismatches == [] and outcome.only_msprof == []


@needs_msprof
def test_committed_msprof_analyze_output_agrees(tmp_path: Path) -> None:
    """The corpus's cluster_analysis_output is a trimmed fixture: 3 ops of rank 0, all compared."""
    outcome = check.check_committed(tmp_path)
    assert outcome.ops == 3 and outcome.ok
