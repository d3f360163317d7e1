"""The `comm_links` table: totals read exactly, samples never added, group-local ranks made global."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS, ascend_comm_dump, raw_number

from traceview.engine import connect
from traceview.parsers.collectives import hccl_group_hash
from traceview.store import ingest


def _link(transport: str, mb: str, ms: str, op_name: str | None = None) -> dict:
    link = {
        "Transport Type": transport,
        "Transit Size(MB)": raw_number(mb),
        "Transit Time(ms)": raw_number(ms),
        "Bandwidth(GB/s)": 18.5,
    }
    return link | ({"Op Name": op_name} if op_name else {})


def _dump(root: Path, matrix: dict, metadata: dict | None) -> Path:
    return ascend_comm_dump(root, "communication_matrix.json", matrix, metadata)


def _links(store: Path) -> list[tuple]:
    with connect(store) as con:
        return con.sql(
            'SELECT step, "group", op, op_type, src_rank, dst_rank, src_local_rank, dst_local_rank, transport, bytes,'
            " transit_ns, source FROM comm_links ORDER BY src_local_rank, dst_local_rank"
        ).fetchall()


def test_totals_only_and_global_ranks(tmp_path: Path) -> None:
    group = hccl_group_hash("group_name_5")
    sample = {"1-0": _link("HCCS", "311.16492800000003", "16.64564", "hcom_reduceScatter__097_5_1")}
    matrix = {
        "step13": {
            "collective": {
                f"reduce-top1@{group}": sample,
                f"reduce-middle@{group}": sample,
                f"reduce-bottom1@{group}": sample,
                f"reduce-total@{group}": {
                    "1-0": _link("HCCS", "751.6313600000001", "40.211240000000004"),
                    "1-1": _link("LOCAL", "1503.262776", "4.54102"),
                },
            },
            "p2p": {},
        }
    }
    meta = {"parallel_group_info": {"group_name_5": {"group_name": "dp", "group_rank": 1, "global_ranks": [4, 9]}}}
    store = ingest([_dump(tmp_path, matrix, meta)], tmp_path / "s").store
    assert _links(store) == [
        (13, group, "reduce_scatter", "reduce", 9, 4, 1, 0, "HCCS", 751631360, 40211240, "communication_matrix.json"),
        (13, group, "reduce_scatter", "reduce", 9, 9, 1, 1, "LOCAL", 1503262776, 4541020, "communication_matrix.json"),
    ]


def test_unknown_group_keeps_local_ranks_with_a_warning(tmp_path: Path) -> None:
    matrix = {"step2": {"p2p": {"send-total@123": {"0-1": _link("RDMA", "1", "0.5")}}}}
    result = ingest([_dump(tmp_path, matrix, None)], tmp_path / "s")
    assert _links(result.store) == [
        (2, "123", "send", "send", None, None, 0, 1, "RDMA", 1000000, 500000, "communication_matrix.json")
    ]
    assert any("1 communication links keep group-local ranks only" in w for w in result.warnings)


def test_corpus_matrix_totals_exact() -> None:
    rank = CORPUS / "ascend/torch_npu_cann83_level2/rank_1_ascend_pt"
    if not rank.is_dir():
        pytest.skip("corpus missing")
    matrix = json.loads((rank / "ASCEND_PROFILER_OUTPUT/communication_matrix.json").read_text())
    totals = sum(
        len(links)
        for step in matrix.values()
        for kind in step.values()
        for key, links in kind.items()
        if key.split("@")[0].endswith("-total")
    )
    import tempfile

    store = ingest([rank], Path(tempfile.mkdtemp()) / "s").store
    with connect(store) as con:
        assert con.sql("SELECT count(*) FROM comm_links").fetchall() == [(totals,)]
        # "reduce-total@5862276114690318097" "1-0": 751.6313600000001 MB, 40.21264 ms; dp_cp ranks [0, 1]
        row = con.sql(
            "SELECT op, src_rank, dst_rank, transport, bytes, transit_ns FROM comm_links"
            " WHERE \"group\" = '5862276114690318097' AND op_type = 'reduce' AND src_local_rank = 1"
            " AND dst_local_rank = 0"
        ).fetchall()
        # pp group [1, 3]: local 1 is global 3
        pp = con.sql(
            "SELECT src_rank, dst_rank FROM comm_links WHERE \"group\" = '3985310499963036764' AND transport = 'HCCS'"
        ).fetchall()
    assert row == [("reduce_scatter", 1, 0, "HCCS", 751631360, 40212640)]
    assert pp == [(1, 3)]
