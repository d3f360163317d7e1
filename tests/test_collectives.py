"""The `collectives` table: known-answer synthetic traces in the real formats, and corpus checks."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from conftest import CORPUS, ascend_comm_dump, raw_number

from traceview.engine import connect
from traceview.parsers.collectives import hccl_group_hash
from traceview.store import ingest

_COLUMNS = 'name, op, "group", group_desc, group_ranks, group_size, seq, ts_ns, dur_ns, bytes, dtype, source'


def _rows(store: Path, where: str = "true") -> list[tuple]:
    with connect(store) as con:
        return con.sql(f"SELECT {_COLUMNS} FROM collectives WHERE {where} ORDER BY ts_ns").fetchall()


def _kineto_trace(path: Path) -> Path:
    pg = {"pg_name": "5", "pg_desc": "dp", "backend_config": "cuda:nccl", "pg_size": 2, "ranks": [2, 6]}
    gather = {
        "Collective name": "_allgather_base",
        "In msg nelems": 4,
        "Out msg nelems": 8,
        "dtype": "BFloat16",
        "Process Group Name": "3",
        "Process Group Description": "tp",
        "Process Group Ranks": "[0, 1]",
        "Group size": 2,
        "Seq": 7,
    }
    reduce = {
        "Collective name": "allreduce",
        "In msg nelems": 10,
        "Out msg nelems": 10,
        "dtype": "Float",
        "Process Group Name": "5",
        "Group size": 2,
    }
    events = [
        {
            "ph": "X",
            "cat": "kernel",
            "name": "ncclDevKernel_AllGather_RING_LL",
            "pid": 0,
            "tid": 7,
            "ts": "100.5",
            "dur": 2.25,
            "args": {"device": 0, "stream": 7, **gather},
        },
        {
            "ph": "X",
            "cat": "kernel",
            "name": "ncclKernel_AllReduce_RING_LL_Sum_float",
            "pid": 0,
            "tid": 7,
            "ts": 200,
            "dur": 3,
            "args": {"device": 0, "stream": 7, **reduce},
        },
        {
            "ph": "X",
            "cat": "kernel",
            "name": "ncclKernel_AllReduce_RING_LL_Sum_float",
            "pid": 0,
            "tid": 7,
            "ts": 300,
            "dur": 3,
            "args": {"device": 0, "stream": 7, **reduce},
        },
        {
            "ph": "X",
            "cat": "user_annotation",
            "name": "gloo:all_reduce",
            "pid": 1,
            "tid": 2,
            "ts": 400,
            "dur": 5,
            "args": {"Input Dims": [[10, 3]], "Input type": ["float"]},
        },
        {"ph": "X", "cat": "user_annotation", "name": "not_a_collective", "pid": 1, "tid": 2, "ts": 500, "dur": 5},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 600, "dur": 5, "args": {"device": 0}},
    ]
    dist = {"backend": "nccl", "rank": 2, "world_size": 8, "pg_config": [pg]}
    path.write_text(json.dumps({"distributedInfo": dist, "traceEvents": events}))
    return path


def test_kineto_collectives_known_answer(tmp_path: Path) -> None:
    store = ingest([_kineto_trace(tmp_path / "rank2.json")], tmp_path / "s").store
    assert _rows(store) == [
        (
            "ncclDevKernel_AllGather_RING_LL",
            "all_gather",
            "3",
            "tp",
            [0, 1],
            2,
            7,
            100500,
            2250,
            16,
            "BFloat16",
            "kernel",
        ),
        # no ranks in the args: those of distributedInfo.pg_config; no Seq: the index in the group
        (
            "ncclKernel_AllReduce_RING_LL_Sum_float",
            "all_reduce",
            "5",
            "dp",
            [2, 6],
            2,
            0,
            200000,
            3000,
            40,
            "Float",
            "kernel",
        ),
        (
            "ncclKernel_AllReduce_RING_LL_Sum_float",
            "all_reduce",
            "5",
            "dp",
            [2, 6],
            2,
            1,
            300000,
            3000,
            40,
            "Float",
            "kernel",
        ),
        ("gloo:all_reduce", "all_reduce", None, None, None, None, 0, 400000, 5000, 120, "float", "gloo"),
    ]
    with connect(store) as con:
        assert con.sql("SELECT DISTINCT rank FROM collectives").fetchall() == [(2,)]
        assert con.sql("SELECT count(*) FROM comm_links").fetchall() == [(0,)]  # NCCL: no per-link record


def test_kineto_corpus_nccl() -> None:
    path = CORPUS / "kineto/hta/nccl_parser_config/nccl_data.json.gz"
    if not path.is_file():
        pytest.skip("corpus missing")
    store = ingest([path], Path(tempfile.mkdtemp()) / "s").store
    with connect(store) as con:
        counts = con.sql(
            "SELECT op, count(*), count(slice_id), min(seq), max(seq) FROM collectives GROUP BY op ORDER BY op"
        )
        assert counts.fetchall() == [("all_reduce", 15, 15, 2, 20), ("broadcast", 6, 6, 0, 15)]
        first = con.sql(
            "SELECT c.bytes, c.group_ranks, s.name = c.name, s.kind FROM collectives c JOIN slices s USING (slice_id)"
            " WHERE c.op = 'all_reduce' ORDER BY c.ts_ns LIMIT 1"
        ).fetchall()
    assert first == [(2049000 * 4, [0, 1], True, "comm")]  # "In msg nelems": 2049000, "dtype": "Float"


def test_hccl_group_hash_known_answers() -> None:
    # parallel_group_info keys and the numbers communication.json writes for them (corpus dumps)
    assert hccl_group_hash("group_name_5") == "5862276114690318097"
    assert hccl_group_hash("10.174.216.241%enp189s0f1_55000_0_1738895486152654") == "212011646445595226"


def _ascend_dump(root: Path, comm: dict, metadata: dict | None) -> Path:
    return ascend_comm_dump(root, "communication.json", comm, metadata)


def _op(start_us: str, elapse_ms: str, wait_ms: str) -> dict:
    times = {
        "Start Timestamp(us)": raw_number(start_us),
        "Elapse Time(ms)": raw_number(elapse_ms),
        "Transit Time(ms)": 0,
        "Wait Time(ms)": raw_number(wait_ms),
        "Synchronization Time(ms)": 0,
        "Idle Time(ms)": 0,
    }
    return {"Communication Time Info": times, "Communication Bandwidth Info": {}}


def test_ascend_communication_json_known_answer(tmp_path: Path) -> None:
    group = hccl_group_hash("group_name_5")
    comm = {
        "step3": {
            "collective": {
                f"hcom_allReduce__097_4_1@{group}": _op("1764246877721578.123", "26.30914", "0.000001"),
                f"hcom_allGather__097_5_1@{group}": _op("1764246877800000", "1.5", "0.25"),
                "Total Op Info": {"Communication Time Info": {"Elapse Time(ms)": 99}},
            },
            "p2p": {},
        }
    }
    meta = {"parallel_group_info": {"group_name_5": {"group_name": "dp_cp", "group_rank": 1, "global_ranks": [4, 9]}}}
    store = ingest([_ascend_dump(tmp_path, comm, meta)], tmp_path / "s").store
    assert _rows(store) == [
        (
            "hcom_allReduce__097_4_1",
            "all_reduce",
            group,
            "dp_cp",
            [4, 9],
            2,
            4,
            1764246877721578123,
            26309140,
            None,
            None,
            "communication.json",
        ),
        (
            "hcom_allGather__097_5_1",
            "all_gather",
            group,
            "dp_cp",
            [4, 9],
            2,
            5,
            1764246877800000000,
            1500000,
            None,
            None,
            "communication.json",
        ),
    ]
    with connect(store) as con:
        assert con.sql("SELECT step, wait_ns, transit_ns FROM collectives ORDER BY ts_ns").fetchall() == [
            (3, 1, 0),
            (3, 250000, 0),
        ]


def test_ascend_bad_communication_json_is_a_warning(tmp_path: Path) -> None:
    rank = _ascend_dump(tmp_path, {}, None)
    (rank / "ASCEND_PROFILER_OUTPUT" / "communication.json").write_text("{not json")
    result = ingest([rank], tmp_path / "s")
    assert any("communication.json: not read" in w for w in result.warnings), result.warnings
    with connect(result.store) as con:
        assert con.sql("SELECT count(*) FROM steps").fetchall() == [(1,)]


def test_ascend_corpus_text_and_db() -> None:
    dumps = [CORPUS / "ascend/torch_npu_cann83_level2/rank_1_ascend_pt", CORPUS / "ascend/torch_npu_2025_db/level2"]
    if not all(d.is_dir() for d in dumps):
        pytest.skip("corpus missing")
    store = ingest(dumps, Path(tempfile.mkdtemp()) / "s").store
    with connect(store) as con:
        rs = con.sql(
            'SELECT ts_ns, dur_ns, "group", group_desc, group_ranks, seq, wait_ns, source FROM collectives'
            " WHERE name = 'hcom_reduceScatter__097_4_1'"
        ).fetchall()
        db = con.sql(
            'SELECT name, ts_ns, dur_ns, bytes, dtype, algorithm, "group", source, slice_id IS NOT NULL'
            " FROM collectives WHERE source = 'COMMUNICATION_OP' ORDER BY ts_ns LIMIT 1"
        ).fetchall()
    # rank_1's communication.json: "Start Timestamp(us)" and "Elapse Time(ms)" read as decimal text
    assert rs == [(1764246877712164200, 35730140, "5862276114690318097", "dp_cp", [0, 1], 4, 0, "communication.json")]
    # COMMUNICATION_OP: exact ns, count x FP32, group name hashed as analysis.db writes it
    assert db == [
        (
            "hcom_allReduce__865_0_1",
            1736414119678212551,
            80450247,
            4097000 * 4,
            "FP32",
            "MESH-RING",
            "11978775601474615865",
            "COMMUNICATION_OP",
            True,
        )
    ]
